"""A new guide and a family using it: A-VAE whose posterior scale has a floor (--model avae-floored)."""

import pyro
import pyro.distributions as dist
from pyro_minvae.contracts import Guide
from pyro_minvae.registry import GUIDES, MODELS


@GUIDES.register("floored-gaussian")
class FlooredGaussianGuide(Guide):
    modalities = property(lambda self: [self.encoder.modality])

    def __init__(self, encoder, min_scale: float = 0.05):
        super().__init__()
        self.encoder, self.min_scale = encoder, min_scale

    def forward(self, batch: dict, cond=None):
        loc, scale = self.encoder(batch[self.encoder.modality], cond)
        return pyro.sample("z", dist.Normal(loc, scale.clamp_min(self.min_scale)).to_event(1))

    def init_loc(self, batch: dict, cond=None, prefer=None):
        return self.encoder(batch[self.encoder.modality], cond)[0]


@MODELS.register("avae-floored")
def build_avae_floored(input_dims: dict, latent_dim: int = 32, min_scale: float = 0.05):
    model = MODELS.get("avae")(input_dims, latent_dim)
    model.guide_net = GUIDES.build("floored-gaussian", encoder=model.guide_net.encoder, min_scale=min_scale)
    return model

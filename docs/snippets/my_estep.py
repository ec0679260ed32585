"""A new E-step: z fixed at the encoder mean, only the NMF noise and gain fitted (--method encoder-em)."""

import torch

from pyro_minvae.contracts import EStep
from pyro_minvae.infer import estep_common as ec
from pyro_minvae.infer.estep_config import EStepConfig
from pyro_minvae.noise import NMFNoise
from pyro_minvae.registry import ESTEPS


class EncoderEM(EStep):
    config_class = EStepConfig  # the shared options (iterations, rank, init, ...); subclass it to add your own

    @torch.no_grad()
    def run(self, model, spec, visual, config, *, seed=0, generator=None, callback=None):
        batch = ec.model_batch(model.eval(), spec, visual, spec.real.dtype)
        z, used = ec.initial_latents(model, batch, config.init)
        lv = model.speech_log_var(z, batch).unsqueeze(0)  # (1, N, F): one "sample"
        nmf, gen = NMFNoise(config.rank), generator or ec.make_generator(seed, spec.device)
        state = nmf.init(model.n_freq, z.shape[0], gen, device=spec.device, dtype=lv.dtype)
        for _ in range(config.iterations):
            state, _ = ec.sampled_m_step(nmf, state, batch["audio"], lv, 0.5, True)
        nan = torch.full((config.iterations,), float("nan"))
        return ec.MCEMResult(ec.wiener_estimate(spec, state, lv), state, nan, nan, None, z, used)


ESTEPS.register("encoder-em", EncoderEM())

"""Model families (registered in ``MODELS``): each builds a :class:`SpeechVAE` from registered components.

Every builder takes ``input_dims`` (modality name -> feature size, e.g. ``{"audio": 513, "lips": 4489}``) and
``latent_dim``; encoders are looked up in ``ENCODERS`` by modality name, so a new modality is one registration
(``ENCODERS.register("my_modality", factory)``) and needs no change here. ``build_model`` records the family and
arguments on ``model.spec`` for checkpoints.
"""

from __future__ import annotations

import inspect
from typing import Sequence

from ..registry import CONDITIONERS, DECODERS, ENCODERS, GUIDES, MODELS, PRIORS
from .speech_vae import SpeechVAE


_SIZED_ELSEWHERE = {"in_dim", "latent_dim", "cond_dim", "modality"}


def resolved_encoder_options(modalities: Sequence[str], options: dict | None) -> dict:
    """``{modality: {argument: value}}`` with every JSON-able default of each encoder factory filled in.

    Checkpoints record this, not just the options given, so a later change of a factory's defaults cannot change
    what an old checkpoint rebuilds. ``options`` entries override the defaults; unknown modalities raise.
    """
    options = options or {}
    unknown = set(options) - set(modalities)
    if unknown:
        raise ValueError(f"encoder_options for {sorted(unknown)}, which are not among the encoders {list(modalities)}")
    out = {}
    for m in modalities:
        params = inspect.signature(ENCODERS.get(m)).parameters.values()
        defaults = {
            p.name: list(p.default) if isinstance(p.default, tuple) else p.default
            for p in params
            if p.name not in _SIZED_ELSEWHERE
            and p.default is not p.empty
            and isinstance(p.default, (int, float, str, bool, tuple, list, type(None)))
        }
        out[m] = {**defaults, **options.get(m, {})}
    return out


def _encoder(modality: str, input_dims: dict, latent_dim: int, **extra):
    if modality not in input_dims:
        raise ValueError(f"no input size for modality {modality!r}; known: {', '.join(sorted(input_dims))}")
    return ENCODERS.build(modality, in_dim=input_dims[modality], latent_dim=latent_dim, **extra)


def _decoder(input_dims: dict, latent_dim: int, decoder: str, options: dict | None, cond_dim: int = 0):
    """``options``: extra constructor arguments of the decoder, e.g. ``{"hidden": [256, 256]}`` (None: its own)."""
    return DECODERS.build(
        decoder, latent_dim=latent_dim, out_dim=input_dims["audio"], cond_dim=cond_dim, **(options or {})
    )


def _restart_schedule() -> tuple:
    """The restart schedule chosen on validation for A-VAE and MIN-VAE (not AV-CVAE: docs/algorithms.md,
    "Restarts from different NMF starts")."""
    from ..infer.estep_common import RESTART_STARTS  # here: the inference package imports the models

    return RESTART_STARTS


@MODELS.register("vae")
def build_vae(
    input_dims: dict,
    latent_dim: int = 32,
    encoder: str = "audio",
    prior: str = "standard-normal",
    decoder: str = "mlp",
    encoder_options: dict | None = None,
    decoder_options: dict | None = None,
    prior_options: dict | None = None,
) -> SpeechVAE:
    """Single-encoder VAE: A-VAE with ``encoder="audio"``, a visual VAE (V-VAE) with ``encoder="lips"``.

    ``encoder_options``: ``{modality: {argument: value}}`` as for MIN-VAE (only ``encoder``'s entry is allowed);
    ``decoder_options``: extra constructor arguments of the decoder, e.g. ``{"hidden": [256, 256]}``;
    ``prior_options``: extra constructor arguments of the prior, e.g. ``{"hidden": [64]}`` for ``prior="markov"``.
    """
    options = resolved_encoder_options([encoder], encoder_options)
    enc = _encoder(encoder, input_dims, latent_dim, **options[encoder])
    model = SpeechVAE(
        PRIORS.build(prior, latent_dim=latent_dim, **(prior_options or {})),
        _decoder(input_dims, latent_dim, decoder, decoder_options),
        GUIDES.build("gaussian", encoder=enc),
        name=f"vae_{encoder}",
    )
    model.resolved_kwargs = {"encoder_options": options}
    return model


@MODELS.register("avae")
def build_avae(
    input_dims: dict,
    latent_dim: int = 32,
    decoder: str = "mlp",
    encoder_options: dict | None = None,
    decoder_options: dict | None = None,
) -> SpeechVAE:
    """A-VAE: audio encoder, standard normal prior (Leglaive et al.; the audio-only baseline).

    The options (``{"audio": {"hidden": [...]}}``, ``{"hidden": [...]}``) size the networks; without them they
    are the paper's (513 -> 128 -> 32 -> 128 -> 513).
    """
    model = build_vae(
        input_dims,
        latent_dim,
        encoder="audio",
        decoder=decoder,
        encoder_options=encoder_options,
        decoder_options=decoder_options,
    )
    model.restart_starts = _restart_schedule()
    return model


@MODELS.register("markov-vae")
def build_markov_vae(
    input_dims: dict,
    latent_dim: int = 32,
    transition_hidden: Sequence[int] = (128, 128),
    decoder: str = "mlp",
    encoder_options: dict | None = None,
    decoder_options: dict | None = None,
) -> SpeechVAE:
    """A-VAE's encoder and decoder with a learned Markov prior ``p(z_n | z_{n-1})`` (``PRIORS["markov"]``, a deep
    Kalman filter's transition) trained jointly on contiguous segments of frames (``TrainConfig.segment_frames``).

    Enhanced by the fast E-step, or by MCEM with ``--kernel odd-even-mh`` (the frame-wise kernel is refused).
    """
    model = build_vae(
        input_dims,
        latent_dim,
        encoder="audio",
        prior="markov",
        decoder=decoder,
        encoder_options=encoder_options,
        decoder_options=decoder_options,
        prior_options={"hidden": list(transition_hidden)},
    )
    model.name = "markov_vae"
    model.restart_starts = _restart_schedule()
    return model


@MODELS.register("avcvae")
def build_avcvae(
    input_dims: dict,
    latent_dim: int = 32,
    visual: str = "lips",
    embedding_dim: int = 32,
    decoder: str = "mlp",
    conditioner: str = "normalised-embedding",
    decoder_options: dict | None = None,
) -> SpeechVAE:
    """AV-CVAE: a visual embedding conditions the encoder q(z|s,v), the decoder p(s|z,v) and the prior p(z|v).

    ``conditioner`` names the embedding network in ``CONDITIONERS``: ``normalised-embedding`` (the default:
    standardised input and layer norms) or ``embedding`` (the paper's, whose tanh saturated on the demo corpus so
    that the model ignored the lips; docs/algorithms.md).
    """
    embedding = CONDITIONERS.build(conditioner, modality=visual, in_dim=input_dims[visual], out_dim=embedding_dim)
    enc = _encoder("audio", input_dims, latent_dim, cond_dim=embedding_dim)
    model = SpeechVAE(
        PRIORS.build("conditional-gaussian", cond_dim=embedding_dim, latent_dim=latent_dim),
        _decoder(input_dims, latent_dim, decoder, decoder_options, cond_dim=embedding_dim),
        GUIDES.build("gaussian", encoder=enc),
        conditioner=embedding,
        name="avcvae",
    )
    model.resolved_kwargs = {"conditioner": conditioner}  # recorded: a later default cannot change old checkpoints
    return model


@MODELS.register("minvae")
def build_minvae(
    input_dims: dict,
    latent_dim: int = 32,
    encoders: Sequence[str] = ("audio", "lips"),
    prior: str = "mixture",
    learn_weights: bool = False,
    audio_noise_fraction: float = 0.5,
    audio_noise_scale: float = 50.0,
    decoder: str = "mlp",
    encoder_options: dict | None = None,
    prior_options: dict | None = None,
    decoder_options: dict | None = None,
) -> SpeechVAE:
    """MIN-VAE: one encoder per modality in a mixture guide, per-component learned priors, shared decoder.

    ``encoder_options``: extra constructor arguments per modality, e.g. ``{"lips": {"pool": 4, "hidden": [128]}}``;
    ``prior_options``: extra constructor arguments of the prior (e.g. ``{"n_modes": 4}`` for a prior you registered).
    """
    options = resolved_encoder_options(encoders, encoder_options)
    encs = [_encoder(m, input_dims, latent_dim, **options[m]) for m in encoders]
    model = SpeechVAE(
        PRIORS.build(
            prior,
            components=list(encoders),
            latent_dim=latent_dim,
            learn_weights=learn_weights,
            **(prior_options or {}),
        ),
        _decoder(input_dims, latent_dim, decoder, decoder_options),
        GUIDES.build(
            "mixture", encoders=encs, audio_noise_fraction=audio_noise_fraction, audio_noise_scale=audio_noise_scale
        ),
        name="minvae",
    )
    model.resolved_kwargs = {"encoder_options": options}
    model.restart_starts = _restart_schedule()
    return model


def build_model(family: str, **kwargs) -> SpeechVAE:
    """Build a registered family and remember ``{"family", "kwargs"}`` on ``model.spec``.

    A builder may set ``model.resolved_kwargs`` (arguments with their defaults filled in); those among the
    family builder's own arguments are recorded too.
    """
    check_model_kwargs(family, kwargs)
    builder = MODELS.get(family)
    model = builder(**kwargs)
    params = inspect.signature(builder).parameters
    resolved = {k: v for k, v in getattr(model, "resolved_kwargs", {}).items() if k in params}
    model.spec = {"family": family, "kwargs": _jsonable({**kwargs, **resolved})}
    return model


def check_model_kwargs(family: str, kwargs) -> None:
    """Raise ``ValueError`` naming the valid arguments when ``kwargs`` has names the family's builder lacks."""
    params = inspect.signature(MODELS.get(family)).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise ValueError(
            f"model {family!r} has no argument(s) {', '.join(unknown)}; "
            f"valid: {', '.join(k for k in params if k != 'input_dims')}"
        )


def _jsonable(kwargs: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}

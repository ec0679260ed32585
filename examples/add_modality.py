"""Add a third modality to MIN-VAE (M = 3) without touching the package: lip motion from the landmark stream.

Two registrations in this file are all it takes:

* ``MODALITIES["lip_motion"]``: how a manifest record becomes frame-aligned features ``(N, 6)`` (mouth width,
  height and aspect ratio from the ``landmarks`` file, and their frame-to-frame deltas);
* ``ENCODERS["lip_motion"]``: the inference network for it, ``(B, 6) -> (loc, scale)`` each ``(B, L)``.

MIN-VAE is then trained with encoders ``audio, lips, lip_motion`` (three mixture components, three learned
priors, one shared decoder) and a noisy test file is enhanced with it; SI-SDR and the mean responsibility of
each component at enhancement are printed.

    python examples/add_modality.py --small   # tiny synthetic corpus, ~15 s
    python examples/add_modality.py           # demo corpus (`pyro-minvae prepare demo` first), ~15 min on 2 cores
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from pyro_minvae.audio_io import load_audio, write_audio
from pyro_minvae.checkpoint import load_model
from pyro_minvae.data.datasets import FrameDataset
from pyro_minvae.data.modalities import Modality
from pyro_minvae.infer.enhance import enhance_waveform
from pyro_minvae.training import TrainConfig, train
from pyro_minvae.metrics import si_sdr
from pyro_minvae.nn.encoders import GaussianMLPEncoder
from pyro_minvae.registry import ENCODERS, MODALITIES
from tiny_corpus import demo_manifest, first_mixture, make_tiny_corpus


def lip_motion_features(points: np.ndarray) -> np.ndarray:
    """Landmarks ``(N, P, 2)`` (ROI pixels, already at the STFT frame rate) -> ``(N, 6)`` float32."""
    width = points[..., 0].max(-1) - points[..., 0].min(-1)
    height = points[..., 1].max(-1) - points[..., 1].min(-1)
    shape = np.stack([width / 67.0, height / 67.0, height / np.maximum(width, 1e-3)], -1)
    delta = np.diff(shape, axis=0, prepend=shape[:1])
    return np.concatenate([shape, 10.0 * delta], -1).astype(np.float32)


# 1) the stream: read the record's "landmarks" file, align it to the STFT frames, compute the features.
MODALITIES.register("lip_motion", Modality("lip_motion", field="landmarks", to_features=lip_motion_features))


# 2) its encoder, looked up by modality name when the minvae family builds one encoder per modality.
@ENCODERS.register("lip_motion")
def lip_motion_encoder(in_dim: int = 6, latent_dim: int = 32, hidden=(32,)) -> GaussianMLPEncoder:
    return GaussianMLPEncoder("lip_motion", in_dim, latent_dim, hidden, ["tanh"] * len(hidden))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="tiny synthetic corpus and tiny settings (tests)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary folder)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default 2 small, 10 full)")
    p.add_argument("--max-frames", type=int, default=None, help="training frames (default all small, 30000 full)")
    p.add_argument("--iterations", type=int, default=None, help="EM iterations (default: 5 small, the method's)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    out = args.out or Path(tempfile.mkdtemp(prefix="add_modality-"))
    out.mkdir(parents=True, exist_ok=True)
    manifest = make_tiny_corpus(out / "tiny") if args.small else demo_manifest()
    encoders = ("audio", "lips", "lip_motion")

    # Train MIN-VAE with M = 3 (the same call as `pyro-minvae train --model minvae --encoders ...`).
    train_ds = FrameDataset.from_manifest(
        manifest, "train", encoders, max_frames=args.max_frames or (None if args.small else 30000)
    )
    valid_ds = FrameDataset.from_manifest(manifest, "valid", encoders)
    print("input sizes:", train_ds.input_dims)
    cfg = TrainConfig(
        family="minvae", encoders=encoders, epochs=args.epochs or (2 if args.small else 10), seed=args.seed
    )
    result = train(cfg, train_ds, valid_ds, out / "minvae3", progress=False)
    print(f"trained {len(result.history)} epochs, valid ELBO {result.history[-1]['valid_elbo']:.2f} nats/frame")
    for name, r in result.report["components"].items():
        print(f"  training frames won by {name:10s}: {100 * r['win_rate']:5.1f}%")

    # Enhance one noisy test file: every visual stream is loaded by its registered modality.
    model, fcfg, _ = load_model(result.best_path)
    rec = first_mixture(manifest)
    noisy = load_audio(rec["audio_path"], fcfg.sample_rate)
    n_frames = fcfg.n_frames(noisy.shape[0])
    visual = {
        m: torch.from_numpy(MODALITIES.get(m).load(rec, manifest, n_frames, fcfg, noisy.shape[0]))
        for m in model.modalities
        if m != "audio"
    }
    opts = (
        {"iterations": args.iterations or 5, "mh_steps": 10, "burn_in": 5}
        if args.small
        else ({"iterations": args.iterations} if args.iterations else {})
    )
    res = enhance_waveform(model, fcfg, noisy, visual, method="mcem", seed=args.seed, **opts)
    write_audio(out / "enhanced.wav", res.waveform.numpy(), fcfg.sample_rate)

    clean = load_audio(rec["clean_path"], fcfg.sample_rate)
    resp = res.result.responsibilities.mean(0).tolist()
    print(
        f"{rec['id']}: SI-SDR {si_sdr(clean, noisy):.2f} dB -> {si_sdr(clean, res.waveform.numpy()):.2f} dB "
        f"({res.seconds:.1f} s, z initialised from the {res.init} encoder) -> {out / 'enhanced.wav'}"
    )
    print("mean responsibility at enhancement: " + ", ".join(f"{m} {q:.2f}" for m, q in zip(encoders, resp)))


if __name__ == "__main__":
    main()

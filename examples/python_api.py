"""The Python API end to end: load a checkpoint, enhance a numpy array, compute metrics.

    python examples/python_api.py --small                 # tiny corpus + a model trained for 2 epochs, ~15 s
    python examples/python_api.py --checkpoint CKPT       # first test mixture of the demo corpus
    python examples/python_api.py                         # CKPT = <cache>/runs/minvae/best.pt (`pyro-minvae train`)

Everything below is plain numpy in, numpy out: the waveform ``(T,)`` float32 at 16 kHz, the lip ROIs
``(N_v, 67, 67)`` uint8 at ``fps``; the features are aligned to the STFT frames with the package's front end.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from pyro_minvae.checkpoint import load_model
from pyro_minvae.data.datasets import FrameDataset
from pyro_minvae.data.manifest import resolve
from pyro_minvae.data.modalities import MODALITIES
from pyro_minvae.infer.enhance import enhance_waveform
from pyro_minvae.training import TrainConfig, train
from pyro_minvae.metrics import score
from pyro_minvae.paths import cache_dir
from tiny_corpus import demo_manifest, first_mixture, make_tiny_corpus

METRICS = ("si_sdr", "pesq_wb", "stoi", "estoi")


def tiny_checkpoint(manifest: Path, out: Path) -> Path:
    """A MIN-VAE (audio + lips) trained for two epochs on the tiny corpus."""
    mods = ("audio", "lips")
    cfg = TrainConfig(family="minvae", encoders=mods, epochs=2)
    return train(
        cfg,
        FrameDataset.from_manifest(manifest, "train", mods),
        FrameDataset.from_manifest(manifest, "valid", mods),
        out,
        progress=False,
    ).best_path


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="tiny corpus, tiny model, few EM iterations (tests)")
    p.add_argument("--checkpoint", type=Path, default=None, help="trained checkpoint (.pt)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary folder)")
    p.add_argument("--iterations", type=int, default=None, help="EM iterations (default: 5 small, the method's)")
    args = p.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    out = args.out or Path(tempfile.mkdtemp(prefix="python_api-"))
    out.mkdir(parents=True, exist_ok=True)
    if args.small:
        manifest = make_tiny_corpus(out / "tiny")
        checkpoint = args.checkpoint or tiny_checkpoint(manifest, out / "model")
    else:
        manifest = demo_manifest()
        checkpoint = args.checkpoint or cache_dir() / "runs" / "minvae" / "best.pt"

    # 1) Load a checkpoint: the model (eval mode), the front-end settings it was trained with, metadata.
    model, cfg, meta = load_model(checkpoint, device="cpu")
    print(
        f"loaded {model.spec['family']} ({', '.join(model.modalities)}) trained {meta['epoch']} epochs "
        f"from {checkpoint}"
    )

    # 2) Numpy inputs: a noisy waveform, its clean reference and the mouth video of one test mixture.
    rec = first_mixture(manifest)
    noisy, sr = sf.read(rec["audio_path"], dtype="float32")
    clean, _ = sf.read(rec["clean_path"], dtype="float32")
    frames = np.load(resolve(manifest, rec["lips"]))  # (N_v, 67, 67) uint8
    assert sr == cfg.sample_rate, "resample with pyro_minvae.audio_io.resample first"

    # 3) Visual features aligned to the STFT frames: (N, 4489) in [0, 1].
    n = cfg.n_frames(noisy.shape[0])
    lips = MODALITIES.get("lips").from_array(frames, n, cfg, rec.get("fps"), n_samples=noisy.shape[0])

    # 4) Enhance with the paper's MCEM and with the fast variational EM; 5) score against the reference.
    rows = []
    for method in ("mcem", "fast"):
        opts = (
            {"iterations": args.iterations or 5}
            if args.small
            else ({"iterations": args.iterations} if args.iterations else {})
        )
        if args.small and method == "mcem":
            opts.update(mh_steps=10, burn_in=5, final_mh_steps=10, final_burn_in=5)
        res = enhance_waveform(model, cfg, noisy, visual={"lips": lips}, method=method, seed=0, **opts)
        enhanced = res.waveform.numpy()  # (T,) float32, same length and scale as `noisy`
        sf.write(out / f"enhanced-{method}.wav", enhanced, sr)
        scores = score(clean, enhanced, noisy, sr, metrics=METRICS)
        rows.append((method, res.seconds, scores))

    print(f"\n{rec['id']} ({rec.get('noise_type')}, {rec.get('snr_db')} dB SNR); enhanced files in {out}")
    print(f"{'method':8s} {'time/s':>7s}  " + "  ".join(f"{m:>16s}" for m in METRICS))
    print(
        f"{'noisy':8s} {'':>7s}  " + "  ".join(f"{rows[0][2].get('input_' + m, float('nan')):16.3f}" for m in METRICS)
    )
    for method, seconds, s in rows:
        cells = [f"{s[m]:7.3f} ({s['delta_' + m]:+6.2f})" if m in s else f"{'n/a':>16s}" for m in METRICS]
        print(f"{method:8s} {seconds:7.1f}  " + "  ".join(cells))
        if s["metric_errors"]:
            print(f"  ({method}: {s['metric_errors']})")


if __name__ == "__main__":
    main()

"""Plug a custom E-step kernel into MCEM enhancement: a frame-wise Langevin (MALA) proposal.

The paper's E-step is random-walk Metropolis-Hastings, accepted frame by frame (``KERNELS["frame-mh"]``,
:class:`pyro_minvae.infer.kernels.FrameMH`). This file registers ``"frame-mala"``: the proposal moves along the
gradient of the per-frame log target ``t_n`` (Metropolis-adjusted Langevin),

    z' = z + d(z) + sqrt(h) eps,   d(z) = clip(h / 2 * grad t(z), +-max_drift),   h = step_var,

and each frame accepts with ``min(1, exp(t(z') - t(z) + log q(z | z') - log q(z' | z)))``. The clipped drift is
a deterministic function of z, so the chain stays exact. ``mcem(..., kernel="frame-mala", kernel_options=...)``
picks it by name (``enhance_waveform`` forwards both). Both kernels enhance the same noisy file and the
acceptance rate, run time and SI-SDR are printed.

    python examples/custom_kernel.py --small                      # tiny corpus, tiny model, ~15 s
    python examples/custom_kernel.py --checkpoint CKPT            # demo corpus test file, your checkpoint
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
import torch

from pyro_minvae.audio_io import load_audio, write_audio
from pyro_minvae.checkpoint import load_model
from pyro_minvae.data.datasets import FrameDataset
from pyro_minvae.data.modalities import MODALITIES
from pyro_minvae.infer.enhance import enhance_waveform
from pyro_minvae.infer.kernels import FrameMH, FrameState
from pyro_minvae.training import TrainConfig, train
from pyro_minvae.metrics import si_sdr
from pyro_minvae.registry import KERNELS
from tiny_corpus import demo_manifest, first_mixture, make_tiny_corpus


@KERNELS.register("frame-mala")
class FrameMALA(FrameMH):
    """Frame-wise MALA. Same constructor as ``FrameMH`` (``potential, step_var, generator``) plus ``max_drift``."""

    def __init__(self, potential, step_var: float = 0.01, generator=None, site: str = "z", max_drift: float = 0.1):
        super().__init__(potential, step_var, generator, site)
        self.max_drift = float(max_drift)

    def score(self, z: torch.Tensor) -> FrameState:
        """The potential and its gradient (cached in ``aux["drift"]`` ``(N, L)``, like the decoder output)."""
        with torch.enable_grad():
            zz = z.detach().requires_grad_(True)
            state = super().score(zz)
            (grad,) = torch.autograd.grad(state.log_target.sum(), zz)
        drift = (0.5 * self.step_var * grad).clamp(-self.max_drift, self.max_drift)
        aux = {k: v.detach() for k, v in state.aux.items()}
        return FrameState(zz.detach(), state.log_target.detach(), {**aux, "drift": drift})

    def _log_q(self, to: torch.Tensor, frm: FrameState) -> torch.Tensor:
        """log q(to | frm) per frame, up to a constant."""
        return -(to - frm.z - frm.aux["drift"]).square().sum(-1) / (2 * self.step_var)

    def step(self, state: FrameState) -> FrameState:
        eps = torch.randn(state.z.shape, generator=self.generator, device=state.z.device, dtype=state.z.dtype)
        prop = self.score(state.z + state.aux["drift"] + self.step_size * eps)
        log_ratio = prop.log_target - state.log_target + self._log_q(state.z, prop) - self._log_q(prop.z, state)
        u = torch.rand(log_ratio.shape, generator=self.generator, device=log_ratio.device, dtype=log_ratio.dtype)
        accept = torch.log(u) < log_ratio
        pick = lambda new, old: torch.where(accept.reshape(-1, *[1] * (new.dim() - 1)), new, old)  # noqa: E731
        self._n_steps += 1
        self._n_accept = self._n_accept + accept.to(log_ratio.dtype).mean()
        return FrameState(
            pick(prop.z, state.z),
            pick(prop.log_target, state.log_target),
            {k: pick(prop.aux[k], v) for k, v in state.aux.items()},
        )


def tiny_checkpoint(manifest: Path, out: Path, seed: int) -> Path:
    """A MIN-VAE trained for two epochs on the tiny corpus (seconds)."""
    mods = ("audio", "lips")
    train_ds = FrameDataset.from_manifest(manifest, "train", mods)
    valid_ds = FrameDataset.from_manifest(manifest, "valid", mods)
    cfg = TrainConfig(family="minvae", encoders=mods, epochs=2, seed=seed)
    return train(cfg, train_ds, valid_ds, out, progress=False).best_path


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="tiny corpus, tiny model, few EM iterations (tests)")
    p.add_argument("--checkpoint", type=Path, default=None, help="trained model (required without --small)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary folder)")
    p.add_argument("--iterations", type=int, default=None, help="EM iterations (default: 5 small, the method's)")
    p.add_argument("--max-drift", type=float, default=0.1, help="MALA: largest drift per latent dim")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    out = args.out or Path(tempfile.mkdtemp(prefix="custom_kernel-"))
    out.mkdir(parents=True, exist_ok=True)
    if args.small:
        manifest = make_tiny_corpus(out / "tiny")
        checkpoint = args.checkpoint or tiny_checkpoint(manifest, out / "model", args.seed)
    elif args.checkpoint is None:
        raise SystemExit("give --checkpoint (e.g. from `pyro-minvae train --model minvae`) or use --small")
    else:
        manifest, checkpoint = demo_manifest(), args.checkpoint

    model, cfg, _ = load_model(checkpoint)
    rec = first_mixture(manifest)
    noisy = load_audio(rec["audio_path"], cfg.sample_rate)
    clean = load_audio(rec["clean_path"], cfg.sample_rate)
    n = cfg.n_frames(noisy.shape[0])
    visual = {
        m: torch.from_numpy(MODALITIES.get(m).load(rec, manifest, n, cfg, noisy.shape[0]))
        for m in model.modalities
        if m != "audio" and m in MODALITIES and rec.get(MODALITIES.get(m).field)
    }
    opts = (
        {"iterations": args.iterations or 5, "mh_steps": 10, "burn_in": 5}
        if args.small
        else ({"iterations": args.iterations} if args.iterations else {})
    )

    print(f"{rec['id']}: noisy SI-SDR {si_sdr(clean, noisy):.2f} dB")
    for kernel, options in (("frame-mh", {}), ("frame-mala", {"max_drift": args.max_drift})):
        res = enhance_waveform(
            model, cfg, noisy, visual, method="mcem", seed=args.seed, kernel=kernel, kernel_options=options, **opts
        )
        acc = float(np.mean([r.acceptance.mean() for _, r in res.chunks]))
        score = si_sdr(clean, res.waveform.numpy())
        assert math.isfinite(score), f"{kernel}: non-finite output"
        write_audio(out / f"enhanced-{kernel}.wav", res.waveform.numpy(), cfg.sample_rate)
        print(
            f"  {kernel:10s}: acceptance {acc:.2f}, {res.seconds:5.1f} s, SI-SDR {score:6.2f} dB "
            f"-> {out / f'enhanced-{kernel}.wav'}"
        )


if __name__ == "__main__":
    main()

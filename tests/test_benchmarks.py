"""The enhancement speed benchmark runs (1 s of audio, untrained paper-sized model) and reports a median RTF
with its spread; the numbers for the record come from full runs (docs/results.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(script: str, out: Path, *args, timeout: int = 240) -> dict:
    """Run ``benchmarks/SCRIPT ARGS --out OUT`` in a fresh process (1 thread) and return the JSON it wrote."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *map(str, args), "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_enhance_speed_reports_median_and_spread(tmp_path):
    report = run_benchmark(
        "enhance_speed.py", tmp_path / "speed.json",
        "--seconds", "1", "--skip-long", "--repeat", "2", "--methods", "fast,mcem", "--threads", "1",
    )  # fmt: skip
    assert [r["method"] for r in report["speed"]] == ["fast", "mcem"]
    for r in report["speed"]:
        assert r["repeats"] == 2 and r["audio_s"] == 1.0 and r["chunks"] == 1
        assert 0 < r["rtf_min"] <= r["rtf"] <= r["rtf_max"]


def test_enhance_speed_takes_the_loop_from_the_checkpoint(tmp_path):
    """A MIN-VAE checkpoint timed without ``--family minvae`` runs (and is labelled) the published loop."""
    import torch

    from pyro_minvae.checkpoint import save_checkpoint
    from pyro_minvae.features import FeatureConfig
    from pyro_minvae.models import build_model

    cfg = FeatureConfig()
    torch.manual_seed(0)
    ckpt = save_checkpoint(
        tmp_path / "minvae.pt",
        build_model("minvae", input_dims={"audio": cfg.n_freq, "lips": cfg.lip_size**2}, latent_dim=4),
        cfg,
    )
    report = run_benchmark(
        "enhance_speed.py", tmp_path / "speed.json", "--checkpoint", ckpt,
        "--seconds", "0.3", "--skip-long", "--repeat", "1", "--methods", "mcem-paper,mcem", "--threads", "1",
    )  # fmt: skip
    rows = {r["method"]: r for r in report["speed"]}
    assert rows["mcem-paper"]["family"] == "minvae" and rows["mcem-paper"]["loop"] == "minvae"
    assert rows["mcem-paper"]["options"] == {"iterations": 100, "h_block": 1, "loop": "minvae"}
    assert rows["mcem"]["family"] == "minvae" and rows["mcem"]["loop"] == "classic"


# the chain settings given to both sides; the authors' NMF has free activations (h_block=1) started from the raw
# U[0, 1) draws (noise_start=None)
SHARED = {"seed": 5, "mh_steps": 6, "burn_in": 3, "rank": 3, "h_block": 1, "noise_start": None}


def _tiny(family):
    import torch

    from pyro_minvae.models import build_model

    torch.manual_seed(3)
    dims = {"audio": 12, "lips": 10} if family == "minvae" else {"audio": 12}
    model = build_model(family, input_dims=dims, latent_dim=3).eval()
    g = torch.Generator().manual_seed(4)
    spec = torch.complex(torch.randn(12, 9, generator=g), torch.randn(12, 9, generator=g))
    lips = {"lips": torch.rand(9, 10, generator=g)} if family == "minvae" else {}
    return model, spec, lips


def _authors(loop: str, iterations: int, model, spec, visual: dict, *args, **kwargs):
    """``benchmarks/authors_loop.LOOP`` on ``model``'s decoder from its initial latents (the lips encoder's when
    there are lips) for ITERATIONS EM iterations, with SHARED's chain settings on pyro-minvae's random stream."""
    import importlib

    from pyro_minvae.models.speech_vae import as_batch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        al = importlib.import_module("authors_loop")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    prefer = "lips" if visual else None
    z0 = model.init_latents(as_batch((spec.abs() ** 2).T, visual), prefer=prefer).numpy().T
    settings = al.AuthorsSettings(
        niter_MCEM=iterations, niter_MH=SHARED["mh_steps"], burnin=SHARED["burn_in"], K_b=SHARED["rank"]
    )
    return getattr(al, loop)(
        al.Decoder(model), spec.numpy(), z0, *args, settings, draws=al.TorchDraws(SHARED["seed"]), **kwargs
    )


def test_authors_minvae_loop_equals_ours_on_shared_draws():
    """Oracle for the benchmark's re-implementation: with equal prior variances (where the published log-s
    normaliser and ours agree) and pyro-minvae's random stream, the published loop gives our ``loop="minvae"``
    output up to float32 rounding."""
    import numpy as np
    import torch

    from pyro_minvae.infer.mcem import mcem

    model, spec, lips = _tiny("minvae")
    with torch.no_grad():
        model.prior.loc.copy_(torch.tensor([[0.4, -0.2, 0.1], [-0.3, 0.3, 0.0]]))
    ours = mcem(model, spec, lips, loop="minvae", iterations=3, **SHARED)
    loc, var = model.prior.loc.detach().numpy(), model.prior.log_var.detach().exp().numpy()
    theirs = _authors("minvae_loop", 3, model, spec, lips, loc[0], var[0], loc[1], var[1])
    assert np.abs(theirs.pi_vec - 0.5).max() > 1e-3  # the responsibilities moved
    np.testing.assert_allclose(ours.responsibilities[:, 0].numpy(), theirs.pi_vec, rtol=1e-4)
    np.testing.assert_allclose(ours.estimate.numpy(), theirs.S_hat, rtol=1e-3, atol=1e-5)


def test_authors_classic_loop_m_step_equals_ours_on_shared_draws():
    """The classic loop's first EM iteration (before the stale gain and the 10-of-25 final samples make the two
    differ) gives our W, H and g on the same random numbers."""
    import numpy as np

    from pyro_minvae.infer.mcem import mcem

    model, spec, _ = _tiny("avae")
    ours = mcem(model, spec, None, iterations=1, final_mh_steps=5, final_burn_in=2, **SHARED)
    theirs = _authors("classic_mcem", 1, model, spec, {}, final_MH=5, final_burnin=2)
    np.testing.assert_allclose(ours.W.numpy(), theirs.W, rtol=1e-4)
    np.testing.assert_allclose(ours.H.numpy(), theirs.H, rtol=1e-4)
    np.testing.assert_allclose(ours.g.numpy(), theirs.g, rtol=1e-4)
    assert np.isfinite(theirs.S_hat).all() and theirs.S_hat.shape == spec.shape


def test_batch_throughput_runs_and_batched_outputs_equal_per_file(tmp_path):
    report = run_benchmark(
        "batch_throughput.py", tmp_path / "throughput.json", "--files", "3", "--iterations", "1", "--batch-size", "2",
        timeout=600,
    )  # fmt: skip
    assert report["files"] == 3 and report["per_file_cpu_s"] > 0 and report["batched_cpu_s"] > 0
    assert report["outputs"]["files"] == 3 and report["outputs"]["si_sdr_batched_vs_per_file_min"] > 60

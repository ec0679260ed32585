"""Shared helpers of the reliability suite: tiny untrained checkpoints, audio/visual fixtures on disk, CLI runs,
and the bookkeeping behind the suite's counts (cases tried, cases that lose data, unhandled tracebacks).

Every case records its outcome with :func:`record`; ``tests/reliability/conftest.py`` prints the totals at the end
of the run (``reliability: N cases tried, D lose data, T unhandled tracebacks``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from click.testing import CliRunner

from pyro_minvae.checkpoint import save_checkpoint
from pyro_minvae.errors import MissingDependencyError, UserInputError
from pyro_minvae.features import FeatureConfig
from pyro_minvae.models import build_model

CFG = FeatureConfig()  # the paper's front-end: 16 kHz, 513 bins, ~30 STFT frames/s (one per video frame)
SR = CFG.sample_rate
LIP = CFG.lip_size
FAST = ("--method", "fast", "--iterations", "1")  # cheapest enhancement: untrained model, one EM iteration

# nodeid -> {"traceback": bool, "data_loss": bool}
OUTCOMES: dict[str, dict] = {}


def _nodeid() -> str:
    return os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" (", 1)[0]


def record(traceback: bool = False, data_loss: bool = False) -> None:
    """Note an outcome for the running case (flags only ever go from False to True)."""
    o = OUTCOMES.setdefault(_nodeid(), {"traceback": False, "data_loss": False})
    o["traceback"] |= bool(traceback)
    o["data_loss"] |= bool(data_loss)


# ---- models --------------------------------------------------------------------------------------------------------
def make_checkpoint(
    path: Path, family: str = "avae", cfg: FeatureConfig = CFG, latent_dim: int = 4, seed: int = 0
) -> Path:
    """A tiny untrained ``family`` model saved with :func:`save_checkpoint`."""
    torch.manual_seed(seed)
    dims = {"audio": cfg.n_freq}
    if family in ("minvae", "avcvae"):
        dims["lips"] = cfg.lip_size**2
    save_checkpoint(path, build_model(family, input_dims=dims, latent_dim=latent_dim), cfg)
    return Path(path)


# ---- signals -------------------------------------------------------------------------------------------------------
def speech_like(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Harmonic bursts with a syllable-rate envelope, peak 0.5, float32 ``(T,)``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    f0 = rng.uniform(110, 220)
    env = np.clip(np.sin(2 * np.pi * 3.0 * t + rng.uniform(0, 6)), 0, None) ** 2
    x = env * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
    x += 1e-3 * rng.standard_normal(t.size)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def white(seconds: float, sr: int = SR, seed: int = 1, scale: float = 0.1) -> np.ndarray:
    return (scale * np.random.default_rng(seed).standard_normal(int(round(seconds * sr)))).astype(np.float32)


def mix_at(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    g = np.sqrt(np.mean(speech**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    m = speech + g * noise
    return (m / max(1.0, float(np.abs(m).max()) / 0.9)).astype(np.float32)


def write_wav(path: Path, x: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> Path:
    sf.write(str(path), x, sr, subtype=subtype)
    return Path(path)


def lips(n_frames: int, size: int = LIP, seed: int = 0, dtype=np.uint8) -> np.ndarray:
    arr = np.random.default_rng(seed).integers(0, 255, size=(n_frames, size, size))
    return arr.astype(dtype) if dtype == np.uint8 else (arr / 255.0).astype(dtype)


# ---- CLI -----------------------------------------------------------------------------------------------------------
def run_cli(*args) -> "click.testing.Result":  # noqa: F821
    """Invoke ``pyro-minvae ARGS`` in-process; exceptions are caught and recorded as unhandled tracebacks."""
    from pyro_minvae.cli.main import cli

    res = CliRunner().invoke(cli, [str(a) for a in args])
    unhandled = res.exception is not None and not isinstance(res.exception, SystemExit)
    record(traceback=unhandled or "Traceback" in res.output)
    if unhandled:  # show it in the failure report
        import traceback

        sys.stderr.write("".join(traceback.format_exception(*res.exc_info)))
    return res


def enhance_file(ckpt, noisy, out, *extra, verbosity: str | None = None) -> "click.testing.Result":  # noqa: F821
    """``pyro-minvae [VERBOSITY] enhance --checkpoint CKPT NOISY -o OUT`` with the cheapest E-step (:data:`FAST`);
    ``extra`` options come after it, so a ``--method``/``--iterations`` there wins. ``verbosity``: "-v" or "-q"."""
    return run_cli(*filter(None, [verbosity]), "enhance", "--checkpoint", ckpt, noisy, "-o", out, *FAST, *extra)


def enhance_manifest_args(ckpt, manifest, out, *extra, method="fast", iterations=1, jobs=1, threads=None) -> list:
    """The arguments of ``enhance --manifest MANIFEST --out-dir OUT`` (by default the cheapest E-step: fast, one
    iteration, one job; ``threads=None`` keeps the CLI's default). ``extra`` options come last, where they win."""
    args = ["enhance", "--checkpoint", ckpt, "--manifest", manifest, "--out-dir", out]
    args += ["--method", method, "--iterations", iterations, "--jobs", jobs]
    return args + ([] if threads is None else ["--threads", threads]) + list(extra)


def enhance_manifest_fast(ckpt, manifest, out, *extra) -> "click.testing.Result":  # noqa: F821
    """``enhance --manifest`` with the cheapest E-step (fast, 1 iteration, 1 job); ``extra`` options last."""
    return run_cli(*enhance_manifest_args(ckpt, manifest, out, *extra))


def evaluate_args(manifest, out, *extra, checkpoints=None, methods=None, metrics=None, jobs=1, threads=None) -> list:
    """The arguments of ``evaluate --manifest MANIFEST --out OUT --no-figures --no-progress``; ``checkpoints`` maps
    labels to files (``--checkpoint LABEL=PATH``); an option given as None keeps the CLI's default."""
    args = ["evaluate", "--manifest", manifest, "--out", out]
    for label, path in (checkpoints or {}).items():
        args += ["--checkpoint", f"{label}={path}"]
    for option, value in (("--methods", methods), ("--metrics", metrics), ("--jobs", jobs), ("--threads", threads)):
        if value is not None:
            args += [option, value]
    return [*args, "--no-figures", "--no-progress", *extra]


def train_args(manifest, out, *extra, epochs=1) -> list:
    """The arguments of ``-q train --no-progress --manifest MANIFEST --out OUT --epochs EPOCHS EXTRA`` (``out=None``:
    no ``--out``, the default folder)."""
    args = ["-q", "train", "--no-progress", "--manifest", manifest, "--epochs", epochs, *extra]
    return args + ([] if out is None else ["--out", out])


# ---- the CLI in a child process (real signals, kills, resource limits, memory) ------------------------------------
REPO = Path(__file__).resolve().parents[2]
CLI_MAIN = "from pyro_minvae.cli.main import main; main()"
ONE_THREAD = "import torch; torch.set_num_threads(1); "  # a prelude for ``child_cli``'s ``code``


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child Python that imports this checkout's pyro_minvae with one OpenMP thread."""
    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **extra)


def child_cli(args, code: str = CLI_MAIN, **env: str) -> dict:
    """``subprocess.run``/``Popen`` keyword arguments (``args``, ``env``) for a child Python that runs ``code`` (by
    default ``pyro-minvae ARGS``) with ``sys.argv[1:]`` = ``ARGS`` in :func:`child_env` (``env``: more variables)."""
    return {"args": [sys.executable, "-c", code, *map(str, args)], "env": child_env(**env)}


# ---- training that stops at a chosen optimiser step ---------------------------------------------------------------
def optimizer_step_hook(monkeypatch, after_steps: int, action) -> dict:
    """Make training's ``make_optimizer`` build optimisers whose step number ``after_steps + 1`` runs
    ``action(params)`` instead of a step (raise KeyboardInterrupt, fill the weights with NaN, ...). Returns the
    step counter ``{"n": steps so far}``."""
    from pyro_minvae.training import loop

    real = loop.make_optimizer
    steps = {"n": 0}

    def make(params, lr):
        opt = real(params, lr)
        step = opt.step

        def counted(*a, **k):
            steps["n"] += 1
            if steps["n"] == after_steps + 1:
                return action(params)
            return step(*a, **k)

        opt.step = counted
        return opt

    monkeypatch.setattr(loop, "make_optimizer", make)
    return steps


def ctrl_c(params=None):
    """An :func:`optimizer_step_hook` action: a Ctrl-C in the middle of a training step."""
    raise KeyboardInterrupt


def assert_user_error(res, fragment: str, code: int = 2) -> None:
    """One ``error:`` line containing ``fragment``, exit ``code``, no traceback."""
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == code, res.output
    assert fragment in res.output, res.output
    assert "Traceback" not in res.output, res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], res.output


def api_call(fn, *args, **kwargs):
    """Call a library entry point; user errors (``UserInputError``, ``MissingDependencyError``) are expected
    outcomes and are returned, anything else is recorded as an unhandled traceback and re-raised."""
    try:
        return fn(*args, **kwargs)
    except (UserInputError, MissingDependencyError) as exc:
        return exc
    except Exception:
        record(traceback=True)
        raise


def leftovers(folder: Path) -> list[str]:
    """Temporary/partial files (``.name.XXXX`` from atomic writes, ``*.partial``, ``*.tmp``) under ``folder``."""
    bad = []
    for p in Path(folder).rglob("*"):
        if p.name.startswith(".") or p.suffix in (".partial", ".tmp"):
            bad.append(str(p.relative_to(folder)))
    return sorted(bad)


def assert_no_partial_files(folder: Path, allowed: set[str] | None = None) -> None:
    left = [p for p in leftovers(folder) if p not in (allowed or set())]
    record(data_loss=bool(left))
    assert not left, f"partial files left: {left}"


# ---- a mixture corpus with some bad files ------------------------------------------------------------------------
BAD_RECORDS = {
    # id: (what is wrong, message fragment the user sees for it)
    "bad-empty": ("noisy wav is 0 bytes", "file is empty (0 bytes)"),
    "bad-corrupt": ("noisy wav header is junk", "not a readable audio file"),
    "bad-missing": ("noisy wav does not exist", "file not found"),
    "bad-short": ("0.1 s clip", "only 0.100 s of audio, at least 0.25 s is needed"),
    "bad-lips-duration": ("2 s of lip frames for 1 s of audio", "60 frames at 30 fps = 2.00 s but the audio lasts"),
    "bad-lips-nan": ("NaN lip frames", "lip ROIs contain NaN or Inf"),
}


def make_mixture_corpus(
    root: Path, n_good: int = 4, bad: tuple[str, ...] = tuple(BAD_RECORDS), seconds: float = 1.0, with_lips: bool = True
) -> Path:
    """Test-split mixture records (clean + noise at 0 dB, lips) under ``root``: ``good-00..`` plus the ``bad``
    ids of :data:`BAD_RECORDS`. Returns the manifest path."""
    from pyro_minvae.data.manifest import write_manifest

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    recs = []
    ids = [f"good-{i:02d}" for i in range(n_good)] + list(bad)
    for k, rid in enumerate(ids):
        secs = 0.1 if rid == "bad-short" else seconds
        clean = speech_like(secs, seed=k)
        noisy = mix_at(clean, white(secs, seed=100 + k), 0.0)
        write_wav(root / f"{rid}.clean.wav", clean)
        write_wav(root / f"{rid}.wav", noisy)
        rec = {
            "id": rid,
            "split": "test",
            "speaker": f"s{k % 2}",
            "kind": "mixture",
            "audio": f"{rid}.wav",
            "clean": f"{rid}.clean.wav",
            "clean_id": f"{rid}.clean",
            "noise_type": "white",
            "snr_db": 0.0,
            "gain": 1.0,
            "fps": 30.0,
            "duration": secs,
        }
        if with_lips:
            n_v = int(round(secs * 30))
            arr = lips(n_v, seed=k)
            if rid == "bad-lips-duration":
                arr = lips(2 * n_v, seed=k)
            if rid == "bad-lips-nan":
                arr = arr.astype(np.float32) / 255.0
                arr[3] = np.nan
            np.save(root / f"{rid}.lips.npy", arr)
            rec["lips"] = f"{rid}.lips.npy"
        recs.append(rec)
    if "bad-empty" in bad:
        (root / "bad-empty.wav").write_bytes(b"")
    if "bad-corrupt" in bad:
        (root / "bad-corrupt.wav").write_bytes(b"RIFFjunkjunkjunk" * 10)
    if "bad-missing" in bad:
        (root / "bad-missing.wav").unlink()
    write_manifest(root / "manifest.jsonl", recs)
    return root / "manifest.jsonl"

"""Every script in examples/ runs with its ``--small`` settings (a subprocess each, tiny corpus built on the fly)
and produces its outputs; each stays under 150 lines; the third modality lives only in its example.

End to end, each example's registrations (a prior, a modality, a kernel; python_api registers none) go through
train -> enhance (mcem and fast) -> evaluate on the tiny corpus, through the command line (``--plugin``, click's
CliRunner) and through the Python API, with no change under pyro_minvae/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SCRIPTS = ("swap_prior.py", "add_modality.py", "custom_kernel.py", "python_api.py")
MAX_LINES = 150


def run_example(name: str, out: Path, *extra: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")  # PYRO_MINVAE_CACHE: isolated by conftest
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--small", "--out", str(out), *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_examples_are_short():
    for name in SCRIPTS + ("tiny_corpus.py",):
        n = len((EXAMPLES / name).read_text().splitlines())
        assert n < MAX_LINES, f"examples/{name} has {n} lines (limit {MAX_LINES})"


def test_every_example_is_tested():
    found = {p.name for p in EXAMPLES.glob("*.py")} - {"tiny_corpus.py"}
    assert found == set(SCRIPTS)


def test_third_modality_needs_no_package_change():
    """``lip_motion`` is registered by examples/add_modality.py alone: nothing under pyro_minvae/ names it."""
    hits = [p for p in (ROOT / "pyro_minvae").rglob("*.py") if "lip_motion" in p.read_text()]
    assert hits == []


def test_swap_prior(tmp_path):
    tmp_path = tmp_path / "out"  # not created beforehand: the example must create it
    out = run_example("swap_prior.py", tmp_path)
    assert (tmp_path / "mog-mixture" / "best.pt").exists() and (tmp_path / "mixture" / "best.pt").exists()
    assert "reloaded MoGMixturePrior" in out
    assert "prior mog-mixture" in out and "nats/frame" in out


def test_add_modality(tmp_path):
    tmp_path = tmp_path / "out"  # not created beforehand: the example must create it
    out = run_example("add_modality.py", tmp_path)
    assert "'lip_motion': 6" in out  # the new stream reached the dataset with its own feature size
    assert "training frames won by lip_motion" in out  # a third mixture component was trained
    assert (tmp_path / "minvae3" / "best.pt").exists()
    assert (tmp_path / "enhanced.wav").stat().st_size > 1000
    assert "lip_motion" in out.splitlines()[-1]  # responsibilities at enhancement over M = 3 components


def test_custom_kernel(tmp_path):
    tmp_path = tmp_path / "out"  # not created beforehand: the example must create it
    out = run_example("custom_kernel.py", tmp_path)
    for kernel in ("frame-mh", "frame-mala"):
        assert (tmp_path / f"enhanced-{kernel}.wav").exists()
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(kernel))
        acc = float(line.split("acceptance")[1].split(",")[0])
        assert 0.0 < acc <= 1.0


def test_python_api(tmp_path):
    tmp_path = tmp_path / "out"  # not created beforehand: the example must create it
    out = run_example("python_api.py", tmp_path)
    for method in ("mcem", "fast"):
        assert (tmp_path / f"enhanced-{method}.wav").exists()
        assert any(ln.startswith(method) for ln in out.splitlines())
    assert "si_sdr" in out and "noisy" in out


@pytest.mark.parametrize("name", SCRIPTS)
def test_full_settings_need_the_demo_corpus(tmp_path, name):
    """Without --small and without a prepared corpus, an example stops with a one-line hint, not a traceback."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "prepare demo" in proc.stderr or "--checkpoint" in proc.stderr


# ---- end to end through the CLI and the Python API ---------------------------------------------------------------
sys.path.insert(0, str(EXAMPLES))  # tiny_corpus, as the examples import it
E2E = {  # example -> (train arguments, extra arguments of `enhance --method mcem`)
    "swap_prior.py": (["--model", "minvae", "--model-arg", 'prior="mog-mixture"'], []),
    "add_modality.py": (["--model", "minvae", "--encoders", "audio,lips,lip_motion"], []),
    "custom_kernel.py": (["--model", "avae"], ["--kernel", "frame-mala"]),
    "python_api.py": (["--model", "minvae"], ["--kernel", "frame-mh-jump"]),
}
FAST_MCEM = ["--iterations", "2"]


@pytest.fixture(scope="module")
def tiny_manifest(tmp_path_factory):
    from tiny_corpus import make_tiny_corpus

    return make_tiny_corpus(tmp_path_factory.mktemp("tiny"))


def _cli(*args):
    """Run ``pyro-minvae ARGS`` in this process; the plugins it records for workers are forgotten afterwards."""
    from click.testing import CliRunner

    from pyro_minvae.cli.main import cli
    from pyro_minvae.plugins import ENV

    before = os.environ.get(ENV)
    try:
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.environ.pop(ENV, None)
        if before is not None:
            os.environ[ENV] = before


def _train(plugin, train_args, manifest, run):
    """`train` for one epoch on at most 300 frames of the manifest into RUN (checkpoint RUN/best.pt)."""
    res = _cli(
        "--plugin", plugin, "train", *train_args, "--manifest", manifest, "--out", run,
        "--epochs", "1", "--max-frames", "300", "--no-progress",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return run / "best.pt"


def _enhance(plugin, ckpt, manifest, out_dir, *options):
    """`enhance` of every record of the manifest into OUT_DIR, in this process (one job)."""
    return _cli(
        "--plugin", plugin, "enhance", "-c", ckpt, "--manifest", manifest, "--out-dir", out_dir, *options, "--jobs", "1"
    )  # fmt: skip


def _evaluate(plugin, manifest, ckpt, out, methods, *options):
    """`evaluate` of METHODS (the checkpoint's E-steps are labelled x-NAME) by SI-SDR, without figures."""
    return _cli(
        "--plugin", plugin, "evaluate", "--manifest", manifest, "--checkpoint", f"x={ckpt}",
        "--methods", methods, "--metrics", "si_sdr", "--no-figures", "--no-progress", "--out", out, *options,
    )  # fmt: skip


def _enhance_and_evaluate(plugin, ckpt, manifest, tmp_path, mcem_options=()):
    """The end of train -> enhance -> evaluate through the CLI: enhance the manifest with MCEM (plus
    MCEM_OPTIONS) and with the fast E-step, then evaluate the fast E-step against the noisy input on one file."""
    for method, options in (("mcem", mcem_options), ("fast", ())):
        out = tmp_path / method
        res = _enhance(plugin, ckpt, manifest, out, "--method", method, *FAST_MCEM, *options)
        assert res.exit_code == 0, res.output
        assert len(list(out.glob("*.wav"))) == 2
    res = _evaluate(plugin, manifest, ckpt, tmp_path / "eval", "noisy,x-fast", "--jobs", "1", "--limit", "1")
    assert res.exit_code == 0, res.output
    assert "x-fast" in (tmp_path / "eval" / "summary.md").read_text()


@pytest.fixture(scope="module")
def trained(tiny_manifest, tmp_path_factory):
    """{example: checkpoint}, each trained for one epoch through the CLI with the example as a plugin."""
    return {
        name: _train(EXAMPLES / name, train_args, tiny_manifest, tmp_path_factory.mktemp(name.split(".")[0]) / "run")
        for name, (train_args, _) in E2E.items()
    }


@pytest.mark.parametrize("name", list(E2E))
def test_example_end_to_end_through_the_cli(name, trained, tiny_manifest, tmp_path):
    _enhance_and_evaluate(EXAMPLES / name, trained[name], tiny_manifest, tmp_path, E2E[name][1])


@pytest.mark.parametrize("name", list(E2E))
def test_example_end_to_end_through_the_python_api(name, trained, tiny_manifest):
    import soundfile as sf

    from pyro_minvae.checkpoint import load_model
    from pyro_minvae.evaluation.vae_methods import CheckpointMethod
    from pyro_minvae.infer.enhance import enhance_waveform
    from pyro_minvae.infer.mcem import MCEMConfig
    from pyro_minvae.metrics import score
    from tiny_corpus import first_mixture

    model, cfg, _ = load_model(trained[name])
    rec = first_mixture(tiny_manifest)
    noisy, sr = sf.read(rec["audio_path"], dtype="float32")
    clean, _ = sf.read(rec["clean_path"], dtype="float32")
    video = {"fps": rec["fps"]}
    for key in ("lips", "landmarks"):
        video[key] = np.load(tiny_manifest.parent / rec[key])
    visual = CheckpointMethod(trained[name]).visual_features(model, cfg, video, len(noisy))
    visual = {k: torch.from_numpy(np.asarray(v)) for k, v in visual.items()}
    kernel = (E2E[name][1] or ["", "frame-mh"])[1]
    res = enhance_waveform(model, cfg, noisy, visual, method="mcem", config=MCEMConfig(iterations=2, kernel=kernel))
    assert res.waveform.shape == noisy.shape and torch.isfinite(res.waveform).all()
    res = enhance_waveform(model, cfg, noisy, visual, method="fast", iterations=2)
    assert res.waveform.shape == noisy.shape
    enhanced = CheckpointMethod(trained[name], "fast", iterations=2)(noisy, sr, video=video)
    scores = score(clean, enhanced, noisy, sr, metrics=("si_sdr",))
    assert np.isfinite(scores["si_sdr"]) and "delta_si_sdr" in scores


def test_mixture_kernel_on_a_plain_checkpoint_is_one_line(trained, tiny_manifest, tmp_path):
    rec_audio = sorted((tiny_manifest.parent / "mixtures").glob("*dB.wav"))[0]
    res = _cli(
        "--plugin",
        EXAMPLES / "custom_kernel.py",
        "enhance",
        "-c",
        trained["custom_kernel.py"],
        rec_audio,
        "-o",
        tmp_path / "x.wav",
        "--kernel",
        "frame-mh-jump",
        *FAST_MCEM,
    )
    assert res.exit_code == 2
    assert res.output.strip().startswith("error:") and len(res.output.strip().splitlines()) == 1, res.output
    assert "needs a mixture prior" in res.output and not (tmp_path / "x.wav").exists()


def test_plugin_imports_siblings_and_reports_its_own_errors(tmp_path):
    (tmp_path / "helper_mod.py").write_text("VALUE = 3\n")
    (tmp_path / "good.py").write_text("from helper_mod import VALUE\n")
    (tmp_path / "bad.py").write_text(
        "from helper_mod import VALUE\n\n\ndef boom():\n    return VALUE / 0\n\n\nboom()\n"
    )
    assert _cli("--plugin", tmp_path / "good.py", "enhance", "--help").exit_code == 0
    res = _cli("--plugin", tmp_path / "bad.py", "enhance", "--help")
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert lines[0].startswith("error: --plugin") and "ZeroDivisionError" in lines[0]
    assert any('bad.py", line 8' in ln for ln in lines) and any('bad.py", line 5' in ln for ln in lines)
    assert "Traceback" not in res.output and "pyro_minvae" not in res.output.replace(str(tmp_path), "")
    assert len(lines) <= 8


# ---- the docs/extending.md snippets: a new prior, guide, kernel and E-step, each used from the command line ------
SNIPPETS = ROOT / "docs" / "snippets"


def test_snippets_are_short_and_included_in_the_docs():
    text = (ROOT / "docs" / "extending.md").read_text()
    for name in ("my_prior.py", "my_guide.py", "my_kernel.py", "my_estep.py"):
        n = len((SNIPPETS / name).read_text().splitlines())
        assert n < 30, f"docs/snippets/{name} has {n} lines"
        assert f'--8<-- "docs/snippets/{name}"' in text


@pytest.mark.parametrize(
    "snippet,train_args",
    [
        ("my_prior.py", ["--model", "vae", "--model-arg", 'prior="student-t"']),
        ("my_guide.py", ["--model", "avae-floored"]),
    ],
)
def test_snippet_model_component_trains_enhances_and_evaluates(snippet, train_args, tiny_manifest, tmp_path):
    plugin = SNIPPETS / snippet
    ckpt = _train(plugin, train_args, tiny_manifest, tmp_path / "run")
    _enhance_and_evaluate(plugin, ckpt, tiny_manifest, tmp_path)


def test_snippet_kernel_and_estep_from_the_command_line(trained, tiny_manifest, tmp_path):
    ckpt = trained["custom_kernel.py"]
    kernel = SNIPPETS / "my_kernel.py"
    res = _enhance(kernel, ckpt, tiny_manifest, tmp_path / "k", "--kernel", "frame-mh-laplace", *FAST_MCEM)
    assert res.exit_code == 0, res.output
    estep = SNIPPETS / "my_estep.py"
    res = _enhance(estep, ckpt, tiny_manifest, tmp_path / "e", "--method", "encoder-em", "--iterations", "3")
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "e").glob("*.wav"))) == 2
    res = _evaluate(estep, tiny_manifest, ckpt, tmp_path / "eval", "noisy,x-encoder-em", "--jobs", "1", "--limit", "1")
    assert res.exit_code == 0, res.output


def test_snippet_kernel_samples_a_gaussian_target(monkeypatch):
    """Oracle: on independent N(1, 0.5^2) frames the Laplace-step chain's samples have that mean and variance."""
    from pyro_minvae.infer.kernels import run_chain
    from pyro_minvae.plugins import ENV, load_plugin
    from pyro_minvae.registry import KERNELS

    monkeypatch.delenv(ENV, raising=False)  # forgotten after the test
    load_plugin(str(SNIPPETS / "my_kernel.py"))
    target = lambda z: (-0.5 * ((z - 1.0) / 0.5).square().sum(-1), {})  # noqa: E731
    kernel = KERNELS.build(
        "frame-mh-laplace", potential=target, step_var=0.5, generator=torch.Generator().manual_seed(0)
    )
    out = run_chain(kernel, torch.zeros(4000, 1), 300, 100)
    assert abs(float(out.z.mean()) - 1.0) < 0.02 and abs(float(out.z.var()) - 0.25) < 0.02
    assert 0.2 < out.accept_rate < 0.9


def test_plugin_reaches_worker_processes(trained, tiny_manifest, tmp_path):
    """Spawned workers load the parent's --plugin files ($PYRO_MINVAE_PLUGINS) before loading the checkpoint."""
    res = _evaluate(
        EXAMPLES / "swap_prior.py", tiny_manifest, trained["swap_prior.py"], tmp_path / "eval", "x-fast", "--jobs", "2"
    )
    assert res.exit_code == 0, res.output
    assert "; 0 failed pair(s)" in res.output and "unknown prior" not in res.output

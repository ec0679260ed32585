"""Regressions found by an independent new-user trial (issue 15, second trial): each case is one member of a class
of failures (click usage errors as multi-line blocks, OS errors about a file name as tracebacks, ...)."""

from __future__ import annotations

import json

import pytest
from reliability_helpers import FAST, assert_user_error, evaluate_args, make_checkpoint, run_cli, speech_like, write_wav


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("enhance", "-c", "x.pt", "a.wav", "-o", "o.wav", "--iterations", "abc"), "'abc' is not a valid integer"),
        (("enhance", "-c", "x.pt", "a.wav", "-o", "o.wav", "--iterations", "nan"), "'nan' is not a valid integer"),
        (("enhance", "--bogus"), "No such option '--bogus'"),
        (("train", "--epochs", "1.5"), "'1.5' is not a valid integer"),
        (("evaluate", "--jobs", "0"), "--jobs"),
        (("prepare", "folder"), "Missing option '--root'"),
        (("bogus",), "No such command 'bogus'"),
    ],
)
def test_click_usage_errors_are_one_line(args, fragment):
    """Options click itself refuses (a type, a range, an unknown option or command) end in the one-line form of
    every other user error, naming the --help to read, not click's three-line usage block."""
    res = run_cli(*args)
    assert_user_error(res, fragment)
    assert "Usage:" not in res.output and "--help'" in res.output


def test_usage_error_on_a_file_option_names_the_file(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"x")
    res = run_cli("train", "--out", tmp_path / "a.wav")
    assert_user_error(res, "is a file")


def test_manifest_id_too_long_for_a_file_name(tmp_path, avae):
    """A hand-written manifest whose id is longer than a file name may be: one line naming the id, nothing written
    (was: OSError ENAMETOOLONG traceback from Path.exists)."""
    write_wav(tmp_path / "a.wav", speech_like(1.0))
    rec = {"id": "x" * 400, "split": "test", "speaker": "s", "kind": "noisy", "audio": "a.wav", "fps": 30.0}
    (tmp_path / "m.jsonl").write_text(json.dumps(rec) + "\n")
    res = run_cli("enhance", "-c", avae, "--manifest", tmp_path / "m.jsonl", "--out-dir", tmp_path / "od", *FAST)
    assert_user_error(res, "too long")
    assert not any((tmp_path / "od").glob("*.wav"))


def test_os_error_about_a_name_is_one_line(tmp_path, avae):
    """Any OS error about a user's path that is not a bug (here a name over 255 bytes) is one line with a fix."""
    write_wav(tmp_path / "a.wav", speech_like(1.0))
    res = run_cli("enhance", "-c", avae, tmp_path / "a.wav", "-o", tmp_path / ("y" * 300 + ".wav"), *FAST)
    assert_user_error(res, "too long")


@pytest.mark.parametrize("value", [str(10**20), "100001"])
def test_absurd_iteration_counts_are_refused(tmp_path, avae, value):
    """--iterations 1e20 ran for ever (a typo nobody can wait out); the bound is far above any useful count."""
    write_wav(tmp_path / "a.wav", speech_like(1.0))
    res = run_cli("enhance", "-c", avae, tmp_path / "a.wav", "-o", tmp_path / "o.wav", "--iterations", value)
    assert_user_error(res, f"--iterations {value}: must be a whole number >= 1")
    assert not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"lips": {"pool": -1}}, "pool must be a whole number >= 1"),
        ({"lips": {"pool": 0}}, "pool must be a whole number >= 1"),
        ({"lips": {"pool": 1.5}}, "pool must be a whole number >= 1"),
        ({"lips": {"hidden": [0]}}, "hidden layer sizes must be whole numbers >= 1"),
        ({"lips": {"hidden": [64, -3]}}, "hidden layer sizes must be whole numbers >= 1"),
    ],
)
def test_encoder_options_out_of_range_are_user_errors(options, fragment):
    """--encoder-option lips.pool=-1 built a model that crashed in the first step with a 250-line traceback;
    lips.hidden=[0] trained a zero-width layer with exit 0. Both are refused when the model is built."""
    from pyro_minvae.errors import UserInputError
    from pyro_minvae.training import TrainConfig
    from pyro_minvae.training.builders import make_model

    cfg = TrainConfig(family="minvae", latent_dim=4, model_kwargs={"encoder_options": options})
    with pytest.raises(UserInputError, match=fragment):
        make_model(cfg, {"audio": 513, "lips": 67 * 67})


def test_evaluate_label_naming_another_family_is_refused(tmp_path, avae):
    """`--checkpoint minvae=<an A-VAE file>` printed A-VAE numbers under MIN-VAE's name, exit 0."""
    from reliability_helpers import make_mixture_corpus

    manifest = make_mixture_corpus(tmp_path / "c", n_good=1, bad=())
    res = run_cli(*evaluate_args(manifest, tmp_path / "ev", checkpoints={"minvae": avae}, jobs=None))
    assert_user_error(res, "the label names the 'minvae' family but the file holds model family 'avae'")
    assert not (tmp_path / "ev").exists()


@pytest.mark.parametrize("spec", ["noise:inf", "drop:nan", "shift:nan", "occlude:-inf"])
def test_non_finite_video_degradation_is_refused(spec):
    """`--video-degrade noise:inf` was accepted (exit 0; the degraded lips would be NaN)."""
    from pyro_minvae.errors import UserInputError
    from pyro_minvae.evaluation.degrade import parse_degradation

    with pytest.raises(UserInputError, match="must be a finite number"):
        parse_degradation(spec)


@pytest.mark.parametrize("method", ["fast", "mcem"])
def test_init_from_a_missing_stream_is_one_line(tmp_path, method):
    """`--init lips` on a MIN-VAE checkpoint without --video was a KeyError traceback."""
    ck = make_checkpoint(tmp_path / "minvae.pt", "minvae")
    write_wav(tmp_path / "a.wav", speech_like(1.0))
    res = run_cli(
        "enhance",
        "-c",
        ck,
        tmp_path / "a.wav",
        "-o",
        tmp_path / "o.wav",
        "--init",
        "lips",
        "--method",
        method,
        "--iterations",
        "1",
    )
    assert_user_error(res, "--init lips: there is no lips stream for a.wav")
    assert not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize("signame, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_stop_signal_while_the_command_loads_is_one_line(signame, code):
    """Ctrl-C in the first fraction of a second (while the sub-command modules import) printed a KeyboardInterrupt
    traceback from importlib; now one line and 128 + signum. The signal is sent from an import hook, so it lands
    exactly while pyro_minvae.cli.main imports its sub-commands."""
    import subprocess
    import sys

    script = (
        "import os, signal, sys\n"
        # as from a terminal: a background job (nohup, `cmd &` in a script) starts with SIGINT ignored, which the
        # CLI respects on purpose
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "class Hook:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'pyro_minvae.cli.enhance':\n"
        f"            os.kill(os.getpid(), signal.{signame})\n"
        "        return None\n"
        "sys.meta_path.insert(0, Hook())\n"
        "from pyro_minvae.cli.main import main\n"
        "print('not stopped')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr and "not stopped" not in proc.stdout
    assert proc.stderr.strip() == f"interrupted ({signame}) while starting; nothing was done"


def test_loading_handlers_are_removed_once_loaded():
    """In a process that imports the CLI (tests, notebooks) the loading-time handlers do not outlive the import."""
    import signal

    import pyro_minvae.cli.main as m

    assert signal.getsignal(signal.SIGINT) is not m._stopped_while_loading
    assert signal.getsignal(signal.SIGTERM) is not m._stopped_while_loading


def test_visual_only_encoder_without_its_stream_is_one_line(tmp_path):
    """A V-VAE checkpoint (lips encoder only) given no --video was a KeyError traceback from the guide."""
    from pyro_minvae.checkpoint import save_checkpoint
    from pyro_minvae.models import build_model
    from reliability_helpers import CFG

    ck = tmp_path / "vvae.pt"
    save_checkpoint(
        ck,
        build_model("vae", input_dims={"audio": CFG.n_freq, "lips": CFG.lip_size**2}, latent_dim=4, encoder="lips"),
        CFG,
    )
    write_wav(tmp_path / "a.wav", speech_like(1.0))
    res = run_cli("enhance", "-c", ck, tmp_path / "a.wav", "-o", tmp_path / "o.wav", *FAST)
    assert_user_error(res, "this checkpoint's encoder reads lips")
    assert not (tmp_path / "o.wav").exists()


def test_output_that_is_a_dangling_symlink_is_not_replaced(tmp_path, avae):
    """`-o link.wav` where link.wav is a symbolic link to a file not yet there replaced the user's link silently;
    now refused without --overwrite, like any existing output."""
    import os

    write_wav(tmp_path / "a.wav", speech_like(1.0))
    link = tmp_path / "link.wav"
    os.symlink(tmp_path / "later" / "x.wav", link)
    res = run_cli("enhance", "-c", avae, tmp_path / "a.wav", "-o", link, *FAST)
    assert_user_error(res, "is a symbolic link")
    assert link.is_symlink() and os.readlink(link) == str(tmp_path / "later" / "x.wav")
    res = run_cli("enhance", "-c", avae, tmp_path / "a.wav", "-o", link, "--overwrite", *FAST)
    assert res.exit_code == 0, res.output


def test_stop_signal_during_the_numpy_import_is_not_swallowed(tmp_path, avae):
    """SIGTERM/SIGINT while numpy imports used to land inside torch's C initialisation, which swallows the
    interruption ("Failed to initialize NumPy"): `enhance` then ran to the end, exit 0 (or died on an ImportError
    traceback). numpy is now imported while the command loads, where a signal ends the start cleanly."""
    import subprocess
    import sys

    write_wav(tmp_path / "a.wav", speech_like(1.0))
    script = (
        "import os, signal, sys\n"
        "class Hook:\n"
        "    fired = False\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'numpy.lib' and not Hook.fired:\n"
        "            Hook.fired = True\n"
        "            os.kill(os.getpid(), signal.SIGTERM)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Hook())\n"
        "from pyro_minvae.cli.main import main\n"
        "sys.argv = ['pyro-minvae'] + sys.argv[1:]\n"
        "main()\n"
    )
    out = tmp_path / "o.wav"
    proc = subprocess.run(
        [sys.executable, "-c", script, "enhance", "-c", str(avae), str(tmp_path / "a.wav"), "-o", str(out), *FAST],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 143, proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


@pytest.mark.parametrize(
    "setting, fragment",
    [
        ("f:iterations=0", "--setting f: --iterations 0: must be a whole number >= 1"),
        ("f:iterations=100000000000", "must be a whole number >= 1"),
        ("f:gain_floor=nan", "--setting f: --method fast"),
        ("f:bogus=1", "unknown option(s) bogus"),
    ],
)
def test_tune_settings_are_checked_before_any_file(tmp_path, avae, setting, fragment):
    """A bad --setting value made every (setting, file) pair fail one by one (exit 1, one TypeError/ValueError
    line per file); now one line before any work."""
    from reliability_helpers import make_mixture_corpus

    manifest = make_mixture_corpus(tmp_path / "c", n_good=1, bad=())
    res = run_cli(
        "tune",
        "--checkpoint",
        avae,
        "--estep",
        "fast",
        "--manifest",
        manifest,
        "--no-progress",
        "--setting",
        "default",
        "--setting",
        setting,
        "--out",
        tmp_path / "tu",
    )
    assert_user_error(res, fragment)
    assert not (tmp_path / "tu").exists()


def test_plugin_that_is_not_python_or_not_importable_is_one_line(tmp_path):
    from pyro_minvae.errors import UserInputError
    from pyro_minvae.plugins import load_plugin

    text = tmp_path / "plugin.txt"
    text.write_text("not python\n")
    for spec, expected in ((str(text), "a plugin is a .py file"), ("nosuch_pkg.mod", "no module named 'nosuch_pkg'")):
        with pytest.raises(UserInputError, match=expected) as info:
            load_plugin(spec)
        assert "\n" not in str(info.value)

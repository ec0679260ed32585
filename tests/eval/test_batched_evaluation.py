"""Batched evaluation (``EvalConfig.batch_size`` > 1): the task plan, rows and seeds as one by one, resumption
after an interruption inside a batch, and a checkpoint's MCEM method batched vs alone (the oracle: one by one)."""

from __future__ import annotations

import numpy as np
import pytest

from eval_synth import build_manifest
from pyro_minvae.baselines import Enhancer
from pyro_minvae.evaluation import EvalConfig, resolve_methods, run_evaluation
from pyro_minvae.evaluation.items import load_item, select_items
from pyro_minvae.evaluation.results import ResultsFile
from pyro_minvae.evaluation.runner import plan_tasks

METRICS = ("si_sdr", "stoi")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return build_manifest(tmp_path_factory.mktemp("corpus"), snrs=(-5, 5), noises=("white", "pink"), n_clean=1)


class Batching(Enhancer):
    """A method that can batch: records each ``enhance_batch`` call's seeds; can stop (Ctrl-C) at a chosen batch."""

    def __init__(self, stop_at: int = 0, fail_at: int = 0):
        self.batches, self.calls, self.stop_at, self.fail_at = [], [], stop_at, fail_at

    def batch_refusal(self):
        return None

    def enhance_batch(self, noisy, sample_rate, *, clean=None, video=None, seeds):
        self.batches.append(list(seeds))
        if len(self.batches) == self.stop_at:
            raise KeyboardInterrupt
        if len(self.batches) == self.fail_at:
            raise RuntimeError("the batch broke")
        return super().enhance_batch(noisy, sample_rate, clean=clean, video=video, seeds=seeds)

    def enhance(self, noisy, sample_rate, *, clean=None, video=None, seed=0):
        self.calls.append(seed)
        return 0.5 * noisy + 1e-3 * (seed % 7)

    def __repr__(self):
        return "Batching()"


def _cfg(manifest, out, **kw):
    return EvalConfig(manifest=manifest, out_dir=out, **{"jobs": 1, "metrics": METRICS, "figures": False, **kw})


def _scores(out, metrics=METRICS):
    rows = ResultsFile(out / "results.csv", metrics).read()
    assert all(r["status"] == "ok" for r in rows), rows
    return {(r["method"], r["id"]): tuple(r[m] for m in metrics) for r in rows}


def test_plan_groups_only_the_methods_that_batch():
    recs = [{"id": str(i)} for i in range(7)]
    methods = {"b": Batching(), "noisy": resolve_methods(["noisy"])["noisy"]}
    pending = {r["id"]: ["b", "noisy"] for r in recs}
    pending["3"] = ["noisy"]  # finished earlier for b
    tasks = plan_tasks(recs, pending, methods, 4)
    assert [([r["id"] for r in g], m) for g, m in tasks[:2]] == [(["0", "1", "2"], ["b"]), (["4", "5", "6"], ["b"])]
    assert [([r["id"] for r in g], m) for g, m in tasks[2:]] == [([r["id"]], ["noisy"]) for r in recs]
    two_workers = plan_tasks(recs, pending, methods, 8, jobs=2)  # one batch would leave a worker idle
    assert [[r["id"] for r in g] for g, m in two_workers if m == ["b"]] == [["0", "1", "2"], ["4", "5", "6"]]
    one_by_one = plan_tasks(recs, pending, methods, 1)  # today's plan: one task per file, all its methods
    assert [([r["id"] for r in g], m) for g, m in one_by_one] == [([r["id"]], pending[r["id"]]) for r in recs]
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        EvalConfig(manifest="m.jsonl", out_dir="o", batch_size=0)


def test_batched_rows_and_seeds_equal_one_by_one(manifest, tmp_path):
    alone, batched = Batching(), Batching()
    noisy = resolve_methods(["noisy"])["noisy"]
    run_evaluation(_cfg(manifest, tmp_path / "a", batch_size=1), {"b": alone, "noisy": noisy})
    rep = run_evaluation(_cfg(manifest, tmp_path / "b", batch_size=3), {"b": batched, "noisy": noisy})
    assert rep.ok and rep.n_evaluated == 8
    assert alone.batches == [] and [len(b) for b in batched.batches] == [2, 2]
    assert sorted(s for b in batched.batches for s in b) == sorted(alone.calls)  # each file's own seed
    assert _scores(tmp_path / "a") == _scores(tmp_path / "b")


def test_an_interrupted_batch_is_redone_and_finished_ones_are_kept(manifest, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_evaluation(_cfg(manifest, tmp_path, batch_size=2), {"b": Batching(stop_at=2)})
    assert len(ResultsFile(tmp_path / "results.csv", METRICS).read()) == 2  # the first batch
    rest = Batching()
    rep = run_evaluation(_cfg(manifest, tmp_path, batch_size=2), {"b": rest})
    assert rep.ok and rep.n_evaluated == 2 and [len(b) for b in rest.batches] == [2]
    assert len(_scores(tmp_path)) == 4


def test_a_failed_batch_fails_its_records_and_the_run_goes_on(manifest, tmp_path):
    rep = run_evaluation(_cfg(manifest, tmp_path, batch_size=2), {"b": Batching(fail_at=1)})
    assert [b["reason"] for b in rep.bad] == ["method: RuntimeError: the batch broke"] * 2
    assert len(ResultsFile(tmp_path / "results.csv", METRICS).read()) == 4
    rest = Batching()
    assert run_evaluation(_cfg(manifest, tmp_path, batch_size=2), {"b": rest}).ok  # retried
    assert [len(b) for b in rest.batches] == [2]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from pyro_minvae.checkpoint import save_checkpoint
    from pyro_minvae.features import FeatureConfig
    from pyro_minvae.models import build_model

    cfg = FeatureConfig()
    path = tmp_path_factory.mktemp("ckpt") / "avae.pt"
    save_checkpoint(path, build_model("avae", input_dims={"audio": cfg.n_freq}, latent_dim=4), cfg)
    return path


@pytest.mark.parametrize("options", [{}, {"loop": "minvae"}])
def test_checkpoint_mcem_batched_equals_one_by_one(manifest, checkpoint, tmp_path, options):
    """The batched MCEM E-step inside evaluate: every file's scores equal its one-by-one scores (float rounding)."""
    from pyro_minvae.evaluation.vae_methods import CheckpointMethod

    short = dict(iterations=3, mh_steps=4, burn_in=2, final_mh_steps=4, final_burn_in=2, **options)
    method = CheckpointMethod(checkpoint, "mcem", **short)
    assert method.batch_refusal() is None
    assert CheckpointMethod(checkpoint, "fast").batch_refusal() is not None
    items = [load_item(r, manifest) for r in select_items(manifest)]
    seeds = [11, 12, 13, 14]
    together = method.enhance_batch([it.noisy for it in items], 16000, video=[it.video for it in items], seeds=seeds)
    for it, seed, wave in zip(items, seeds, together):
        np.testing.assert_allclose(wave, method(it.noisy, 16000, video=it.video, seed=seed), atol=1e-5)
    run_evaluation(_cfg(manifest, tmp_path / "a", metrics=("si_sdr",), batch_size=1), {"m": method})
    run_evaluation(_cfg(manifest, tmp_path / "b", metrics=("si_sdr",), batch_size=4), {"m": method})
    a, b = _scores(tmp_path / "a", ("si_sdr",)), _scores(tmp_path / "b", ("si_sdr",))
    assert a.keys() == b.keys() and len(a) == 4
    for k in a:
        assert b[k][0] == pytest.approx(a[k][0], abs=1e-5), k


def test_evaluate_batch_size_from_the_command_line(manifest, checkpoint, tmp_path):
    """`evaluate --batch-size 4` gives the rows of `--batch-size 1`; 0 is refused in one line."""
    from click.testing import CliRunner

    from pyro_minvae.cli.main import cli

    common = ["evaluate", "--manifest", str(manifest), "--checkpoint", f"avae={checkpoint}", "--methods", "avae-mcem"]
    common += ["--metrics", "si_sdr", "--jobs", "1", "--no-figures", "--no-progress"]
    for size, out in (("1", "a"), ("4", "b")):
        res = CliRunner().invoke(cli, [*common, "--out", str(tmp_path / out), "--batch-size", size])
        assert res.exit_code == 0, res.output
    a, b = _scores(tmp_path / "a", ("si_sdr",)), _scores(tmp_path / "b", ("si_sdr",))
    assert a.keys() == b.keys() and len(a) == 4
    assert all(b[k][0] == pytest.approx(a[k][0], abs=1e-5) for k in a)
    res = CliRunner().invoke(cli, [*common, "--out", str(tmp_path / "c"), "--batch-size", "0"])
    assert res.exit_code == 2 and "--batch-size" in res.output and "Traceback" not in res.output

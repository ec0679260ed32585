"""scripts/make_results.py keeps the hand-written sections of the page once, whatever the regeneration count."""

from helpers_scripts import load_script


def _block(name: str, body: str) -> str:
    return f"<!-- begin: {name} (hand-written) -->\n{body}\n<!-- end: {name} -->"


def test_hand_written_sections_are_kept_once_and_not_repeated_from_the_discussion():
    mr = load_script("make_results")
    speed, lips = _block("speed", "## Speed\ntable"), _block("lips", "## Lips\nnumbers")
    discussion = f"## Discussion\ntext\n\n{speed}\n"
    page = f"# Results\n\n{discussion}\n\n{speed}\n\n{speed}\n\n{lips}\n\n{lips}\n"  # what older runs left
    assert mr.kept_sections(page, discussion) == [lips]
    assert mr.kept_sections("# Results\n", discussion) == []
    # regenerating from its own output is a fixed point
    regenerated = "\n\n".join(["# Results", discussion, *mr.kept_sections(page, discussion)]) + "\n"
    assert mr.kept_sections(regenerated, discussion) == [lips]
    assert regenerated.count("## Speed") == 1 and regenerated.count("## Lips") == 1


def test_training_table_of_the_shipped_models_reads_each_checkpoints_own_record():
    import torch

    from pyro_minvae.pretrained import pretrained_path

    mr = load_script("make_results")
    ckpts = {f: pretrained_path(f) for f in mr.FAMILIES}
    rows = {r.model: r for r in mr.checkpoint_rows(ckpts)}
    assert set(rows) == set(mr.FAMILIES)
    for name, path in ckpts.items():
        record = torch.load(path, map_location="cpu", weights_only=False)
        assert rows[name].epochs == record["epoch"] == record["history"][-1]["epoch"]
        assert rows[name].elbo == record["best_valid_elbo"]
        assert rows[name].seconds == record["history"][-1]["elapsed_s"]
    assert rows["minvae"].resp.startswith("audio ") and ", lips " in rows["minvae"].resp
    assert rows["avae"].resp == ""  # one encoder: no responsibilities
    table = mr.training_table(list(rows.values()), to_best=True).splitlines()
    assert table[0].startswith("| model | epochs up to the best epoch |") and len(table) == 2 + len(rows)
    assert "| avae | " in table[2] and table[2].endswith(" | - |")


def test_training_table_of_train_best_runs_reads_their_summaries(tmp_path):
    import json

    mr = load_script("make_results")
    (tmp_path / "avae").mkdir()
    (tmp_path / "avae" / "summary.json").write_text(
        json.dumps({"epochs_run": 40, "best_valid_elbo": 2043.46, "elapsed_s": 1205.4, "responsibilities": {}})
    )
    comp = {"mean_q": 0.996, "win_rate_speech": 1.0, "win_rate_silence": 0.99}
    (tmp_path / "minvae").mkdir()
    (tmp_path / "minvae" / "summary.json").write_text(
        json.dumps({"epochs_run": 45, "best_valid_elbo": 1936.6, "responsibilities": {"components": {"audio": comp}}})
    )
    rows = mr.summary_rows(tmp_path)
    assert [r.model for r in rows] == ["avae", "minvae"]  # the table's order; runs without a summary left out
    table = mr.training_table(rows).splitlines()
    assert table[0].startswith("| model | epochs | best validation ELBO")
    assert table[2] == "| avae | 40 | 2043.5 | 1205 | - |"
    assert table[3] == "| minvae | 45 | 1936.6 | nan | audio 1.00 (speech 100%, silence 99% of frames won) |"

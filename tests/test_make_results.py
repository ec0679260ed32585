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
    rows = {r["model"]: r for r in mr.checkpoint_rows(ckpts)}
    assert set(rows) == set(mr.FAMILIES)
    for name, path in ckpts.items():
        record = torch.load(path, map_location="cpu", weights_only=False)
        assert rows[name]["epochs"] == record["epoch"] == record["history"][-1]["epoch"]
        assert rows[name]["elbo"] == record["best_valid_elbo"]
        assert rows[name]["seconds"] == record["history"][-1]["elapsed_s"]
    assert rows["minvae"]["resp"].startswith("audio ") and ", lips " in rows["minvae"]["resp"]
    assert rows["avae"]["resp"] == ""  # one encoder: no responsibilities
    table = mr.training_table(list(rows.values()), to_best=True).splitlines()
    assert table[0].startswith("| model | epochs up to the best epoch |") and len(table) == 2 + len(rows)
    assert "| avae | " in table[2] and table[2].endswith(" | - |")

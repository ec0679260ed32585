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

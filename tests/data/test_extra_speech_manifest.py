"""scripts/extra_speech_manifest.py: a corpus widened by training-only voices keeps every base record and split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pyro_minvae.data.datasets import FrameDataset
from pyro_minvae.data.prepare.debian import PackageTree
from pyro_minvae.errors import UserInputError

from helpers_scripts import load_script
from prepare_fakes import speechlike, write_g722


@pytest.fixture(scope="module")
def script():
    return load_script("extra_speech_manifest")


def _base(root: Path) -> Path:
    """A two-speaker corpus: a training and a validation utterance, relative paths."""
    records = []
    for i, (split, speaker) in enumerate((("train", "lang-a"), ("valid", "lang-b"))):
        rel = f"clean/{split}/{speaker}.wav"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, speechlike(1.5, i), 16000, subtype="PCM_16")
        source = {"package": "p", "version": "1", "file": "f", "parts": [{"sha256": "ab" * 32}]}
        records.append(
            {"id": f"{speaker}-0", "split": split, "kind": "clean", "speaker": speaker, "audio": rel, "source": source}
        )
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root / "manifest.jsonl"


def _package(root: Path, voice: str, n: int = 3, lang: str = "it") -> dict[str, PackageTree]:
    name = f"asterisk-core-sounds-{lang}-g722"
    base = root / name / "tree" / "usr/share/asterisk/sounds" / voice
    for i in range(n):
        write_g722(base / f"prompt-{i}.g722", speechlike(1.2 + 0.2 * i, 100 + i))
    write_g722(base / "too-short.g722", speechlike(0.45, 7, lead=0.1))
    write_g722(base / "silence/1.g722", np.zeros(16000, np.float32))
    return {name: PackageTree(name, "1.6.1-1", root / name / "tree", "0" * 64)}


def test_adds_training_only_voice_and_keeps_the_base(script, tmp_path):
    base = _base(tmp_path / "base")
    out = script.build(base, _package(tmp_path / "pk", "it_IT_m_Carlo"), tmp_path / "wide")
    records = [json.loads(line) for line in out.read_text().splitlines()]
    old, new = records[:2], records[2:]
    for r, orig in zip(old, (json.loads(x) for x in base.read_text().splitlines())):
        assert r == {**orig, "audio": str(base.parent / orig["audio"])}  # unchanged but for absolute paths
    assert [r["id"] for r in new] == ["asterisk-Carlo-0000", "asterisk-Carlo-0001", "asterisk-Carlo-0002"]
    assert {(r["split"], r["kind"], r["speaker"]) for r in new} == {("train", "clean", "asterisk-Carlo")}
    assert [r["source"]["file"].rsplit("/", 1)[1] for r in new] == [f"prompt-{i}.g722" for i in range(3)]
    for r in new:  # 16 kHz, trimmed and normalised like the demo corpus's clips
        wave, sr = sf.read(out.parent / r["audio"])
        assert sr == 16000 and abs(len(wave) / sr - r["duration"]) < 1e-3 and 0.0 < np.abs(wave).max() <= 0.9
    # the training split grows by the new voice; validation is the base's own
    train = FrameDataset.from_manifest(out, "train", use_cache=False)
    assert train.ids == ["lang-a-0", *[r["id"] for r in new]]
    assert FrameDataset.from_manifest(out, "valid", use_cache=False).ids == ["lang-b-0"]
    assert not (tmp_path / ".wide.partial").exists()


def test_refusals_leave_nothing_behind(script, tmp_path):
    base = _base(tmp_path / "base")
    clash = _package(tmp_path / "pk1", "xx_XX_f_b", lang="xx")
    base_records = [json.loads(x) for x in base.read_text().splitlines()]
    base.write_text("".join(json.dumps({**r, "speaker": "asterisk-b"}) + "\n" for r in base_records))
    with pytest.raises(UserInputError, match="already a speaker of the base corpus"):
        script.build(base, clash, tmp_path / "wide")
    assert not (tmp_path / "wide").exists()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("keep\n")
    with pytest.raises(UserInputError, match="not an empty folder"):
        script.build(base, _package(tmp_path / "pk2", "it_IT_m_Carlo"), tmp_path / "taken")
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["notes.txt"]
    assert not list(tmp_path.glob(".*.partial"))


def test_prompts_already_in_the_base_are_left_out(script, tmp_path):
    pk = _package(tmp_path / "pk", "it_IT_m_Carlo")
    ((name, tree),) = pk.items()
    first = tree.root / "usr/share/asterisk/sounds/it_IT_m_Carlo/prompt-0.g722"
    from pyro_minvae.data.manifest import sha256_file

    base = _base(tmp_path / "base")
    records = [json.loads(x) for x in base.read_text().splitlines()]
    records[0]["source"]["parts"] = [{"sha256": sha256_file(first)}]
    base.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = script.build(base, pk, tmp_path / "wide")
    files = [json.loads(x)["source"]["file"] for x in out.read_text().splitlines()[2:]]
    assert [f.rsplit("/", 1)[1] for f in files] == ["prompt-1.g722", "prompt-2.g722"]


def test_cli_refuses_other_packages_in_one_line(script, capsys):
    with pytest.raises(UserInputError, match="only asterisk-core-sounds-<lang>-g722"):
        script.main(["--package", "klettres-data", "--out", "/nonexistent/x"])

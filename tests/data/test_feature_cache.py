"""The training-feature cache: a visual file rewritten under an unchanged manifest (lips rendered or extracted
again; manifests hold no checksum of them) is read again, not served from the cache; unchanged files are not."""

from __future__ import annotations

import os
import shutil

import numpy as np

from pyro_minvae.data.datasets import FrameDataset
from pyro_minvae.data.manifest import read_manifest, resolve


def test_rewritten_lips_rebuild_the_cached_features_and_unchanged_ones_do_not(fake_manifest, tmp_path, monkeypatch):
    corpus = shutil.copytree(fake_manifest.parent, tmp_path / "corpus")
    manifest = corpus / fake_manifest.name
    first = FrameDataset.from_manifest(manifest, "train", ("audio", "lips"))
    FrameDataset.from_manifest(manifest, "train", ("audio",))  # its cache, read below

    builds = []
    real_build = FrameDataset._build.__func__
    monkeypatch.setattr(FrameDataset, "_build", classmethod(lambda cls, *a: builds.append(a) or real_build(cls, *a)))
    FrameDataset.from_manifest(manifest, "train", ("audio", "lips"))
    assert builds == []  # nothing changed: read from the cache

    record = next(r for r in read_manifest(manifest) if r["split"] == "train" and r.get("kind") == "clean")
    lips_path = resolve(manifest, record["lips"])
    lips = np.load(lips_path)
    lips.flat[0] = 255 - lips.flat[0]  # one pixel: the same size on disk
    np.save(lips_path, lips)
    st = lips_path.stat()
    os.utime(lips_path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # file systems with coarse clocks

    again = FrameDataset.from_manifest(manifest, "train", ("audio", "lips"))
    assert len(builds) == 1  # rebuilt from the files
    first_frame = int(again.offsets[again.ids.index(record["id"])])
    assert again.visual["lips"][first_frame].flatten()[0] != first.visual["lips"][first_frame].flatten()[0]
    FrameDataset.from_manifest(manifest, "train", ("audio",))
    assert len(builds) == 1  # the audio-only features do not depend on the lips: still cached

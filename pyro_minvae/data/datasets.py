"""Frame and utterance datasets built from a corpus manifest.

:class:`FrameDataset` holds every STFT frame of one split's clean records in memory:

- ``audio``: ``(N_total, F)`` float32 power spectra (peak-normalised waveforms, as in the paper);
- one tensor per requested visual modality (see :data:`pyro_minvae.registry.MODALITIES`), ``(N_total, D)``.
  Features that are exactly ``k / 255`` (lip ROIs) are stored as uint8 and converted to float32 per batch,
  4x less memory;
- ``offsets``: ``(U + 1,)`` int64, utterance ``u`` owns frames ``offsets[u]:offsets[u + 1]``; ``ids`` its record ids.

``batch(index)`` returns the model batch ``{"audio": (B, F), "lips": (B, 4489), ...}`` (float32, on the
dataset's device). The features are cached under ``cache_dir()/features/`` keyed by the manifest's checksum, the
split, the :class:`FeatureConfig`, the modalities, ``max_frames`` and the size and modification time of every visual
file; a second load reads one file.

:class:`UtteranceDataset` iterates whole utterances (any record kind) for evaluation: each item is an
:class:`Utterance` with the record, the peak-normalised waveform and a full-utterance batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ..atomic import atomic_path
from ..errors import UserInputError
from ..features import FeatureConfig
from ..paths import cache_dir
from ..registry import MODALITIES
from . import modalities as _modalities  # noqa: F401  (registers the visual modalities)
from .manifest import read_manifest, resolve, select, sha256_file
from .modalities import load_audio_power

log = logging.getLogger("pyro_minvae")

CACHE_VERSION = 1


def _visual(modalities: Sequence[str]) -> list[str]:
    """The non-audio modalities, each checked against the registry (unknown names list the valid ones)."""
    out = []
    for m in modalities:
        if m == "audio":
            continue
        MODALITIES.get(m)
        out.append(m)
    return out


def _maybe_quantise(x: np.ndarray) -> np.ndarray:
    """Return uint8 codes when ``x`` is exactly ``k / 255`` (k integer in 0..255), else ``x`` (float32)."""
    if x.size == 0 or x.min() < 0 or x.max() > 1:
        return x
    q = np.rint(x * 255.0)
    if np.array_equal((q / 255.0).astype(np.float32), x.astype(np.float32)):
        return q.astype(np.uint8)
    return x


def features_key(
    manifest_path: Path,
    split: str,
    cfg: FeatureConfig,
    modalities: Sequence[str],
    max_frames: int | None,
    records: Sequence[dict] = (),
) -> str:
    """Cache key: manifest checksum + split + feature settings + modalities + frame limit, and for visual
    ``modalities`` the size and modification time of each of ``records``' visual files (a manifest holds no checksum
    of them, so lips rendered or extracted again under the same manifest would otherwise be served from the cache)."""
    desc = {
        "v": CACHE_VERSION,
        "manifest": sha256_file(manifest_path),
        "split": split,
        "cfg": cfg.to_dict(),
        "modalities": list(modalities),
        "max_frames": max_frames,
    }
    if modalities:  # audio-only keys stay as they were (the audio is checksummed in the manifest)
        desc["visual_files"] = _visual_files_stamp(manifest_path, records, modalities)
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:20]


def _visual_files_stamp(manifest_path: Path, records: Sequence[dict], modalities: Sequence[str]) -> str:
    """A digest of ``(path, size, mtime)`` of every visual file the records name (one ``stat`` each, no read)."""
    h = hashlib.sha256()
    for rec in records:
        for m in modalities:
            rel = rec.get(MODALITIES.get(m).field)
            if rel is None:
                continue
            try:
                st = resolve(manifest_path, rel).stat()
                h.update(f"{rel}:{st.st_size}:{st.st_mtime_ns}\n".encode())
            except OSError:  # a missing file: the load names it
                h.update(f"{rel}:missing\n".encode())
    return h.hexdigest()[:16]


class FrameDataset:
    """All frames of one split (see module docstring). Build with :meth:`from_manifest`."""

    def __init__(
        self,
        audio: torch.Tensor,
        visual: dict[str, torch.Tensor],
        offsets: torch.Tensor,
        ids: Sequence[str],
        cfg: FeatureConfig,
    ):
        n = audio.shape[0]
        if audio.dim() != 2:
            raise ValueError(f"audio must be (N, F); got {tuple(audio.shape)}")
        for k, v in visual.items():
            if v.dim() != 2 or v.shape[0] != n:
                raise ValueError(f"{k!r} features must be (N={n}, D); got {tuple(v.shape)}")
        if offsets.dim() != 1 or offsets.shape[0] != len(ids) + 1 or int(offsets[-1]) != n:
            raise ValueError("offsets must be (U + 1,) ending at the number of frames")
        self.audio = audio
        self.visual = dict(visual)
        self.offsets = offsets
        self.ids = list(ids)
        self.cfg = cfg

    # ---- construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_manifest(
        cls,
        manifest: str | Path,
        split: str = "train",
        modalities: Sequence[str] = ("audio",),
        cfg: FeatureConfig | None = None,
        max_frames: int | None = None,
        use_cache: bool = True,
    ) -> "FrameDataset":
        """Load (or read from the cache) the clean records of ``split`` with the given modalities.

        ``max_frames``: keep at most this many frames, taking whole utterances in a seeded random order (the last
        one truncated).
        """
        cfg = cfg or FeatureConfig()
        manifest = Path(manifest)
        visual = _visual(modalities)
        records = list(select(read_manifest(manifest), split=split, kind="clean"))
        if not records:
            raise UserInputError(
                f"{manifest}: no clean records in split {split!r}; prepare a corpus with a "
                f"{split!r} split or pass another --manifest"
            )
        key = features_key(manifest, split, cfg, visual, max_frames, records)
        path = cache_dir() / "features" / f"{split}-{key}.pt"
        if use_cache and path.exists():
            try:
                d = torch.load(path, map_location="cpu", weights_only=True)
                return cls(d["audio"], d["visual"], d["offsets"], d["ids"], cfg)
            except Exception as exc:  # a stale or damaged cache is rebuilt, never fatal
                log.warning("feature cache %s unreadable (%s); rebuilding", path, type(exc).__name__)
        if max_frames is not None:  # a seeded random subset of utterances (all speakers), not the first ones
            records = [records[i] for i in np.random.default_rng(0).permutation(len(records))]
        ds = cls._build(records, manifest, visual, cfg, max_frames)
        if use_cache:
            with atomic_path(path) as tmp:
                torch.save({"audio": ds.audio, "visual": ds.visual, "offsets": ds.offsets, "ids": ds.ids}, tmp)
        return ds

    @classmethod
    def _build(
        cls, records: list[dict], manifest: Path, visual: list[str], cfg: FeatureConfig, max_frames: int | None
    ) -> "FrameDataset":
        audio, vis, lengths, ids = [], {m: [] for m in visual}, [], []
        total = 0
        for rec in records:
            wave, pw = load_audio_power(rec, manifest, cfg)
            n = pw.shape[0]
            if max_frames is not None:
                n = min(n, max_frames - total)
            audio.append(pw[:n].astype(np.float32))
            for m in visual:
                feats = MODALITIES.get(m).load(rec, manifest, pw.shape[0], cfg, n_samples=wave.shape[0])
                vis[m].append(_maybe_quantise(np.asarray(feats[:n], dtype=np.float32)))
            lengths.append(n)
            ids.append(rec["id"])
            total += n
            if max_frames is not None and total >= max_frames:
                break
        offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
        visual_t = {}
        for m, parts in vis.items():
            if any(p.dtype != np.uint8 for p in parts):
                parts = [p.astype(np.float32) / 255.0 if p.dtype == np.uint8 else p for p in parts]
            visual_t[m] = torch.from_numpy(np.concatenate(parts))
        return cls(torch.from_numpy(np.concatenate(audio)), visual_t, offsets, ids, cfg)

    # ---- access -------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.audio.shape[0]

    @property
    def modalities(self) -> list[str]:
        return ["audio"] + list(self.visual)

    @property
    def input_dims(self) -> dict[str, int]:
        """Feature size per modality, e.g. ``{"audio": 513, "lips": 4489}`` (for ``build_model``)."""
        return {"audio": self.audio.shape[1], **{k: v.shape[1] for k, v in self.visual.items()}}

    @property
    def device(self) -> torch.device:
        return self.audio.device

    def to(self, device: str | torch.device) -> "FrameDataset":
        """Move all features to ``device`` once (batches are then indexed there)."""
        return FrameDataset(
            self.audio.to(device), {k: v.to(device) for k, v in self.visual.items()}, self.offsets, self.ids, self.cfg
        )

    def batch(self, index: torch.Tensor | slice, segments: bool = False) -> dict[str, torch.Tensor]:
        """Model batch for frames ``index``: ``{"audio": (B, F), <modality>: (B, D)}`` float32.

        ``segments``: add ``"segment_start"`` ``(B,)`` bool (:meth:`segment_starts`), for priors that couple frames.
        """
        out = {"audio": self.audio[index]}
        for k, v in self.visual.items():
            x = v[index]
            out[k] = x.to(torch.float32) / 255.0 if x.dtype == torch.uint8 else x
        if segments:
            out["segment_start"] = self.segment_starts(index)
        return out

    def segment_starts(self, index: torch.Tensor | slice) -> torch.Tensor:
        """``(B,)`` bool: the frames of ``index`` that do not continue the frame before them in the batch, i.e. the
        first of the batch, the first of an utterance, and any frame whose predecessor in ``index`` is not the
        frame before it in the dataset."""
        idx = torch.arange(len(self), device=self.audio.device)[index] if isinstance(index, slice) else index
        idx = idx.to(self.audio.device)
        starts = self._first_of_utterance[idx]  # advanced indexing: a new tensor, safe to edit
        if idx.numel():
            starts[0] = True
            starts[1:] |= idx[1:] != idx[:-1] + 1
        return starts

    @cached_property
    def _first_of_utterance(self) -> torch.Tensor:
        """``(N + 1,)`` bool on the dataset's device: frame i starts an utterance (built once, read every batch)."""
        out = torch.zeros(len(self) + 1, dtype=torch.bool, device=self.audio.device)
        out[self.offsets.to(self.audio.device)] = True
        return out

    def utterance_of_frame(self) -> torch.Tensor:
        """``(N,)`` utterance index of every frame."""
        lengths = self.offsets[1:] - self.offsets[:-1]
        return torch.repeat_interleave(torch.arange(len(self.ids)), lengths)

    def speech_mask(self, threshold_db: float = 30.0) -> torch.Tensor:
        """``(N,)`` bool: frames whose energy is within ``threshold_db`` of their utterance's loudest frame.

        A simple energy voice-activity label used to report which frames each encoder wins.
        """
        e = 10.0 * torch.log10(self.audio.sum(-1).cpu().double() + 1e-12)
        mask = torch.zeros(len(self), dtype=torch.bool)
        for u in range(len(self.ids)):
            a, b = int(self.offsets[u]), int(self.offsets[u + 1])
            if b > a:
                mask[a:b] = e[a:b] >= e[a:b].max() - threshold_db
        return mask

    def shuffled_batches(
        self, batch_size: int, generator: torch.Generator, drop_last: bool = False
    ) -> list[torch.Tensor]:
        """A seeded permutation of all frames split into index tensors of ``batch_size`` (last may be short)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        perm = torch.randperm(len(self), generator=generator)
        chunks = list(perm.split(batch_size))
        if drop_last and chunks and chunks[-1].numel() < batch_size:
            chunks = chunks[:-1]
        return chunks

    def segment_batches(self, batch_size: int, segment_frames: int, generator: torch.Generator) -> list[torch.Tensor]:
        """Contiguous segments of ``segment_frames`` frames (an utterance's last may be shorter), in a seeded random
        order, ``batch_size // segment_frames`` (at least one) per index tensor: batches for a prior that couples
        consecutive frames. Every frame appears once."""
        if batch_size < 1 or segment_frames < 1:
            raise ValueError(f"batch_size and segment_frames must be >= 1; got {batch_size}, {segment_frames}")
        frames = torch.arange(len(self))
        segments = []
        for u in range(len(self.ids)):
            segments += list(frames[int(self.offsets[u]) : int(self.offsets[u + 1])].split(segment_frames))
        order = torch.randperm(len(segments), generator=generator).tolist()
        per_batch = max(1, batch_size // segment_frames)
        return [torch.cat([segments[i] for i in order[k : k + per_batch]]) for k in range(0, len(order), per_batch)]


@dataclass
class Utterance:
    """One record as a full-utterance batch: ``batch["audio"]`` ``(N, F)`` power of ``record["audio"]``."""

    record: dict
    wave: np.ndarray
    batch: dict


class UtteranceDataset:
    """Iterate the records of ``split`` (optionally of one ``kind``) as whole utterances, loaded lazily."""

    def __init__(
        self,
        manifest: str | Path,
        split: str | None = "test",
        modalities: Sequence[str] = ("audio",),
        cfg: FeatureConfig | None = None,
        kind: str | None = None,
        device: str | torch.device = "cpu",
    ):
        self.manifest = Path(manifest)
        self.cfg = cfg or FeatureConfig()
        self.visual = _visual(modalities)
        self.records = list(select(read_manifest(self.manifest), split=split, kind=kind))
        self.device = torch.device(device)

    def __len__(self) -> int:
        return len(self.records)

    def load(self, record: dict) -> Utterance:
        wave, pw = load_audio_power(record, self.manifest, self.cfg)
        batch = {"audio": torch.from_numpy(pw).to(self.device)}
        for m in self.visual:
            feats = MODALITIES.get(m).load(record, self.manifest, pw.shape[0], self.cfg, n_samples=wave.shape[0])
            batch[m] = torch.from_numpy(np.asarray(feats, dtype=np.float32)).to(self.device)
        return Utterance(record, wave, batch)

    def __iter__(self) -> Iterator[Utterance]:
        for rec in self.records:
            yield self.load(rec)

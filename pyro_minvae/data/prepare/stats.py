"""Corpus statistics from a manifest: minutes, speakers and utterances per split; mixtures per SNR and noise."""

from __future__ import annotations

import os
from collections import Counter, defaultdict

from ..manifest import SPLITS, read_manifest


def corpus_stats(manifest_path: str | os.PathLike) -> dict:
    """``{"splits": {split: {"minutes", "speakers", "utterances"}}, "mixtures": {split: {"count",
    "per_snr", "per_noise"}}, "speaker_overlap": [...]}`` computed from the manifest's records, plus
    ``"noisy": {split: {"count", "minutes"}}`` when there are noisy records."""
    recs = read_manifest(manifest_path)
    splits: dict[str, dict] = {}
    spk_by_split: dict[str, set] = defaultdict(set)
    for s in SPLITS:
        clean = [r for r in recs if r.get("split") == s and r.get("kind", "clean") == "clean"]
        spk = {r.get("speaker") for r in clean}
        spk_by_split[s] = spk
        splits[s] = {
            "minutes": round(sum(float(r.get("duration", 0.0)) for r in clean) / 60.0, 2),
            "speakers": len(spk),
            "utterances": len(clean),
        }
    mixtures: dict[str, dict] = {}
    for s in SPLITS:
        mix = [r for r in recs if r.get("split") == s and r.get("kind") == "mixture"]
        if mix:
            snrs = sorted(Counter(float(r["snr_db"]) for r in mix).items())
            mixtures[s] = {
                "count": len(mix),
                "per_snr": {f"{k:g}": v for k, v in snrs},
                "per_noise": dict(sorted(Counter(r["noise_type"] for r in mix).items())),
            }
    noisy = {
        s: {"count": len(n), "minutes": round(sum(float(r.get("duration", 0.0)) for r in n) / 60.0, 2)}
        for s in SPLITS
        if (n := [r for r in recs if r.get("split") == s and r.get("kind") == "noisy"])
    }
    overlap = sorted(
        (spk_by_split["train"] & spk_by_split["test"])
        | (spk_by_split["train"] & spk_by_split["valid"])
        | (spk_by_split["valid"] & spk_by_split["test"])
    )
    out = {"splits": splits, "mixtures": mixtures, "speaker_overlap": overlap}
    if noisy:  # recordings to enhance without a reference (``prepare folder --split test``)
        out["noisy"] = noisy
    return out


def format_stats(stats: dict) -> str:
    """Human-readable multi-line summary of :func:`corpus_stats`."""
    lines = [f"{'split':<6} {'minutes':>8} {'speakers':>9} {'utterances':>11}"]
    for s, d in stats["splits"].items():
        lines.append(f"{s:<6} {d['minutes']:>8.1f} {d['speakers']:>9d} {d['utterances']:>11d}")
    for s, d in stats["mixtures"].items():
        snr = ", ".join(f"{k} dB: {v}" for k, v in d["per_snr"].items())
        noise = ", ".join(f"{k}: {v}" for k, v in d["per_noise"].items())
        lines.append(f"{s} mixtures: {d['count']}  (per SNR {snr}; per noise {noise})")
    for s, d in stats.get("noisy", {}).items():
        lines.append(f"{s} noisy recordings (to enhance, no reference): {d['count']}  ({d['minutes']:.1f} min)")
    ov = stats["speaker_overlap"]
    lines.append("speaker-disjoint splits: " + ("yes" if not ov else f"NO, shared: {', '.join(ov)}"))
    return "\n".join(lines)

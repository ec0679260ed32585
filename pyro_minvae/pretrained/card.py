"""Model cards: one markdown page per shipped model, written from the checkpoint and the measurements made on
the shipped file itself (``scripts/export_pretrained.py``), so every number on the card belongs to the bytes
that ship."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..data.manifest import sha256_file
from ..evaluation.summary import PESQ_NOTE, metric_table

RENDERED_MOUTHS_NOTE = (
    "**Visual stream.** The lips encoder was trained on the demo corpus, whose mouths are *rendered* from the "
    "speech (no real faces: the machine that builds the corpus has no audio-visual data), so it has never seen a "
    "real mouth; the lips-informativeness figures above measure how much it still tells on real NTCD-TIMIT "
    "mouths. With a video (or lip images) the E-step starts from the lips encoder's posterior, as in the paper; "
    "without one, or with `--init audio`, from the audio encoder's. On your own talking-face videos, compare "
    "both (`--init audio` and the default) before trusting the lips."
)

RENDERED_VISUAL_NOTE = (
    "**Visual stream.** Its visual network was trained on the demo corpus's *rendered* mouths only (no real "
    "faces); it has never seen a real mouth, so expect less from the lips on your own videos than on the demo "
    "test set. It cannot run without lips (a video or lip images)."
)


@dataclass
class CardInputs:
    """What a card is written from.

    ``state``: the shipped checkpoint dict; ``path``: its file; ``summary``: the evaluation summary of the shipped
    file on the demo test split (``pyro_minvae.evaluation.summary.summarise`` output) or ``None``;
    ``storage_check``: rows ``{"id", "si_sdr_float32", "si_sdr_shipped"}`` comparing enhancement with the
    float32 training checkpoint and the shipped float16 weights; ``lips``: a markdown table or ``None``;
    ``commands``: the commands that produced the file and the numbers; ``caveat``: known problems (markdown).
    """

    name: str
    title: str
    state: dict
    path: Path
    summary: dict | None = None
    storage_check: list = field(default_factory=list)
    lips: str | None = None
    commands: list = field(default_factory=list)
    caveat: str = ""


def _settings(state: dict) -> str:
    spec = state["model_spec"]
    train = state.get("train_config") or {}
    keep = ("epochs", "batch_size", "lr", "schedule", "patience", "objective", "responsibilities", "seed")
    rows = [f"- family `{spec['family']}`, model options `{json.dumps(spec['kwargs'], sort_keys=True)}`"]
    rows.append("- training: " + ", ".join(f"{k} `{train[k]}`" for k in keep if train.get(k) is not None))
    feats = state["feature_config"]
    rows.append("- features: " + ", ".join(f"{k} `{v}`" for k, v in sorted(feats.items())))
    return "\n".join(rows)


def _data(state: dict) -> str:
    data = (state.get("extra") or {}).get("data") or {}
    frames, utts = data.get("train_frames"), data.get("train_utterances")
    what = f"{utts} utterances, {frames} STFT frames" if frames else "see the training command"
    return (
        f"The demo corpus built by `pyro-minvae prepare demo` ({what}; validation {data.get('valid_frames')} "
        f"frames; modalities {', '.join(data.get('modalities') or [])}): speech from the Debian packages listed in "
        "docs/data.md (several voices and languages, no speaker of the test split), clean speech only, "
        "with rendered lips. No noise is seen in training: the noise model is fitted to each noisy recording."
    )


def _storage(rows: list) -> str:
    if not rows:
        return "Not measured."
    diffs = [abs(r["si_sdr_shipped"] - r["si_sdr_float32"]) for r in rows]
    lines = ["| mixture | SI-SDR, float32 weights (dB) | SI-SDR, shipped weights (dB) |", "|---|---|---|"]
    lines += [f"| {r['id']} | {r['si_sdr_float32']:.2f} | {r['si_sdr_shipped']:.2f} |" for r in rows]
    lines.append("")
    lines.append(f"Largest difference {max(diffs):.3f} dB, mean {sum(diffs) / len(diffs):.3f} dB (same seed).")
    return "\n".join(lines)


def _results(summary: dict | None) -> str:
    if summary is None:
        return "Not measured."
    parts = [
        f"{summary.get('n_files', '?')} mixtures of the demo test split (speakers unseen in training; `--limit` "
        "picks them balanced over SNR and noise type), default enhancement settings."
    ]
    for column, label in (
        ("delta_si_sdr", "ΔSI-SDR (dB)"),
        ("delta_pesq_wb", "ΔPESQ wide-band"),
        ("delta_pesq_nb", "ΔPESQ narrow-band"),
        ("delta_estoi", "ΔESTOI"),
        ("si_sdr", "SI-SDR of the output (dB)"),
    ):
        parts += ["", f"**{label}**, mean ± 95% CI over files, per input SNR:", "", metric_table(summary, column)]
    parts += ["", PESQ_NOTE]
    return "\n".join(parts)


def render_card(c: CardInputs) -> str:
    """The card's markdown."""
    versions = c.state.get("versions") or {}
    extra = c.state.get("extra") or {}
    size_mb = c.path.stat().st_size / 1e6
    history = c.state.get("history") or []
    sections = [
        f"## Model card: `{c.name}` ({c.title})",
        "",
        f"Use: `pyro-minvae enhance noisy.wav -o out.wav --checkpoint {c.name}` or "
        f'`Enhancer.from_pretrained("{c.name}")`.',
        "",
        "### File",
        f"- `pyro_minvae/pretrained/{c.path.name}`, {size_mb:.2f} MB, sha256 `{sha256_file(c.path)}`",
        f"- weights stored as {extra.get('weights_dtype', 'float32')} (loaded as float32); exported from a "
        f"training checkpoint with {extra.get('exported_from', '?')}",
        "- package versions at training: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())),
        "",
        "### Training data",
        _data(c.state),
        "",
        "### Settings",
        _settings(c.state),
        f"- the shipped weights are the run's best: epoch {c.state.get('epoch')} ({len(history)} epochs logged "
        f"up to it), validation ELBO {c.state.get('best_valid_elbo'):.1f} nats/frame",
        "",
        "### How it was made",
        "\n".join(f"    {cmd}" for cmd in c.commands) or "See docs/pretrained.md.",
        "",
        "### Results on the demo test split",
        _results(c.summary),
        "",
        "### Shipped weights against the float32 originals",
        _storage(c.storage_check),
        "",
    ]
    if c.lips is not None:
        sections += ["### Lips informativeness (rendered and real mouths)", c.lips, ""]
    if c.caveat:
        sections += ["### Known problem", c.caveat, ""]
    if c.lips is not None:
        sections += ["### Limits", RENDERED_MOUTHS_NOTE, ""]
    elif "lips" in c.state["model_spec"]["kwargs"].get("input_dims", {}):
        sections += ["### Limits", RENDERED_VISUAL_NOTE, ""]
    else:
        sections += ["### Limits", "Trained on the demo corpus only (see above); judge it on your own recordings.", ""]
    return "\n".join(sections)


__all__ = ["CardInputs", "RENDERED_MOUTHS_NOTE", "RENDERED_VISUAL_NOTE", "render_card"]

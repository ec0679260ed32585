"""Choose enhancement settings on the validation split (``pyro-minvae tune``).

A *setting* is a name and the E-step options it changes, e.g. ``Setting("floor10", {"gain_floor": 0.1})``; every
setting enhances the same validation mixtures with one checkpoint through
:class:`~pyro_minvae.evaluation.vae_methods.CheckpointMethod` and :func:`~pyro_minvae.evaluation.runner.run_evaluation`
(so results resume, and a setting whose definition changed is refused in the same folder). The report compares
each setting with a *reference* setting on the same files (paired differences), per SNR, per noise type and over
all files:

    tune.json   {"settings", "reference", "metrics", "snrs", "noise_types", "groups": [{"setting", "snr_db",
                 "noise_type", "n", "stats": {metric: {"mean", "ci95", "n"}, "delta_<m>": ..., "paired_<m>": ...,
                 "better_<m>": fraction of files where the setting beats the reference}}]}
    tune.md     the same as markdown tables (mean ± 95% Student-t interval)

``paired_<m>`` is the mean over files of ``m(setting) - m(reference)``; its interval is the paired t-interval, which
is much narrower than the difference of the two means' intervals. Nothing here reads the test split: ``split``
must not be ``"test"`` (settings chosen on the test set would make its numbers meaningless).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from ..atomic import write_text_atomic
from ..enhancement.options import parse_key_value
from ..errors import UserInputError
from ..metrics import DEFAULT_METRICS
from .runner import EvalConfig, run_evaluation
from .summary import ALL, LABELS, mean_ci

FORBIDDEN_SPLITS = ("test",)


def _split_outside_brackets(text: str) -> list:
    """``"a=1,b=[2,3]"`` -> ``["a=1", "b=[2,3]"]``: commas inside ``[...]`` belong to a JSON list value."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        depth += (c == "[") - (c == "]")
        if c == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return parts + [text[start:]]


@dataclass(frozen=True)
class Setting:
    """A named set of E-step options (``{}``: the E-step's defaults)."""

    name: str
    options: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str) -> "Setting":
        """``"NAME"`` or ``"NAME:key=value,key=value"``; values are JSON (numbers, true/false, null) or strings."""
        name, _, rest = spec.partition(":")
        name = name.strip()
        if not name or any(c in name for c in ",=[] "):
            raise UserInputError(
                f"setting {spec!r}: expected NAME or NAME:key=value,...; NAME without , = [ ] "
                "or spaces, e.g. floor10:gain_floor=0.1"
            )
        opts: Dict[str, object] = {}
        for part in filter(None, (p.strip() for p in _split_outside_brackets(rest))):
            try:
                key, value = parse_key_value(part)
            except ValueError as exc:
                raise UserInputError(f"setting {spec!r}: {exc}, e.g. gain_floor=0.1") from None
            opts[key] = value
        return cls(name, opts)

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(self.options.items())) or "defaults"

    def resolved(self, estep: str) -> dict:
        """The E-step options: a ``preset`` option (:mod:`pyro_minvae.infer.presets`) expanded, the other
        options overriding it."""
        opts = dict(self.options)
        name = opts.pop("preset", None)
        if name is None:
            return opts
        from ..infer.presets import preset_options

        try:
            return {**preset_options(str(name), estep), **opts}
        except ValueError as exc:
            raise UserInputError(f"setting {self.name!r}: {exc}") from None


@dataclass
class TuneConfig:
    """One comparison: ``settings`` of ``estep`` with the checkpoint at ``checkpoint`` on ``split`` of ``manifest``;
    a sequence of several checkpoints is an ensemble (:class:`~pyro_minvae.infer.ensemble.ModelEnsemble`).

    ``reference``: the setting the others are compared with (default: the first). ``limit``, ``snrs``,
    ``noise_types``, ``jobs``, ``seed`` as in :class:`~pyro_minvae.evaluation.runner.EvalConfig`.
    """

    manifest: Path
    out_dir: Path
    checkpoint: Path | tuple
    settings: Sequence[Setting]
    estep: str = "mcem"
    reference: Optional[str] = None
    split: str = "valid"
    metrics: Sequence[str] = DEFAULT_METRICS
    jobs: int = 2
    limit: Optional[int] = None
    snrs: Optional[Sequence[float]] = None
    noise_types: Optional[Sequence[str]] = None
    seed: int = 0
    init: Optional[str] = None
    progress: bool = False

    def __post_init__(self):
        self.manifest, self.out_dir = Path(self.manifest), Path(self.out_dir)
        from ..checkpoint import checkpoint_paths

        paths = checkpoint_paths(self.checkpoint)
        self.checkpoint = Path(paths[0]) if len(paths) == 1 else tuple(map(Path, paths))
        if self.split in FORBIDDEN_SPLITS:
            raise UserInputError(
                f"--split {self.split}: settings are chosen on the validation split, never on the "
                "test split; use --split valid"
            )
        names = [s.name for s in self.settings]
        if not names:
            raise UserInputError("no settings to compare; give --setting NAME[:key=value,...] at least once")
        if len(set(names)) != len(names):
            raise UserInputError(f"setting names must be distinct; got {', '.join(names)}")
        self.reference = self.reference or names[0]
        if self.reference not in names:
            raise UserInputError(f"--reference {self.reference!r} is not one of the settings ({', '.join(names)})")

    @property
    def checkpoint_name(self) -> str:
        """The checkpoint's path, or an ensemble's paths joined by `` + ``."""
        from ..checkpoint import checkpoint_name

        return checkpoint_name(self.checkpoint)


@dataclass
class TuneReport:
    table: dict
    markdown: str
    paths: Dict[str, str]
    bad: List[dict]


def _method_options(config: TuneConfig, setting: Setting) -> dict:
    """A setting's E-step options with the encoder start: its own ``init`` option, else ``--init``."""
    return {"init": config.init, **setting.resolved(config.estep)}


def check_settings(config: TuneConfig) -> None:
    """Every setting's options checked before any file is enhanced, by the check ``enhance`` runs
    (:func:`~pyro_minvae.enhancement.options.check_model_options`: the values, then what they ask of the loaded
    model(s), e.g. an ``init`` or ``restart_inits`` encoder the checkpoint lacks). ``UserInputError`` names the
    setting; otherwise each of its (setting, file) pairs would fail alone."""
    from ..checkpoint import load_models
    from ..enhancement.options import check_model_options

    model = load_models(config.checkpoint)[0]
    for setting in config.settings:
        try:
            check_model_options(model, config.estep, _method_options(config, setting))
        except UserInputError as exc:
            raise UserInputError(f"--setting {setting.name}: {exc}") from None


def run_tuning(config: TuneConfig) -> TuneReport:
    """Check every setting (:func:`check_settings`), enhance the validation mixtures with each, then write
    ``tune.json`` and ``tune.md``."""
    from .vae_methods import CheckpointMethod, EnsembleMethod

    check_settings(config)
    kind = CheckpointMethod if isinstance(config.checkpoint, Path) else EnsembleMethod
    methods = {s.name: kind(config.checkpoint, config.estep, **_method_options(config, s)) for s in config.settings}
    ev = EvalConfig(
        manifest=config.manifest,
        out_dir=config.out_dir,
        split=config.split,
        jobs=config.jobs,
        limit=config.limit,
        snrs=config.snrs,
        noise_types=config.noise_types,
        metrics=config.metrics,
        seed=config.seed,
        figures=False,
        progress=config.progress,
    )
    report = run_evaluation(ev, methods)
    from .results import ResultsFile

    rows = [r for r in ResultsFile(config.out_dir / "results.csv", config.metrics).read() if r["method"] in methods]
    table = compare(rows, config.metrics, [s.name for s in config.settings], config.reference)
    table["settings"] = {s.name: s.resolved(config.estep) for s in config.settings}
    table["estep"], table["checkpoint"], table["split"] = config.estep, config.checkpoint_name, config.split
    md = to_markdown(table, config)
    paths = {
        "json": str(config.out_dir / "tune.json"),
        "markdown": str(config.out_dir / "tune.md"),
        "results": str(config.out_dir / "results.csv"),
    }
    write_text_atomic(paths["json"], json.dumps(table, indent=1))
    write_text_atomic(paths["markdown"], md)
    return TuneReport(table, md, paths, report.bad)


def _value(row: dict, column: str) -> Optional[float]:
    v = row.get(column)
    if v is None or v == "":
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def compare(rows: Sequence[dict], metrics: Sequence[str], settings: Sequence[str], reference: str) -> dict:
    """Per (setting, SNR, noise type) and their "all" margins: mean, delta over the input and the paired
    difference with ``reference`` of each metric, over the files where both the setting and the reference
    succeeded (so every setting is averaged over the same files)."""
    ok = [r for r in rows if r.get("status") == "ok"]
    by = {(r["method"], r["id"]): r for r in ok}
    ids = sorted({r["id"] for r in ok if (reference, r["id"]) in by})
    meta = {r["id"]: (float(r["snr_db"]), str(r["noise_type"])) for r in ok}
    snrs = sorted({meta[i][0] for i in ids})
    noises = sorted({meta[i][1] for i in ids})
    groups = []
    for name in settings:
        common = [i for i in ids if (name, i) in by]
        for snr in snrs + [ALL]:
            for noise in noises + [ALL]:
                sel = [i for i in common if (snr == ALL or meta[i][0] == snr) and (noise == ALL or meta[i][1] == noise)]
                if not sel:
                    continue
                stats = {}
                for m in metrics:
                    mine = [_value(by[(name, i)], m) for i in sel]
                    ref = [_value(by[(reference, i)], m) for i in sel]
                    stats[m] = mean_ci(mine)
                    stats[f"delta_{m}"] = mean_ci([_value(by[(name, i)], f"delta_{m}") for i in sel])
                    pairs = [(a, b) for a, b in zip(mine, ref) if a is not None and b is not None]
                    stats[f"paired_{m}"] = mean_ci([a - b for a, b in pairs])
                    stats[f"better_{m}"] = (sum(a > b for a, b in pairs) / len(pairs)) if pairs else None
                groups.append({"setting": name, "snr_db": snr, "noise_type": noise, "n": len(sel), "stats": stats})
    return {
        "reference": reference,
        "metrics": list(metrics),
        "settings_order": list(settings),
        "snrs": snrs,
        "noise_types": noises,
        "n_files": len(ids),
        "groups": groups,
    }


def _cell(st: Optional[dict], digits: int, signed: bool = False) -> str:
    if not st or st.get("mean") is None:
        return "–"
    fmt = f"{{:{'+' if signed else ''}.{digits}f}}"
    s = fmt.format(st["mean"])
    return s + (f" ± {st['ci95']:.{digits}f}" if st.get("ci95") is not None else "")


def _digits(metric: str) -> int:
    return 1 if "sdr" in metric else (2 if "pesq" in metric else 3)


def _group(table: dict, setting: str, snr, noise) -> Optional[dict]:
    for g in table["groups"]:
        if g["setting"] == setting and g["snr_db"] == snr and g["noise_type"] == noise:
            return g
    return None


def comparison_table(table: dict, column: str, by: str = "snr") -> str:
    """Markdown: rows = settings, columns = SNRs (``by="snr"``) or noise types (``"noise"``) and "all"."""
    metric = column.split("_", 1)[1] if column.startswith(("delta_", "paired_")) else column
    signed = column != metric
    keys = (table["snrs"] if by == "snr" else table["noise_types"]) + [ALL]
    head = [f"{k:g} dB" if by == "snr" and k != ALL else str(k) for k in keys]
    lines = ["| setting | " + " | ".join(head) + " |", "|---|" + "---|" * len(keys)]
    for name in table["settings_order"]:
        cells = []
        for k in keys:
            g = _group(table, name, k, ALL) if by == "snr" else _group(table, name, ALL, k)
            cells.append(_cell(g["stats"].get(column) if g else None, _digits(metric), signed))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_markdown(table: dict, config: Optional[TuneConfig] = None) -> str:
    ref = table["reference"]
    out = ["# Tuning on the validation split", ""]
    if config is not None:
        out += [
            f"Checkpoint `{config.checkpoint_name}`, E-step `{config.estep}`, split `{config.split}`, "
            f"{table['n_files']} files (every setting on the same files), seed {config.seed}.",
            "",
        ]
    out += ["| setting | options |", "|---|---|"]
    out += [
        f"| {n} | {', '.join(f'{k}={v}' for k, v in sorted(o.items())) or 'defaults'} |"
        for n, o in table.get("settings", {}).items()
    ]
    out += [
        "",
        f"Cells: mean ± 95% Student-t interval over files. *Paired* tables: the mean per-file difference "
        f"from the reference setting `{ref}` (positive = better for every metric here) with its paired "
        "interval.",
        "",
    ]
    for m in table["metrics"]:
        label = LABELS.get(m, m)
        out += [
            f"## {label}",
            "",
            f"### Paired difference from `{ref}`, per SNR",
            "",
            comparison_table(table, f"paired_{m}"),
            "",
            f"### Paired difference from `{ref}`, per noise type",
            "",
            comparison_table(table, f"paired_{m}", "noise"),
            "",
            "### Improvement over the noisy input (delta), per SNR",
            "",
            comparison_table(table, f"delta_{m}"),
            "",
            "### Value, per SNR",
            "",
            comparison_table(table, m),
            "",
        ]
    return "\n".join(out)


__all__ = [
    "Setting",
    "TuneConfig",
    "TuneReport",
    "run_tuning",
    "compare",
    "comparison_table",
    "to_markdown",
    "FORBIDDEN_SPLITS",
]

"""The paper's comparison table from a run folder (or a folder of run folders).

Every ``eval-<method>.summary.json`` (written by eval.py) under the root is one result; the method
is the part of the name after ``eval-``. Results are grouped by the folder they sit in (one folder =
one dataset and model pair; ``experiment.json`` there names the pair). For each group:
accuracy with its 95% interval, parse rate, and PGR = (method - weak) / (ceiling - weak) with a 95%
bootstrap interval over questions (per-question outcomes come from the eval JSONL beside each
summary, joined by question id). Missing results are listed, never fatal.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import AliceError
from .metrics import bootstrap_pgr, pgr
from .records import atomic_write_text, iter_jsonl

# (file name part, label); weak and ceiling are the PGR's ends, the rest are rated by PGR.
METHODS = [
    ("weak", "Weak teacher (ground truth)"),
    ("ceiling", "Strong ceiling (ground truth)"),
    ("zero-shot", "Zero-shot student"),
    ("w2s-qa", "W2S-QA"),
    ("w2s-cot", "W2S-CoT"),
    ("alice", "Alice"),
    ("cascade", "Cascade Alice"),
]
LABELS = dict(METHODS)
PGR_METHODS = ("zero-shot", "w2s-qa", "w2s-cot", "alice", "cascade")
CSV_COLUMNS = ["folder", "dataset", "teacher", "student", "method", "n", "accuracy", "accuracy_ci_low",
               "accuracy_ci_high", "parse_rate", "pgr", "pgr_ci_low", "pgr_ci_high", "note"]


@dataclass
class Group:
    folder: Path
    dataset: str = "?"
    teacher: str = "?"
    student: str = "?"
    note: str = ""
    summaries: dict[str, dict] = field(default_factory=dict)
    outcomes: dict[str, dict[str, bool]] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.dataset}: {self.teacher} -> {self.student}"


def eval_outcomes(summary_path: Path) -> dict[str, bool] | None:
    """Per-question correctness (id -> bool) from the eval JSONL beside a summary, if present."""
    rows_path = summary_path.with_name(summary_path.name.removesuffix(".summary.json") + ".jsonl")
    if not rows_path.is_file():
        return None
    try:
        return {str(row["id"]): bool(row.get("correct")) for _, row in iter_jsonl(rows_path) if "id" in row}
    except AliceError:
        return None


def collect(root: str | Path) -> list[Group]:
    root = Path(root)
    if not root.exists():
        raise AliceError(f"{root}: no such folder")
    groups: dict[Path, Group] = {}
    for path in sorted(root.rglob("eval-*.summary.json")):
        method = path.name.removeprefix("eval-").removesuffix(".summary.json")
        group = groups.setdefault(path.parent, _new_group(path.parent))
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            group.missing.append(f"{method} (unreadable {path.name})")
            continue
        group.summaries[method] = summary
        if group.dataset == "?":
            group.dataset = summary.get("dataset", "?")
        outcomes = eval_outcomes(path)
        if outcomes is not None:
            group.outcomes[method] = outcomes
    # A run folder with an experiment.json but no results yet still gets a (missing) table.
    for info in root.rglob("experiment.json"):
        groups.setdefault(info.parent, _new_group(info.parent))
    return [groups[k] for k in sorted(groups)]


def model_label(name: str) -> str:
    """A local folder by its last part (hub ids and shortcuts stay as given), so titles fit."""
    return Path(name).name if name.startswith(("/", ".", "~")) else name


def _new_group(folder: Path) -> Group:
    group = Group(folder=folder)
    info_path = folder / "experiment.json"
    if info_path.is_file():
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            info = {}
        group.dataset = info.get("dataset", group.dataset)
        group.teacher = model_label(info.get("teacher_label", group.teacher))
        group.student = model_label(info.get("student_label", group.student))
        group.note = info.get("note", "")
    else:
        group.teacher = group.student = folder.name
    return group


def compute(group: Group, samples: int = 2000, seed: int = 0) -> Group:
    """Fill ``group.rows`` (one per known method, in the paper's order) and ``group.missing``."""
    weak, ceiling = group.summaries.get("weak"), group.summaries.get("ceiling")
    methods = [m for m, _ in METHODS] + sorted(set(group.summaries) - set(LABELS))
    for method in methods:
        summary = group.summaries.get(method)
        if summary is None:
            if method in LABELS:
                group.missing.append(f"{method} (no eval-{method}.summary.json)")
            continue
        low, high = summary.get("accuracy_ci95", [None, None])
        row = {"folder": str(group.folder), "dataset": group.dataset, "teacher": group.teacher,
               "student": group.student, "method": method, "n": summary.get("n"),
               "accuracy": summary.get("accuracy"), "accuracy_ci_low": low, "accuracy_ci_high": high,
               "parse_rate": summary.get("parse_rate"), "pgr": None, "pgr_ci_low": None, "pgr_ci_high": None,
               "note": ""}
        if method in PGR_METHODS:
            row.update(pgr_cells(method, summary, weak, ceiling, group.outcomes, samples, seed))
        group.rows.append(row)
    return group


def pgr_cells(method: str, summary: dict, weak: dict | None, ceiling: dict | None,
              outcomes: dict[str, dict[str, bool]], samples: int, seed: int) -> dict:
    if weak is None or ceiling is None:
        return {"note": "PGR needs " + " and ".join(n for n, s in (("weak", weak), ("ceiling", ceiling)) if s is None)}
    if all(m in outcomes for m in (method, "weak", "ceiling")):
        shared = set(outcomes[method]) & set(outcomes["weak"]) & set(outcomes["ceiling"])
        if shared:
            point, interval = bootstrap_pgr(outcomes[method], outcomes["weak"], outcomes["ceiling"], samples, seed)
            note = "" if len(shared) == len(outcomes[method]) else f"PGR on the {len(shared)} shared questions"
            if point is None:
                return {"note": "ceiling does not beat weak: PGR undefined"}
            return {"pgr": point, "pgr_ci_low": interval[0] if interval else None,
                    "pgr_ci_high": interval[1] if interval else None,
                    "note": note or ("" if interval else "interval undefined (ceiling rarely beats weak)")}
    point = pgr(summary["accuracy"], weak["accuracy"], ceiling["accuracy"])
    if point is None:
        return {"note": "ceiling does not beat weak: PGR undefined"}
    return {"pgr": point, "note": "no per-question results: PGR without interval"}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def _interval(low: float | None, high: float | None, scale: float = 100) -> str:
    if low is None or high is None:
        return "—"
    return f"[{scale * low:.1f}, {scale * high:.1f}]" if scale == 100 else f"[{low:.2f}, {high:.2f}]"


def markdown(groups: list[Group]) -> str:
    out = io.StringIO()
    out.write("# Weak-to-strong results\n\n")
    out.write("Accuracy in % with 95% Wilson interval (unparsable answers count as wrong); "
              "PGR = (method - weak) / (ceiling - weak) with a 95% bootstrap interval over questions.\n")
    if not groups:
        out.write("\nNo results found (no eval-*.summary.json).\n")
    for group in groups:
        out.write(f"\n## {group.title}\n\n")
        if group.note:
            out.write(f"{group.note}\n\n")
        out.write(f"Folder: `{group.folder}`\n\n")
        if group.rows:
            out.write("| method | n | accuracy | 95% CI | parse rate | PGR | PGR 95% CI | note |\n")
            out.write("|---|---:|---:|---|---:|---:|---|---|\n")
            for r in group.rows:
                pgr_text = "—" if r["pgr"] is None else f"{r['pgr']:.2f}"
                out.write(f"| {LABELS.get(r['method'], r['method'])} | {r['n']} | {_pct(r['accuracy'])} | "
                          f"{_interval(r['accuracy_ci_low'], r['accuracy_ci_high'])} | {_pct(r['parse_rate'])} | "
                          f"{pgr_text} | {_interval(r['pgr_ci_low'], r['pgr_ci_high'], scale=1)} | {r['note']} |\n")
        if group.missing:
            out.write(f"\nMissing: {', '.join(group.missing)}.\n")
    return out.getvalue()


def write_csv(groups: list[Group]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for group in groups:
        writer.writerows(group.rows)
    return buffer.getvalue()


def plot(groups: list[Group], path: Path) -> bool:
    """One panel per group: accuracy bars with 95% intervals, PGR written above the rated methods."""
    groups = [g for g in groups if g.rows]
    if not groups:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(groups), 1, figsize=(9, 3.6 * len(groups)), squeeze=False)
    for ax, group in zip(axes[:, 0], groups):
        rows = group.rows
        x = list(range(len(rows)))
        acc = [100 * (r["accuracy"] or 0) for r in rows]
        err = [[max(0.0, a - 100 * (r["accuracy_ci_low"] or 0)) for a, r in zip(acc, rows)],
               [max(0.0, 100 * (r["accuracy_ci_high"] or 0) - a) for a, r in zip(acc, rows)]]
        colors = ["#999999" if r["method"] in ("weak", "ceiling") else "#4477aa" if r["method"] != "alice"
                  and r["method"] != "cascade" else "#cc6677" for r in rows]
        ax.bar(x, acc, yerr=err, color=colors, capsize=4)
        for xi, r, a in zip(x, rows, acc):
            if r["pgr"] is not None:
                ax.text(xi, min(a + 3, 98), f"PGR {r['pgr']:.2f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(x, [LABELS.get(r["method"], r["method"]) for r in rows], rotation=20, ha="right", fontsize=8)
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title(group.title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def build_report(root: str | Path, output_dir: str | Path | None = None, samples: int = 2000,
                 seed: int = 0) -> dict:
    """Write report.md, report.csv and report.png; returns the paths, the rows and what is missing."""
    groups = [compute(g, samples, seed) for g in collect(root)]
    out = Path(output_dir or root)
    text = markdown(groups)
    atomic_write_text(out / "report.md", text)
    atomic_write_text(out / "report.csv", write_csv(groups))
    plotted = plot(groups, out / "report.png")
    return {"markdown": str(out / "report.md"), "csv": str(out / "report.csv"),
            "png": str(out / "report.png") if plotted else None, "text": text,
            "rows": [r for g in groups for r in g.rows],
            "missing": {str(g.folder): g.missing for g in groups if g.missing}}

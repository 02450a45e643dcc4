"""The paper's comparison table and paired tests from a run folder (or a folder of run folders).

Run-folder contract (what experiment.py and eval.py write):
- ``eval-<method>.summary.json`` + ``eval-<method>.jsonl`` for a single run, or
  ``eval-<method>-seed<N>.summary.json`` + ``.jsonl`` per training seed N. The summary has ``n``,
  ``correct``, ``accuracy`` (and ``parse_rate``, ``accuracy_ci95``, ``dataset``); the JSONL one row per
  test question with ``id`` and ``correct``. A trailing ``-seed<N>`` is stripped, then ``-`` becomes
  ``_``, so older folders (``eval-zero-shot``) read as the current names (``zero_shot``).
- optional ``experiment.json`` (dataset, teacher_label, student_label, note, maybe a ``setting`` dict),
  ``gate.json`` and ``noise_floor.json``: copied into report.json.
Results are grouped by the folder they sit in (one folder = one dataset and model pair).

Per group (every interval resamples the independent units: templates where the eval rows name a
``cluster``, else questions; and each method's training seeds):
- per method: accuracy = mean over its seeds, each seed's accuracy, their sd, parse rate (mean over
  seeds) and a 95% percentile bootstrap interval over units and seeds (a Wilson interval where the
  per-question results are missing);
- PGR = (method - weak) / (ceiling - weak) on seed means, with its 95% bootstrap interval;
- paired comparisons (``PAIRS``): every seed of a against every seed of b: delta of the seed means,
  the sd of the per-seed-pair deltas, a 95% bootstrap interval (the same units drawn for both sides),
  Wilcoxon's signed-rank test over the units' seed-mean differences, and for reference McNemar's exact
  p per seed pair (questions treated as independent).
Writes report.md, report.csv (one row per method), report.png and report.json: ``schema``, ``command``,
``git_commit``, ``versions`` and ``groups``, one object per group (``setting``, ``gate``,
``noise_floor``, ``methods``, ``paired``), the same keys for one run and for a sweep; at a run folder's
root also ``in_template`` and ``held_out_templates`` (its two test sets' groups, when it has a second),
``gate``, ``near_duplicates``, ``hygiene`` and ``setting`` where the run wrote them (``run_extras``).
``previous/`` and ``noise/`` below a run are not groups (an earlier run kept beside it; the noise floor's
reruns). Missing results are listed, never fatal.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean, stdev

import numpy as np

from .answers import DEFAULT_SCORING, SCORING_RULES
from .errors import AliceError
from .metrics import bootstrap_arms, cluster_test, paired_difference, pgr, wilson_interval
from .records import atomic_write_text, iter_jsonl, read_json

# (name, label) in the table's order; weak and ceiling are the PGR's ends, PGR_METHODS are rated by PGR.
METHODS = [
    ("weak", "Weak teacher (ground truth)"),
    ("ceiling", "Strong ceiling (ground truth)"),
    ("zero_shot", "Zero-shot student"),
    ("w2s_qa", "W2S-QA"),
    ("w2s_cot", "W2S-CoT"),
    ("alice", "Alice"),
    ("self_training", "Self-training"),
    ("alice_no_statement", "Alice without statement"),
    ("alice_structured", "Alice, structured statement"),
    ("cascade", "Cascade Alice"),
]
LABELS = dict(METHODS)
PGR_METHODS = ("zero_shot", "w2s_qa", "w2s_cot", "alice", "self_training", "alice_no_statement", "alice_structured",
               "cascade")
ARMS = ("w2s_qa", "w2s_cot", "alice", "self_training", "alice_no_statement", "alice_structured", "cascade", "ceiling",
        "weak")
REFERENCES = ("zero_shot", "self_training", "w2s_qa", "w2s_cot")
# Every arm against every reference, then the statement ablation; each unordered pair once.
PAIRS = [(a, b) for a in ARMS for b in REFERENCES] + [("alice", "alice_no_statement"), ("alice", "alice_structured"),
                                                      ("alice_structured", "alice_no_statement")]
CSV_COLUMNS = ["folder", "dataset", "teacher", "student", "method", "n", "accuracy", "accuracy_sd", "seeds",
               "accuracy_ci_low", "accuracy_ci_high", "parse_rate", "pgr", "pgr_ci_low", "pgr_ci_high", "note",
               "scoring", *(f"accuracy_{rule}" for rule in SCORING_RULES)]
EVAL_NAME = re.compile(r"eval-(?P<method>.+?)(?:-seed(?P<seed>\d+))?\.summary\.json")
SUMMARY_KEYS = ("n", "correct", "accuracy")
# experiment.json keys left out of report.json's "setting" when it has no "setting" dict: bookkeeping.
BULKY_KEYS = ("timings_s", "engine_starts", "report", "cascade_process")
COLLAPSE = 0.5  # parse rate below this: the model mostly stopped answering in the expected format


@dataclass
class Run:
    """One evaluated model: a method at one training seed (None: a single, unseeded run)."""

    path: Path
    seed: int | None
    summary: dict
    outcomes: dict[str, bool] | None
    clusters: dict[str, str] | None = None  # question id -> the group it is independent by (a template)


@dataclass
class Group:
    folder: Path
    dataset: str = "?"
    teacher: str = "?"
    student: str = "?"
    note: str = ""
    setting: dict | None = None
    gate: dict | None = None
    noise_floor: dict | None = None
    evidence: dict | None = None  # evidence.json: what the arms trained on, each training's run
    runs: dict[str, dict[int | None, Run]] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    paired: list[dict] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.dataset}: {self.teacher} -> {self.student}"

    def method_runs(self, method: str) -> list[Run]:
        """The method's runs by seed (the unseeded run first)."""
        return sorted(self.runs.get(method, {}).values(), key=lambda r: -1 if r.seed is None else r.seed)


def parse_eval_name(name: str) -> tuple[str, int | None] | None:
    """(method, seed) from ``eval-<method>[-seed<N>].summary.json``; ``eval-zero-shot`` -> zero_shot."""
    match = EVAL_NAME.fullmatch(name)
    if match is None:
        return None
    return match["method"].replace("-", "_"), None if match["seed"] is None else int(match["seed"])


def eval_rows_path(summary_path: Path) -> Path | None:
    """The eval JSONL beside a summary (``.jsonl``, or ``.jsonl.xz`` in a results folder), if present."""
    stem = summary_path.name.removesuffix(".summary.json")
    for name in (f"{stem}.jsonl", f"{stem}.jsonl.xz"):
        if (summary_path.parent / name).is_file():
            return summary_path.parent / name
    return None


def eval_outcomes(summary_path: Path) -> tuple[dict[str, bool] | None, dict[str, str] | None]:
    """Per-question correctness (id -> bool) and groups (id -> cluster, where the rows name one) from the
    eval JSONL beside a summary, if present."""
    rows_path = eval_rows_path(summary_path)
    if rows_path is None:
        return None, None
    try:
        rows = [row for _, row in iter_jsonl(rows_path) if "id" in row]
    except AliceError:
        return None, None
    clusters = {str(r["id"]): str(r["cluster"]) for r in rows if r.get("cluster") is not None}
    return {str(r["id"]): bool(r.get("correct")) for r in rows}, clusters if len(clusters) == len(rows) else None


def collect(root: str | Path, exclude: tuple[str, ...] = ()) -> list[Group]:
    """Every group under ``root``; folders named in ``exclude`` (relative to root) are left out."""
    root = Path(root)
    if not root.exists():
        raise AliceError(f"{root}: no such folder")
    groups: dict[Path, Group] = {}

    def excluded(path: Path) -> bool:
        return any(part in exclude for part in path.relative_to(root).parts[:-1])

    for path in sorted(p for p in root.rglob("eval-*.summary.json") if not excluded(p)):
        parsed = parse_eval_name(path.name)
        if parsed is None:
            continue
        method, seed = parsed
        group = groups.setdefault(path.parent, _new_group(path.parent))
        name = method if seed is None else f"{method} seed {seed}"
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            summary = None
        if not isinstance(summary, dict) or any(k not in summary for k in SUMMARY_KEYS):
            group.missing.append(f"{name} (unreadable {path.name})")
            continue
        runs = group.runs.setdefault(method, {})
        if seed in runs:  # e.g. eval-zero-shot and eval-zero_shot side by side
            group.missing.append(f"{name} ({path.name} ignored: {runs[seed].path.name} is the same run)")
            continue
        runs[seed] = Run(path, seed, summary, *eval_outcomes(path))
        if group.dataset == "?":
            group.dataset = summary.get("dataset", "?")
    # A run folder with an experiment.json but no results yet still gets a (missing) table.
    for info in (p for p in root.rglob("experiment.json") if not excluded(p)):
        groups.setdefault(info.parent, _new_group(info.parent))
    return [groups[k] for k in sorted(groups)]


def model_label(name: str) -> str:
    """A local folder by its last part (hub ids and shortcuts stay as given), so titles fit."""
    return Path(name).name if name.startswith(("/", ".", "~")) else name


def _optional_json(folder: Path, name: str, missing: list[str]) -> dict | None:
    path = folder / name
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        missing.append(f"{name} (unreadable)")
        return None
    return value


def _new_group(folder: Path) -> Group:
    group = Group(folder=folder)
    info = _optional_json(folder, "experiment.json", group.missing)
    if info is not None:
        group.dataset = info.get("dataset", group.dataset)
        group.teacher = model_label(info.get("teacher_label", group.teacher))
        group.student = model_label(info.get("student_label", group.student))
        group.note = info.get("note", "")
        setting = info.get("setting")
        group.setting = setting if isinstance(setting, dict) else {
            k: v for k, v in info.items() if k not in BULKY_KEYS}
    else:
        group.teacher = group.student = folder.name
    group.gate = _optional_json(folder, "gate.json", group.missing)
    group.noise_floor = _optional_json(folder, "noise_floor.json", group.missing)
    group.evidence = _optional_json(folder, "evidence.json", group.missing)
    return group


def _shared_ids(runs: list[Run]) -> list[str]:
    return sorted(set.intersection(*(set(r.outcomes or ()) for r in runs)))


def averaged(runs: list[Run], ids: list[str]) -> np.ndarray:
    """Each question's correctness averaged over the runs (0/1 for one run), in ``ids``' order."""
    return matrix(runs, ids).mean(axis=0)


def matrix(runs: list[Run], ids: list[str]) -> np.ndarray:
    """(runs, questions) correctness in ``ids``' order."""
    return np.array([[r.outcomes[i] for i in ids] for r in runs], dtype=float)


def clusters_of(runs: list[Run], ids: list[str]) -> tuple[list[str], bool]:
    """Each question's group (its template) where every run names one, else the question itself; and
    whether questions are grouped."""
    named = [r.clusters for r in runs if r.clusters]
    if len(named) == len(runs) and runs:
        return [named[0].get(i, i) for i in ids], True
    return list(ids), False


def expected_methods(group: Group) -> set[str]:
    """The methods a run set out to evaluate: weak, ceiling, zero-shot and its arms (experiment.json's
    settings, or a fair test's setting), cascade where it had a mid model; the paper's table where the
    run does not say. Only these count as missing when absent (the demo runs no controls)."""
    setting = group.setting or {}
    settings = setting["settings"] if isinstance(setting.get("settings"), dict) else setting
    arms = settings.get("arms")
    if not isinstance(arms, list):
        return {"weak", "ceiling", "zero_shot", "w2s_qa", "w2s_cot", "alice", "cascade"}
    cascade = {"cascade"} if settings.get("cascade") and settings.get("midlevel") else set()
    return {"weak", "ceiling", "zero_shot", *arms, *cascade}


def compute(group: Group, samples: int = 2000, seed: int = 0) -> Group:
    """Fill ``group.rows`` (one per method, in the paper's order), ``group.paired`` and ``group.missing``."""
    expected = expected_methods(group)
    for method in [m for m, _ in METHODS] + sorted(set(group.runs) - set(LABELS)):
        runs = group.method_runs(method)
        if not runs:
            if method in expected:
                group.missing.append(f"{method} (no eval-{method}.summary.json)")
            continue
        row = method_row(group, method, runs, samples, seed)
        if method in PGR_METHODS:
            row.update(pgr_cells(group, method, samples, seed))
        if row["parse_rate"] is not None and row["parse_rate"] < COLLAPSE:
            row["note"] = "; ".join(filter(None, [f"parse-rate collapse ({_pct(row['parse_rate'])}%)", row["note"]]))
        group.rows.append(row)
    done: set[frozenset[str]] = set()
    for a, b in PAIRS:
        if a == b or a not in group.runs or b not in group.runs or frozenset((a, b)) in done:
            continue
        done.add(frozenset((a, b)))
        comparison = compare(group, a, b, samples, seed)
        if comparison is not None:
            group.paired.append(comparison)
    return group


def method_row(group: Group, method: str, runs: list[Run], samples: int = 2000, seed: int = 0) -> dict:
    accuracies = [float(r.summary["accuracy"]) for r in runs]
    interval_kind = "wilson"
    if all(r.outcomes for r in runs) and (ids := _shared_ids(runs)):
        # Templates and training seeds resampled: the interval holds both kinds of spread.
        clusters, grouped = clusters_of(runs, ids)
        low, high = bootstrap_arms([matrix(runs, ids)], clusters, lambda a: a, samples, seed) or (None, None)
        interval_kind = "bootstrap over " + ("templates" if grouped else "questions") + \
            (" and seeds" if len(runs) > 1 else "")
    elif len(runs) == 1:
        low, high = runs[0].summary.get("accuracy_ci95", [None, None])
    else:
        low, high = wilson_interval(sum(r.summary["correct"] for r in runs), sum(r.summary["n"] for r in runs))
    parse_rates = [r.summary["parse_rate"] for r in runs if r.summary.get("parse_rate") is not None]
    rules = sorted({str(r.summary.get("scoring", DEFAULT_SCORING)) for r in runs})
    by_rule = [r.summary.get("accuracy_by_rule") for r in runs]
    # Open answers: each rule's accuracy (mean over seeds) where every seed's summary has it.
    shared_rules = [rule for rule in SCORING_RULES if all(isinstance(b, dict) and rule in b for b in by_rule)]
    return {"scoring": "+".join(rules),
            "accuracy_by_rule": {rule: fmean(float(b[rule]) for b in by_rule) for rule in shared_rules} or None,
            **{f"accuracy_{rule}": fmean(float(b[rule]) for b in by_rule) for rule in shared_rules},
            "folder": str(group.folder), "dataset": group.dataset, "teacher": group.teacher,
            "student": group.student, "method": method, "n": runs[0].summary["n"], "accuracy": fmean(accuracies),
            "accuracy_sd": stdev(accuracies) if len(runs) > 1 else None, "seeds": accuracies,
            "seed_numbers": [r.seed for r in runs], "accuracy_ci_low": low, "accuracy_ci_high": high,
            "accuracy_ci_kind": interval_kind,
            "parse_rate": fmean(parse_rates) if parse_rates else None, "pgr": None, "pgr_ci_low": None,
            "pgr_ci_high": None, "note": ""}


def pgr_cells(group: Group, method: str, samples: int, seed: int) -> dict:
    absent = [end for end in ("weak", "ceiling") if end not in group.runs]
    if absent:
        return {"note": "PGR needs " + " and ".join(absent)}
    sides = [group.method_runs(m) for m in (method, "weak", "ceiling")]
    everything = [r for runs in sides for r in runs]
    ids = _shared_ids(everything) if all(r.outcomes for r in everything) else []
    if not ids:
        point = pgr(*(fmean(r.summary["accuracy"] for r in runs) for runs in sides))
        if point is None:
            return {"note": "ceiling does not beat weak: PGR undefined"}
        return {"pgr": point, "note": "no per-question results: PGR without interval"}
    point = pgr(*(float(averaged(runs, ids).mean()) for runs in sides))
    if point is None:
        return {"note": "ceiling does not beat weak: PGR undefined"}
    clusters, _ = clusters_of(everything, ids)
    interval = bootstrap_arms([matrix(runs, ids) for runs in sides], clusters, _pgr_of, samples, seed)
    notes = []
    if len(ids) < max(len(r.outcomes) for r in sides[0]):
        notes.append(f"PGR on the {len(ids)} shared questions")
    if interval is None:
        notes.append("interval undefined (ceiling rarely beats weak)")
    return {"pgr": point, "pgr_ci_low": interval[0] if interval else None,
            "pgr_ci_high": interval[1] if interval else None, "note": "; ".join(notes)}


def _pgr_of(method: np.ndarray, weak: np.ndarray, ceiling: np.ndarray) -> np.ndarray:
    gap = ceiling - weak
    return np.where(gap > 0, (method - weak) / np.where(gap > 0, gap, 1), np.nan)


def seed_pairs(a: list[Run], b: list[Run]) -> list[tuple[Run, Run]]:
    """Seed N against seed N where both sides have it; else a single run against each run of the other."""
    b_by_seed = {r.seed: r for r in b}
    shared = [(r, b_by_seed[r.seed]) for r in a if r.seed in b_by_seed]
    if shared:
        return shared
    if len(b) == 1:
        return [(r, b[0]) for r in a]
    return [(a[0], r) for r in b] if len(a) == 1 else []


def compare(group: Group, a: str, b: str, samples: int, seed: int) -> dict | None:
    """a vs b on the same questions, over every seed of both (see the module docstring); None when it
    cannot be done (the reason goes to ``group.missing``)."""
    runs_a, runs_b = group.method_runs(a), group.method_runs(b)
    if not all(r.outcomes for r in runs_a + runs_b):
        group.missing.append(f"{a} vs {b} (no per-question results)")
        return None
    ids = _shared_ids(runs_a + runs_b)
    if not ids:
        group.missing.append(f"{a} vs {b} (no shared questions)")
        return None
    per_seed = []
    for run_a, run_b in seed_pairs(runs_a, runs_b):
        pair_ids = _shared_ids([run_a, run_b])
        per_seed.append({"seed_a": run_a.seed, "seed_b": run_b.seed,
                         **paired_difference(averaged([run_a], pair_ids), averaged([run_b], pair_ids), samples, seed)})
    outcomes_a, outcomes_b = matrix(runs_a, ids), matrix(runs_b, ids)
    clusters, grouped = clusters_of(runs_a + runs_b, ids)
    deltas = [s["delta"] for s in per_seed]
    mean_a, mean_b = outcomes_a.mean(1), outcomes_b.mean(1)
    return {"a": a, "b": b, "delta": float(mean_a.mean() - mean_b.mean()),
            "delta_sd": stdev(deltas) if len(deltas) > 1 else None,
            "seeds_a": [r.seed for r in runs_a], "seeds_b": [r.seed for r in runs_b],
            "ci": bootstrap_arms([outcomes_a, outcomes_b], clusters, lambda x, y: x - y, samples, seed),
            "ci_method": "bootstrap over " + ("templates" if grouped else "questions") + " and seeds",
            **cluster_test(outcomes_a, outcomes_b, clusters),
            "test": "Wilcoxon signed-rank over " + ("templates" if grouped else "questions") +
                    " (seed-mean differences)", "n": len(ids), "per_seed": per_seed}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def _interval(low: float | None, high: float | None, scale: float = 100) -> str:
    if low is None or high is None:
        return "—"
    return f"[{scale * low:.1f}, {scale * high:.1f}]" if scale == 100 else f"[{low:.2f}, {high:.2f}]"


def _seeds_cell(row: dict) -> str:
    if row["seed_numbers"] == [None]:
        return "—"
    return ", ".join(f"{_pct(acc)}" if s is None else f"s{s} {_pct(acc)}"
                     for s, acc in zip(row["seed_numbers"], row["seeds"]))


def _seed_pair(per_seed: dict) -> str:
    """"s1" for seed 1 against seed 1 (or against a single run), "s1/s2" for unequal seeds, "" for two single runs."""
    return "/".join(f"s{s}" for s in dict.fromkeys((per_seed["seed_a"], per_seed["seed_b"])) if s is not None)


def _paired_cells(p: dict) -> str:
    delta = f"{100 * p['delta']:+.1f}" + ("" if p["delta_sd"] is None else f" ± {100 * p['delta_sd']:.1f}")
    ci = "—" if p["ci"] is None else f"[{100 * p['ci'][0]:+.1f}, {100 * p['ci'][1]:+.1f}]"
    per_seed = ", ".join(f"{_seed_pair(r)} {r['p_mcnemar']:.3g}".strip() for r in p["per_seed"])
    better = f"{p['clusters_a_better']}/{p['clusters_b_better']} of {p['clusters']}"
    return (f"| {LABELS.get(p['a'], p['a'])} | {LABELS.get(p['b'], p['b'])} | {delta} | {ci} | {p['p_clusters']:.3g} | "
            f"{better} | {per_seed} | {p['n']} |\n")


def gate_text(gate: dict) -> str:
    """The gate's verdict with its numbers: what failed, and whether the arms ran anyway."""
    numbers = ", ".join(f"{name} {_pct(gate[name]['accuracy'])}%" for name in ("weak", "ceiling", "zero_shot")
                        if isinstance(gate.get(name), dict) and "accuracy" in gate[name])
    if gate.get("passed"):
        return f"passed ({numbers})" if numbers else "passed"
    failed = [name.replace("_", " ") for name, ok in gate.get("checks", {}).items() if not ok]
    text = "NOT passed" + (f" ({'; '.join(failed)}: {numbers})" if failed else "")
    if gate.get("overridden"):
        text += "; the student arms were run anyway (--override-gate): read their PGR with that in mind"
    return text


def evidence_text(evidence: dict) -> str:
    """What a reader checks before the table (evidence.json): each arm's training rows, how often their
    answers are right, how many pass the target checks judged again; whether each training reached its
    learning rate."""
    targets, hygiene = evidence.get("training_targets") or {}, evidence.get("hygiene") or {}
    rows = []
    for arm, scored in targets.items():
        if scored is None or "(" in arm:  # no file; Alice's original/new rows apart are in evidence.json
            continue
        final = (hygiene.get(arm) or {}).get("final") or {}
        right = _pct(scored["accuracy"]) if scored.get("accuracy") is not None else "—"
        clean = f"{final['clean']} of {final['rows']}" if "clean" in final and "rows" in final else "not recorded"
        rows.append(f"| {LABELS.get(arm, arm)} | {scored.get('rows', 0)} | {right} | {clean} |")
    out = ""
    if rows:
        out += ("What each arm was trained on (evidence.json): its rows, how often their answers are right (scored "
                "against the pool's ground truth, which no weak-to-strong arm sees) and how many pass the target "
                "checks, judged again.\n\n| arm | rows | targets right (%) | rows clean |\n|---|---:|---:|---:|\n"
                + "\n".join(rows) + "\n\n")
    runs = evidence.get("training_runs") or {}
    judged = {name: run for name, run in runs.items()
              if isinstance(run.get("peak_lr_reached"), (int, float)) and run.get("learning_rate")}
    short = sorted(name for name, run in judged.items() if run["peak_lr_reached"] < 0.999 * run["learning_rate"])
    if judged:
        out += (f"Trainings: {len(judged) - len(short)} of {len(judged)} reached their peak learning rate"
                + (f"; not: {', '.join(short)}" if short else "") + ".\n\n")
    return out


def markdown(groups: list[Group]) -> str:
    out = io.StringIO()
    out.write("# Weak-to-strong results\n\n")
    out.write("Accuracy in % (unparsable answers count as wrong): the mean over training seeds, each seed's "
              "accuracy and their sd, with a 95% percentile bootstrap interval that resamples the independent units "
              "(templates where questions come in templates, else questions) and the training seeds. PGR = "
              "(method - weak) / (ceiling - weak) on seed means, with its interval from the same bootstrap.\n")
    if not groups:
        out.write("\nNo results found (no eval-*.summary.json).\n")
    for group in groups:
        out.write(f"\n## {group.title}\n\n")
        if group.note:
            out.write(f"{group.note}\n\n")
        out.write(f"Folder: `{group.folder}`\n\n")
        if group.gate is not None:
            out.write(f"Gate (gate.json): {gate_text(group.gate)}.\n\n")
        if group.noise_floor is not None and group.noise_floor.get("outcome_agreement") is not None:
            out.write(f"Noise floor (noise_floor.json): outcome agreement "
                      f"{_pct(group.noise_floor['outcome_agreement'])}%.\n\n")
        if group.evidence is not None:
            out.write(evidence_text(group.evidence))
        if group.rows:
            out.write("| method | n | accuracy | 95% CI | seeds | sd | parse rate | PGR | PGR 95% CI | note |\n")
            out.write("|---|---:|---:|---|---|---:|---:|---:|---|---|\n")
            for r in group.rows:
                pgr_text = "—" if r["pgr"] is None else f"{r['pgr']:.2f}"
                out.write(f"| {LABELS.get(r['method'], r['method'])} | {r['n']} | {_pct(r['accuracy'])} | "
                          f"{_interval(r['accuracy_ci_low'], r['accuracy_ci_high'])} | {_seeds_cell(r)} | "
                          f"{_pct(r['accuracy_sd'])} | {_pct(r['parse_rate'])} | {pgr_text} | "
                          f"{_interval(r['pgr_ci_low'], r['pgr_ci_high'], scale=1)} | {r['note']} |\n")
        scoring = scoring_section(group)
        if scoring:
            out.write(scoring)
        if group.paired:
            out.write("\nPaired comparisons on the same questions, over every training seed of both sides. Δ = "
                      "seed-mean accuracy(a) - seed-mean accuracy(b) in points, ± the sd of the per-seed-pair "
                      "differences. 95% CI: percentile bootstrap resampling the independent units (templates where "
                      "questions come in templates, else questions), the same draw for both sides, and each side's "
                      "seeds. p: Wilcoxon signed-rank test over those units' seed-mean differences (two-sided); "
                      "units better: where a beats b / b beats a. McNemar p per seed pair (questions treated as "
                      "independent, for reference).\n\n")
            out.write("| a | b | Δ (points) | 95% CI | p | units better (a/b) | McNemar p per seed | n |\n")
            out.write("|---|---|---:|---|---:|---|---|---:|\n")
            for p in group.paired:
                out.write(_paired_cells(p))
        if group.missing:
            out.write(f"\nMissing: {', '.join(group.missing)}.\n")
    return out.getvalue()


def scoring_section(group: Group) -> str:
    """The scoring rule behind the table (said when it is not the paper's, or when the rules can differ) and,
    for open answers, every rule's accuracy side by side."""
    rules = sorted({r["scoring"] for r in group.rows})
    shown = [r for r in group.rows if r["accuracy_by_rule"]]
    if not shown and rules in ([], [DEFAULT_SCORING]):
        return ""
    out = f"\nScoring: the table's accuracy uses the `{'`, `'.join(rules)}` rule (eval.py --scoring).\n"
    if shown:
        names = [rule for rule in SCORING_RULES if any(rule in r["accuracy_by_rule"] for r in shown)]
        out += ("Open answers under each rule (accuracy in %): "
                + "; ".join(f"{name}: {SCORING_RULES[name]}" for name in names) + ".\n\n")
        out += "| method | " + " | ".join(names) + " |\n|---|" + "---:|" * len(names) + "\n"
        for r in shown:
            out += (f"| {LABELS.get(r['method'], r['method'])} | "
                    + " | ".join(_pct(r["accuracy_by_rule"].get(name)) for name in names) + " |\n")
    return out


def write_csv(groups: list[Group]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for group in groups:
        writer.writerows({**r, "seeds": ";".join(map(str, r["seeds"]))} for r in group.rows)
    return buffer.getvalue()


def group_json(group: Group) -> dict:
    """One group's report.json object (module docstring)."""
    methods = {r["method"]: {"accuracy": r["accuracy"], "seeds": r["seeds"], "seed_numbers": r["seed_numbers"],
                             "accuracy_sd": r["accuracy_sd"], "accuracy_ci": [r["accuracy_ci_low"], r["accuracy_ci_high"]],
                             "n": r["n"], "parse_rate": r["parse_rate"], "pgr": r["pgr"],
                             "pgr_ci": None if r["pgr_ci_low"] is None else [r["pgr_ci_low"], r["pgr_ci_high"]],
                             "note": r["note"], "scoring": r["scoring"],
                             "accuracy_by_rule": r["accuracy_by_rule"]} for r in group.rows}
    return {"folder": str(group.folder), "title": group.title, "setting": group.setting, "gate": group.gate,
            "noise_floor": group.noise_floor, "methods": methods, "paired": group.paired, "missing": group.missing}


REPORT_SCHEMA = "alice-report/2"


def report_json(groups: list[Group]) -> dict:
    """report.json: the same keys for one run and for a sweep (one entry in ``groups`` per dataset and
    model pair), with what made it (the command, the code's git commit, the library versions)."""
    import sys

    from .records import git_commit, library_versions

    return {"schema": REPORT_SCHEMA, "command": " ".join(sys.argv), "git_commit": git_commit(),
            "versions": library_versions(), "groups": [group_json(g) for g in groups]}


COLLAPSE = 0.5  # a parse rate below this is a format collapse, not a low score


def chance_level(group: Group) -> float | None:
    """Accuracy of guessing, for the reference line: the gate's, else 25% for ARC's four options; None
    where guessing scores nothing (numeric answers), so no line is drawn."""
    if group.gate and group.gate.get("chance") is not None:
        return float(group.gate["chance"]) if group.gate["chance"] > 0 else None
    return 0.25 if group.dataset.startswith("arc") else None


# Labels for methods the table has no name for (context rows a run may add).
EXTRA_LABELS = {"teacher": "Teacher (trained)", "teacher_zero_shot": "Teacher (untrained)"}
# The comparisons the main panel shows: Alice (and cascade Alice) minus each baseline and control.
FOCUS = ("alice", "cascade")
PGR_LIMITS = (-1.0, 1.5)  # the PGR axis; values beyond are drawn at the edge and marked


def label_of(method: str) -> str:
    return LABELS.get(method) or EXTRA_LABELS.get(method) or method.replace("_", " ")


def plot(groups: list[Group], path: Path) -> list[Path]:
    """One row per group (dataset and model pair), three panels:
    - the paired differences the comparison is about: Alice (and cascade Alice) minus each baseline and
      control, in points, with their 95% intervals (resampling templates or questions, and seeds);
    - accuracy per method: the mean over seeds with an interval that includes the seed-to-seed spread,
      each seed as a dot, weak and ceiling as reference lines (and chance, where guessing scores);
      a format collapse (parse rate under 50%) hatched and named;
    - PGR with its interval, on an axis clipped to PGR_LIMITS (values beyond are marked at the edge).
    The gate's verdict heads each row. Written as PNG and PDF; returns the files."""
    groups = [g for g in groups if g.rows]
    if not groups:
        return []
    import matplotlib.pyplot as plt

    fig = figure(groups)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for target in (path, path.with_suffix(".pdf")):
        fig.savefig(target, dpi=150)
        written.append(target)
    plt.close(fig)
    return written


def figure(groups: list[Group]):
    """The report's figure (see ``plot``) as a matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(groups), 3, figsize=(17, 5.2 * len(groups)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.35, 2.0, 1.1]})
    for (diff_ax, ax, pgr_ax), group in zip(axes, groups):
        difference_panel(diff_ax, group)
        accuracy_panel(ax, group)
        pgr_panel(pgr_ax, group)
        ax.set_title(f"{group.title}\n{gate_verdict(group.gate)}", fontsize=9,
                     color="black" if not group.gate or group.gate.get("passed") else "#aa0000")
    fig.tight_layout()
    return fig


def gate_verdict(gate: dict | None) -> str:
    """The gate in a few words, for the figure (report.md has the numbers)."""
    if not gate:
        return "no validity gate checked"
    if gate.get("passed"):
        return "validity gate passed"
    failed = ", ".join(name.replace("_", " ") for name, ok in gate.get("checks", {}).items() if not ok)
    return f"validity gate NOT passed ({failed})" + ("; arms run anyway" if gate.get("overridden") else "")


def difference_panel(ax, group: Group) -> None:
    pairs = [p for p in group.paired if p["a"] in FOCUS and p["ci"] is not None]
    if not pairs:
        ax.text(0.5, 0.5, "no paired comparisons of Alice", ha="center", va="center", transform=ax.transAxes,
                fontsize=8)
        ax.set_axis_off()
        return
    y = list(range(len(pairs)))[::-1]
    for yi, p in zip(y, pairs):
        low, high = 100 * p["ci"][0], 100 * p["ci"][1]
        color = "#cc6677" if low > 0 else "#4477aa" if high < 0 else "#777777"
        ax.errorbar(100 * p["delta"], yi, xerr=[[100 * p["delta"] - low], [high - 100 * p["delta"]]], fmt="o",
                    color=color, capsize=3)
    ax.axvline(0, color="#555555", linewidth=1)
    ax.set_yticks(y, [f"{label_of(p['a'])} − {label_of(p['b'])}" for p in pairs], fontsize=8)
    ax.set_xlabel("difference in accuracy (points, 95% CI)", fontsize=8)
    ax.set_title("paired differences", fontsize=9)


def accuracy_panel(ax, group: Group) -> None:
    rows = group.rows
    x = list(range(len(rows)))
    acc = [100 * r["accuracy"] for r in rows]
    err = [[max(0.0, a - 100 * (r["accuracy_ci_low"] if r["accuracy_ci_low"] is not None else r["accuracy"]))
            for a, r in zip(acc, rows)],
           [max(0.0, 100 * (r["accuracy_ci_high"] if r["accuracy_ci_high"] is not None else r["accuracy"]) - a)
            for a, r in zip(acc, rows)]]
    colors = ["#999999" if r["method"] in ("weak", "ceiling") else "#cc6677"
              if r["method"] in FOCUS else "#4477aa" for r in rows]
    collapsed = [r["parse_rate"] is not None and r["parse_rate"] < COLLAPSE for r in rows]
    bars = ax.bar(x, acc, yerr=err, color=colors, capsize=3, label="accuracy (seed mean, 95% CI)")
    for bar, bad in zip(bars, collapsed):
        if bad:
            bar.set_hatch("//")
            bar.set_edgecolor("black")
    dots = [(xi, 100 * s) for xi, r in zip(x, rows) if len(r["seeds"]) > 1 for s in r["seeds"]]
    if dots:
        ax.scatter(*zip(*dots), color="black", s=8, zorder=3, label="training seed")
    for r in rows:
        if r["method"] in ("weak", "ceiling"):
            ax.axhline(100 * r["accuracy"], color="#555555", linestyle="--" if r["method"] == "weak" else ":",
                       linewidth=1, label=LABELS[r["method"]])
    chance = chance_level(group)
    if chance is not None:
        ax.axhline(100 * chance, color="#bb5500", linestyle="-.", linewidth=1, label=f"chance ({100 * chance:.0f}%)")
    names = [label_of(r["method"]) + ("\n(format collapse)" if bad else "") for r, bad in zip(rows, collapsed)]
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, loc="upper left", ncol=2)


def pgr_panel(ax, group: Group) -> None:
    rated = [r for r in group.rows if r["pgr"] is not None]
    low_edge, high_edge = PGR_LIMITS
    ax.axhline(0, color="#555555", linestyle="--", linewidth=1, label="weak (PGR 0)")
    ax.axhline(1, color="#555555", linestyle=":", linewidth=1, label="ceiling (PGR 1)")
    for i, r in enumerate(rated):
        color = "#cc6677" if r["method"] in FOCUS else "#4477aa"
        point = min(max(r["pgr"], low_edge), high_edge)
        low, high = r["pgr_ci_low"], r["pgr_ci_high"]
        if low is not None and high is not None:
            low, high = min(max(low, low_edge), high_edge), min(max(high, low_edge), high_edge)
            ax.errorbar(i, point, yerr=[[point - low], [high - point]], fmt="o", color=color, capsize=3)
        else:
            ax.plot(i, point, "o", color=color)
        if point != r["pgr"]:  # off the axis: drawn at the edge, its value written beside it
            ax.annotate(f"{r['pgr']:.2f}", (i, point), textcoords="offset points", xytext=(6, 0), fontsize=7,
                        va="center", color=color)
    ax.set_ylim(low_edge - 0.05, high_edge + 0.05)
    ax.set_xticks(range(len(rated)), [label_of(r["method"]) for r in rated], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("PGR (95% CI)")
    ax.set_title("performance gap recovered", fontsize=9)
    if not rated:
        ax.text(0.5, 0.5, "no PGR (needs weak, and a ceiling above it)", ha="center", va="center", transform=ax.transAxes,
                fontsize=8)
    # "best" keeps the legend off the points and the values written beside clipped ones.
    ax.legend(fontsize=7, loc="best")


# Folders under a run that are not one of its groups: ``previous/`` (an earlier run kept beside its rerun) and
# ``noise/`` (the noise floor's reruns of the untrained student, which noise_floor.json sums up).
NOT_GROUPS = ("previous", "noise")
SECOND_TEST = "held_out_templates"  # experiment.py --second-test's folder: the run's second test set


def run_extras(root: Path, groups: list[Group]) -> dict:
    """What report.json adds at a run folder's root: the run's own group and its second test set's
    (``in_template``, ``held_out_templates``), the gate, the test draws left out as near duplicates of
    train questions, the targets' checks per arm (evidence.json ``hygiene``) and the run's settings."""
    def read(name: str) -> dict | None:
        try:
            return read_json(root / name)
        except AliceError:  # absent or unreadable: that part is left out
            return None

    info = read("experiment.json") or {}
    extras: dict = {}
    by_folder = {Path(g.folder).resolve(): group_json(g) for g in groups}
    if (root / SECOND_TEST).resolve() in by_folder:
        extras["in_template"] = by_folder.get(root.resolve())
        extras["held_out_templates"] = by_folder[(root / SECOND_TEST).resolve()]
    if read("gate.json") is not None:
        extras["gate"] = read("gate.json")
    setting = info.get("setting") or {}
    description = setting.get("data_description") or info.get("data_description") or {}
    if "near_duplicates_left_out" in description:
        extras["near_duplicates"] = description["near_duplicates_left_out"]
    if (read("evidence.json") or {}).get("hygiene") is not None:
        extras["hygiene"] = read("evidence.json")["hygiene"]
    if setting or info.get("settings"):
        extras["setting"] = setting or info["settings"]
    return extras


def build_report(root: str | Path, output_dir: str | Path | None = None, samples: int = 2000,
                 seed: int = 0, exclude: tuple[str, ...] = NOT_GROUPS) -> dict:
    """Write report.md, report.csv, report.json, report.png and report.pdf; returns the paths, the method rows,
    the paired comparisons and what is missing."""
    groups = [compute(g, samples, seed) for g in collect(root, exclude)]
    out = Path(output_dir or root)
    text = markdown(groups)
    atomic_write_text(out / "report.md", text)
    atomic_write_text(out / "report.csv", write_csv(groups))
    atomic_write_text(out / "report.json",
                      json.dumps({**report_json(groups), **run_extras(Path(root), groups)}, indent=2) + "\n")
    figures = plot(groups, out / "report.png")
    return {"markdown": str(out / "report.md"), "csv": str(out / "report.csv"), "json": str(out / "report.json"),
            "png": str(out / "report.png") if figures else None,
            "pdf": str(out / "report.pdf") if figures else None, "text": text,
            "rows": [r for g in groups for r in g.rows], "paired": [p for g in groups for p in g.paired],
            "missing": {str(g.folder): g.missing for g in groups if g.missing}}

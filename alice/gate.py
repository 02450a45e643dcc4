"""The validity gate: does the weak-to-strong frame hold before any student arm is trained?

Read on the evaluations already in a run folder (``eval-<name>.summary.json`` and ``.jsonl``): the
trained weak model is above chance (its 95% interval), the ceiling beats it by ``min_gap`` with the
intervals apart, and training on ground truth did not make the student worse than its zero-shot self.
Each side is the mean over its training seeds, with an interval resampling templates (or questions)
and seeds. experiment.py (``--gate``) and the fair test both write the verdict to ``gate.json``.

The noise floor (``noise_floor``, experiment.py ``--noise-floor``) is the other check a comparison
needs: how many outcomes an evaluation changes when only its batch composition does.
"""

from __future__ import annotations

from pathlib import Path

from .errors import AliceError
from .records import atomic_write_json, iter_jsonl, manifest_path, read_json


def outcomes(path: Path) -> dict[str, dict]:
    """An evaluation's rows by question id."""
    return {str(row["id"]): row for _, row in iter_jsonl(path)}


def eval_summary(run: Path, name: str) -> dict:
    path = run / f"eval-{name}.summary.json"
    if not path.is_file():
        raise AliceError(f"{path}: missing (the gate needs it)")
    return read_json(path)


def seed_means(run: Path, names: list[str], samples: int = 2000) -> dict:
    """Several evaluations of one arm (its seeds) as one: the mean accuracy and parse rate, each seed's
    accuracy, and a 95% interval resampling templates (or questions) and seeds (alice.metrics)."""
    import numpy as np

    from .metrics import bootstrap_arms

    summaries = [eval_summary(run, name) for name in names]
    rows = [outcomes(run / f"eval-{name}.jsonl") for name in names]
    ids = sorted(set.intersection(*(set(r) for r in rows)))
    matrix = np.array([[r[i]["correct"] for i in ids] for r in rows], dtype=float)
    clusters = [rows[0][i].get("cluster") or i for i in ids]
    interval = bootstrap_arms([matrix], clusters, lambda a: a, samples) if ids else None
    accuracies = [s["accuracy"] for s in summaries]
    return {"n": summaries[0]["n"], "accuracy": sum(accuracies) / len(accuracies),
            "accuracy_ci95": interval or summaries[0]["accuracy_ci95"], "seeds": accuracies,
            "parse_rate": sum(s["parse_rate"] for s in summaries) / len(summaries),
            "units": len(set(clusters))}


def check_gate(run: Path, weak: list[str], ceiling: list[str], zero_shot: str, chance: float = 0.0,
               min_gap: float = 0.15, intervals_apart: bool = True) -> dict:
    """The gate's verdict on the evaluations named (``weak``, ``ceiling``: one name per training seed)."""
    weak_mean, ceiling_mean, zero_shot_mean = seed_means(run, weak), seed_means(run, ceiling), seed_means(run, [zero_shot])
    checks = {
        "weak_above_chance": weak_mean["accuracy_ci95"][0] > chance,
        "gap_at_least_min": ceiling_mean["accuracy"] - weak_mean["accuracy"] >= min_gap,
        "intervals_apart": ceiling_mean["accuracy_ci95"][0] > weak_mean["accuracy_ci95"][1] or not intervals_apart,
        "ceiling_not_below_zero_shot": ceiling_mean["accuracy"] >= zero_shot_mean["accuracy"],
    }
    return {"weak": weak_mean, "ceiling": ceiling_mean, "zero_shot": zero_shot_mean, "chance": chance,
            "min_gap": min_gap, "gap": ceiling_mean["accuracy"] - weak_mean["accuracy"],
            "evaluations": {"weak": weak, "ceiling": ceiling, "zero_shot": zero_shot},
            "reads": "seed means; intervals resample templates and seeds", "checks": checks,
            "passed": all(checks.values())}


def decide(gate: dict, run: Path, override: bool) -> dict:
    """Write the verdict to ``run/gate.json`` and act on it: a failed gate stops the student arms (an
    AliceError with one line), unless ``override`` (--override-gate) lets them run, marked as such."""
    gate["overridden"] = not gate["passed"] and override
    atomic_write_json(run / "gate.json", gate)
    if gate["overridden"]:
        print(f"gate NOT passed ({', '.join(k for k, ok in gate['checks'].items() if not ok)}); the student arms run "
              "anyway (--override-gate): read their results with that in mind", flush=True)
        return gate
    if not gate["passed"]:
        raise AliceError(refusal(gate))
    print(f"gate passed: weak {gate['weak']['accuracy']:.3f}, ceiling {gate['ceiling']['accuracy']:.3f}, "
          f"zero-shot {gate['zero_shot']['accuracy']:.3f}", flush=True)
    return gate


def refusal(gate: dict) -> str:
    """The one line that stops the student arms when the gate fails."""
    failed = [k for k, ok in gate["checks"].items() if not ok]
    return (f"the weak-to-strong frame does not hold here ({', '.join(failed)}): weak {gate['weak']['accuracy']:.3f}, "
            f"ceiling {gate['ceiling']['accuracy']:.3f}, zero-shot {gate['zero_shot']['accuracy']:.3f}; the student "
            "arms are not run (see gate.json)")


def agreement(a: Path, b: Path) -> dict:
    """How often two evaluations of one model agree, question by question."""
    rows_a, rows_b = outcomes(a), outcomes(b)
    ids = sorted(set(rows_a) & set(rows_b))
    same_outcome = sum(rows_a[i]["correct"] == rows_b[i]["correct"] for i in ids)
    same_response = sum(rows_a[i].get("response") == rows_b[i].get("response") for i in ids)
    return {"n": len(ids), "outcome_agreement": same_outcome / len(ids) if ids else None,
            "outcomes_differ": len(ids) - same_outcome, "identical_responses": same_response,
            "accuracy": [sum(rows_a[i]["correct"] for i in ids) / max(1, len(ids)),
                         sum(rows_b[i]["correct"] for i in ids) / max(1, len(ids))]}


def generation_seconds(output: Path) -> float | None:
    manifest = manifest_path(output)
    return read_json(manifest).get("timings", {}).get("generation_s") if manifest.is_file() else None


def noise_floor(run: Path, zero_shot: str) -> dict:
    """How many outcomes change when nothing but the batch does: the untrained student's evaluation
    ``eval-<zero_shot>.jsonl`` against its rerun in smaller chunks (``noise/rerun.jsonl``), and two plain
    greedy evaluations (``noise/plain-a.jsonl``, ``noise/plain-b.jsonl``: no batch-invariant kernels)."""
    noise = run / "noise"
    with_invariance = agreement(run / f"eval-{zero_shot}.jsonl", noise / "rerun.jsonl")
    plain = agreement(noise / "plain-a.jsonl", noise / "plain-b.jsonl")
    return {"outcome_agreement": with_invariance["outcome_agreement"], "eval_settings": with_invariance,
            "without_batch_invariance": plain,
            "generation_s": {"eval_settings": generation_seconds(run / f"eval-{zero_shot}.jsonl"),
                             "eval_settings_rerun": generation_seconds(noise / "rerun.jsonl"),
                             "plain": generation_seconds(noise / "plain-a.jsonl"),
                             "plain_rerun": generation_seconds(noise / "plain-b.jsonl")},
            "note": "the untrained student evaluated twice per mode; the reruns use smaller chunks (another batch "
                    "composition); the jobs shared the GPU with other steps, so times are indicative"}

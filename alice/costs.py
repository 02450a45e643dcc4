"""What a run's GPU time went to.

The executor's status file (``steps.json``: every step's wall time, over every part of a resumed run)
is split by each stage's own timings (its manifest's ``timings``) into work (training, generation,
probing, summarizing), loading, saving and the rest (process start, imports, engine start, model
conversion, waiting), and summed per kind of step (train, eval, data, uncertainty, convert, noise).
Steps that shared a GPU overlap in time, so the per-step sums exceed the run's wall time; the run's
own wall time per part is what a GPU was held for.
"""

from __future__ import annotations

import itertools
import json
import shlex
from pathlib import Path

from .records import manifest_path, read_batch_listing

WORK = ("train_s", "generation_s", "probing_s", "summarizing_s", "clustering_s", "zero_shot_s", "proactive_s")
LOAD = ("load_s", "embedder_load_s")
SAVE = ("save_s",)


def relocate(path: str, run: Path) -> Path:
    """A path recorded on the machine that ran the step, read in ``run`` when the run folder has moved since
    (copied back from a GPU host, restored elsewhere): the longest tail of it that exists under ``run``."""
    recorded = Path(path)
    if recorded.exists() or not recorded.is_absolute():
        return recorded
    parts = recorded.parts
    for start in range(1, len(parts)):
        candidate = run.joinpath(*parts[start:])
        if candidate.exists():
            return candidate
    return recorded


def step_outputs(command: str, run: Path, moved_from: str | None = None) -> list[Path]:
    """The manifests a step's command writes: its ``--output`` / ``--output-dir``, or, for a batch of
    evaluations (``python -m alice.stages.evaluate LISTING``; results/fair's steps.json records an earlier
    driver's ``scripts/fair.py evaluate ... NAME...``), each evaluation in it.
    ``moved_from``: the run folder's path where the run happened, read as ``run`` here."""
    argv = shlex.split(command)

    def local(path: str) -> Path:
        if moved_from and path.startswith(moved_from.rstrip("/") + "/"):
            return run / path[len(moved_from.rstrip("/")) + 1:]
        return relocate(path, run)

    found = []
    for flag, value in itertools.pairwise(argv):
        # The manifest is found by its own path: a run folder copied without its outputs (deliverables
        # leave out the probing parts' rows, a model's weights) still has them.
        if flag == "--output":
            found.append(local(str(manifest_path(value))))
        elif flag == "--output-dir":
            found.append(local(str(Path(value) / "manifest.json")))
    if argv[-2:-1] == ["alice.stages.evaluate"]:  # experiment.py --eval-batches: the listing names the outputs
        listing = local(argv[-1])
        if listing.is_file():
            found += [local(str(manifest_path(c["output"]))) for c in read_batch_listing(listing)[0] if c.get("output")]
    if "evaluate" in argv and any(a.endswith("fair.py") for a in argv):  # an earlier driver's batches (results/fair)
        names, rest = [], iter(argv[argv.index("evaluate") + 1:])
        for arg in rest:
            if arg.startswith("--"):
                if arg != "--from-hub":  # every other option takes a value
                    next(rest, None)
            else:
                names.append(arg)
        for name in names:
            found += [run / f"eval-{name}.manifest.json", run / "held_out_templates" / f"eval-{name}.manifest.json"]
    return found


def split_step(wall: float, manifests: list[dict]) -> dict[str, float]:
    """One step's wall time as work, loading, saving and the rest."""
    timings = [m.get("timings", {}) for m in manifests]
    part = {"work_s": sum(t.get(k, 0) for t in timings for k in WORK),
            "load_s": sum(t.get(k, 0) for t in timings for k in LOAD),
            "save_s": sum(t.get(k, 0) for t in timings for k in SAVE)}
    part["other_s"] = max(0.0, wall - sum(part.values()))
    return {"wall_s": wall, **part}


def gpu_time(run: Path, moved_from: str | None = None) -> dict | None:
    """Per kind of step: how many, and their wall time split (``split_step``); per part of the run: when it
    started and how long it held its GPUs. None when the run has no status file."""
    status_path = run / "steps.json"
    if not status_path.is_file():
        return None
    status = json.loads(status_path.read_text())
    parts = [*status.get("earlier_runs", []), status]
    kinds: dict[str, dict] = {}
    for part in parts:
        for name, step in part.get("steps", {}).items():
            if step.get("status") != "done" or not step.get("command") or step.get("gpu") is None:
                continue
            manifests = [json.loads(p.read_text()) for p in step_outputs(step["command"], run, moved_from)
                         if p.is_file()]
            split = split_step(float(step.get("wall_s", 0)), manifests)
            kind = kinds.setdefault(name.split()[0], {"steps": 0, **{k: 0.0 for k in split}})
            kind["steps"] += 1
            for key, value in split.items():
                kind[key] = round(kind[key] + value, 1)
    return {"parts": [{"started": p.get("started"), "wall_s": p.get("wall_s")} for p in parts],
            "gpu_held_s": round(sum(float(p.get("wall_s") or 0) for p in parts), 1),
            "by_kind": kinds,
            "note": "GPU steps only; steps that shared a GPU overlap, so the kinds' sums exceed the time held"}


def eval_batch_costs(run: Path) -> list[dict]:
    """Each batch of evaluations that shared one engine (its record: ``logs/*.engines.json`` beside the batch's
    listing, or ``engines/*.json`` in results/fair's layout): its wall time, less what it waited for trainings,
    against the generation time of its evaluations (what loading, starting and swapping the weights cost on
    top), and its engine record."""
    from .gate import generation_seconds

    batches = []
    for path in sorted([*run.glob("logs/*.engines.json"), *run.glob("engines/*.json")]):
        record = json.loads(path.read_text())
        generation = sum(generation_seconds(relocate(o, run)) or 0 for o in record.get("outputs", []))
        # A batch that started beside the trainings it evaluates waited for them: not evaluation's cost.
        busy = record["wall_s"] - (record.get("waited_s") or 0)
        batches.append({"batch": path.name.removesuffix(".json").removesuffix(".engines"),
                        "evaluations": len(record.get("outputs", [])), "wall_s": record.get("wall_s"),
                        "waited_for_trainings_s": record.get("waited_s") or 0.0, "generation_s": round(generation, 1),
                        "wall_over_generation": round(busy / generation, 2) if generation else None,
                        "engines": record.get("engines")})
    return batches

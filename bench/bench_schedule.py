"""How long a packed run (``experiment.py --gpus``) takes as one run on one card, replayed from the step times
of an earlier run, which may have run in parts: an estimate, not a measurement of the GPU.

The run's own step table (the recipe and flags given, as ``--dry-run`` builds it) goes through the run's own
executor (alice/steps.py), with each step replaced by a process that holds its share of the card for the wall
time that step took in the recorded run (scaled down by ``--scale``). An evaluation batch's stand-in starts
its engine for the recorded start time, then evaluates each model once its training's stand-in has ended, for
that batch's recorded time per model. What this leaves out: a step's time depends on what ran beside it (the
recorded trainings ran two at once), and a step's process start costs some milliseconds here (a few seconds
of the estimate at the default scale).

Side by side, each taking back one more change: the run as it is (``current``) and the same in two runs, the
second going on from the first (``current_two_parts``: everything but the students' arm trainings and their
evaluations, then those, as a machine that cannot hold the whole run at once would run it); each seed's arm
trainings listed in the arms' own order (Alice's first) instead of the order its batch evaluates them
(``alice_first``); besides, ready steps started in table order instead of the step more steps wait for first
(``table_order``); besides, the rule from before an evaluation batch could start beside a card full of
trainings (``before``: the table and executor the recorded run had).

  python bench/bench_schedule.py --run results/fair-repeat -- --config configs/fair.yaml --gpus 0 \\
      --kv-cache-gb 6 --eval-batches --probe-parts 4
  python bench/bench_schedule.py merge out/schedule.json     # adds P8_schedule_replay to results.json
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench_common import REPO, add_results, log

sys.path.insert(0, str(REPO))

from alice.cli import task_from_args
from alice.config import parse
from alice.engines import Engines
from alice.records import read_json
from alice.stages.experiment import ARM_DATA, ExperimentConfig, experiment_steps, gpu_list, packed_steps
from alice.steps import Executor, Step, reordered, slug_name

HOLD = "import pathlib,time; time.sleep({s}); pathlib.Path({mark!r}).touch()"
BATCH = ("import pathlib,time\nmarks={marks!r}\ntime.sleep({start})\n"
         "for m in marks:\n    p=pathlib.Path(m)\n    while not p.exists(): time.sleep({poll})\n    time.sleep({each})\n"
         "pathlib.Path({mark!r}).touch()")


class EarlierRoomRule(Executor):
    """The executor with the rule it had before: a step that starts before its needs only where one of those
    yet to start could start beside it now (``free - share >= largest``), whatever the card's running steps
    give back when they end."""

    def room_beside(self, step: Step, gpu: str | None, waits_for: list[Step], holding: float = 0.0) -> bool:
        largest = max((w.gpu for w in waits_for if w.gpu > 0), default=0.0)
        if gpu is not None and largest > 0 and self.free[gpu] - step.gpu + 1e-9 < largest:
            return False
        return super().room_beside(step, gpu, waits_for, holding)


ARM_STEP = re.compile(r"^(train student-(?!ceiling)|eval seed\d+ arms)")  # what needs the trained students
# label, executor, ready steps started in table order, each seed's trainings in the arms' own order (Alice's
# first), run in two parts (all but the arms, then the arms)
VARIANTS = (("current", Executor, False, False, False), ("current_two_parts", Executor, False, False, True),
            ("alice_first", Executor, False, True, False), ("table_order", Executor, True, True, False),
            ("before", EarlierRoomRule, True, True, False))


def arms_in_own_order(table: list[Step]) -> list[Step]:
    """The table with each batch's trainings back in the arms' own order (``ARM_DATA``), as experiment.py listed
    them before it listed them in the order the batch evaluates them."""
    rank = {arm.replace("_", "-"): i for i, arm in enumerate(ARM_DATA)}
    for batch in (s for s in table if s.starts_after is not None):
        trainings = [n for n in batch.needs if ARM_STEP.match(n)]
        table = reordered(table, sorted(trainings, key=lambda n: rank[n.removeprefix("train student-").rsplit("-seed", 1)[0]]))
    return table


def recorded_steps(run: Path) -> dict[str, float]:
    """Each step's wall time in the run's steps.json, over its parts (``earlier_runs``): the longest of the
    tries that ended done (a step rerun in a later part ran beside other steps than the first time)."""
    status = read_json(run / "steps.json")
    walls: dict[str, float] = {}
    for part in [*status.get("earlier_runs", []), status]:
        for name, step in part["steps"].items():
            if step.get("status") == "done" and step.get("wall_s") is not None:
                walls[name] = max(walls.get(name, 0.0), float(step["wall_s"]))
    return walls


def batch_times(run: Path, name: str, models: int) -> tuple[float, float]:
    """An evaluation batch's engine start and its time per model from its record (logs/<name>.engines.json):
    the wall time less its waiting for trainings and its first engine start, per model."""
    record = read_json(run / "logs" / f"{slug_name(name)}.engines.json")
    start = float(record["engines"][0].get("load_s", 0.0))
    work = float(record["wall_s"]) - float(record.get("waited_s", 0.0)) - start
    return start, max(work, 0.0) / max(models, 1)


def replay_table(table: list[Step], run: Path, marks: Path, scale: float, poll_s: float) -> tuple[list[Step], dict]:
    """The table's stand-ins and the recorded times each one holds its share for."""
    walls = recorded_steps(run)
    missing = [s.name for s in table if not s.in_process and s.name not in walls]
    if missing:
        raise SystemExit(f"{run}/steps.json has no done step named {missing[0]!r} ({len(missing)} missing)")
    stand_ins, times = [], {}
    for step in table:
        mark = str(marks / slug_name(step.name))
        if step.in_process:  # checks, merges, summaries: in this process, in no time that counts here
            stand_ins.append(Step(step.name, action=lambda: None, needs=step.needs))
            continue
        if step.starts_after is not None:  # an evaluation batch that waits for its trainings
            trained = [n for n in step.needs if n.startswith("train ")]
            start, each = batch_times(run, step.name, len(trained))
            code = BATCH.format(marks=[str(marks / slug_name(n)) for n in trained], start=start * scale,
                                poll=poll_s / 4, each=each * scale, mark=mark)
            times[step.name] = {"engine_start_s": start, "per_model_s": round(each, 1), "models": len(trained)}
        else:
            code = HOLD.format(s=walls[step.name] * scale, mark=mark)
            times[step.name] = {"wall_s": walls[step.name]}
        stand_ins.append(Step(step.name, helper=[sys.executable, "-S", "-c", code], needs=step.needs, gpu=step.gpu,
                              starts_after=step.starts_after, done=Path(mark).exists))
    return stand_ins, times


def run_table(flags: list[str]) -> list[Step]:
    """The packed table ``experiment.py <flags>`` would run (built as its dry run builds it)."""
    config = parse(ExperimentConfig, [*flags, "--dry-run", "--run-dir", tempfile.mkdtemp(prefix="sched-")])
    folder = Path(config.run_dir).resolve()
    task = task_from_args(config)
    steps = experiment_steps(config, folder, task, Engines(config, share_adapters=False), Executor(dry_run=True))
    return packed_steps(config, folder, steps)


def replay(executor_class: type[Executor], table: list[Step], capacity: float, gpus: list[str], scale: float,
           poll_s: float, folder: Path, two_parts: bool = False) -> dict:
    """The stand-ins' table run through ``executor_class`` (in two runs, the second going on from the first:
    everything but the arms' trainings and evaluations, then those); estimated seconds and each step's span
    (in the second part, counted from the first part's end)."""
    names = [s.name for s in table]
    parts = [[n for n in names if not ARM_STEP.match(n)], names] if two_parts else [names]
    result: dict = {"estimated_s": 0.0, "parts_s": [], "steps": {}}
    for i, targets in enumerate(parts):
        started = time.time()
        executor = executor_class(table, gpus=gpus, capacity=capacity, poll_s=poll_s, log_dir=folder / f"logs{i}")
        status = executor.make(targets)
        wall = time.time() - started
        failed = [n for n, s in status.items() if s["status"] != "done"]
        if failed:
            raise SystemExit(f"replay: {failed[0]} did not end done ({len(failed)} steps)")
        offset = result["estimated_s"]
        for n, s in status.items():  # a check the second part runs again keeps its first span
            if s.get("began_s") is not None and n not in result["steps"]:
                result["steps"][n] = [round(offset + s["began_s"] / scale, 1),
                                      round(offset + (s["began_s"] + s["wall_s"]) / scale, 1)]
        result["parts_s"].append(round(wall / scale, 1))
        result["estimated_s"] = round(offset + wall / scale, 1)
    return result


def summarize(result: dict) -> dict:
    """``P8_schedule_replay``: each variant's estimate, when its gate passed and when everything but the
    students' arm trainings and their evaluations was done, against the recorded run's parts."""
    summary: dict = {"recorded_parts_s": result["recorded_parts_s"]}
    for label, *_ in VARIANTS:
        spans = result[label]["steps"]
        summary[label] = {"estimated_s": result[label]["estimated_s"], "parts_s": result[label]["parts_s"],
                          "estimated_gpu_minutes": round(result[label]["estimated_s"] / 60, 1),
                          "gate_s": spans["gate"][1] if "gate" in spans else None,
                          "all_but_arms_s": max(end for name, (_, end) in spans.items() if not ARM_STEP.match(name))}
    summary["note"] = ("an estimate: the recorded run's step times (in parts, two trainings at once) replayed "
                       "through the executor as one run; not measured on a GPU")
    return summary


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "merge":
        result = json.loads(Path(sys.argv[2]).read_text())
        add_results({"P8_schedule_replay": summarize(result)}, result["meta"])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="an earlier run's folder (its steps.json and logs/)")
    parser.add_argument("--scale", type=float, default=0.05, help="replay time per recorded second")
    parser.add_argument("--out", default="out/schedule.json")
    parser.add_argument("flags", nargs="+", help="after --: the experiment.py flags of the run (with --gpus)")
    opts = parser.parse_args()
    config = parse(ExperimentConfig, opts.flags)
    table = run_table(opts.flags)
    gpus = gpu_list(config)
    recorded = read_json(Path(opts.run) / "steps.json")
    result: dict = {"meta": {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                             "command": "python bench/bench_schedule.py " + shlex.join(sys.argv[1:]),
                             "device": "cpu (a replay of the recorded steps' times)"},
                    "run": opts.run, "flags": opts.flags, "scale": opts.scale, "capacity": config.gpu_capacity,
                    "steps_in_table": len(table),
                    "recorded_parts_s": [part["wall_s"] for part in [*recorded.get("earlier_runs", []), recorded]]}
    poll_s = 2.0 * opts.scale  # the executor polls every 2 s in a run
    with tempfile.TemporaryDirectory(prefix="sched-") as tmp:
        for label, executor_class, table_order, as_given, two_parts in VARIANTS:
            marks = Path(tmp) / label
            marks.mkdir()
            stand_ins, times = replay_table(arms_in_own_order(table) if as_given else table,
                                            Path(opts.run), marks, opts.scale, poll_s)
            if table_order:  # a priority of its own per step: ready steps start in table order
                stand_ins = [replace(step, priority=i) for i, step in enumerate(stand_ins)]
            result["recorded"] = times
            result[label] = replay(executor_class, stand_ins, config.gpu_capacity, gpus, opts.scale, poll_s,
                                   Path(tmp) / f"{label}-run", two_parts)
            log(f"{label}: {result[label]['estimated_s']} s estimated for the whole table as one run")
    Path(opts.out).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.out).write_text(json.dumps(result, indent=1) + "\n")
    log(f"wrote {opts.out}")
    print(json.dumps(summarize(result), indent=1))


if __name__ == "__main__":
    main()

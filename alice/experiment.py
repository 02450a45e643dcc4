"""The whole chain for one dataset and model pair, stage by stage, in one run folder.

Each stage is the same function its script calls, so a rerun resumes every stage and the run
folder holds the same JSONL and manifests a researcher gets running the scripts by hand.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .cli import resolve_role
from .records import atomic_write_json
from .stages import LazyBackend, cot_generate_filter, evaluate, slug


def run_folder(args: argparse.Namespace) -> Path:
    if args.run_dir:
        return Path(args.run_dir)
    name = "-".join(slug(str(x)) for x in (args.data, args.model, args.teacher or "", args.student or "") if x)
    return Path("runs") / name


def stage_args(args: argparse.Namespace, **changes) -> argparse.Namespace:
    merged = {**vars(args), "answer_type": args.answer_type, "output": None, **changes}
    return argparse.Namespace(**merged)


def run_experiment(args: argparse.Namespace) -> dict:
    started = time.time()
    folder = run_folder(args)
    folder.mkdir(parents=True, exist_ok=True)
    limit = args.limit or None
    eval_limit = args.eval_limit or None
    teacher_ref = resolve_role(args, "teacher")
    teacher = LazyBackend(args, teacher_ref)  # one engine serves every teacher stage
    timings = {}
    try:
        t = time.time()
        cot = cot_generate_filter(stage_args(args, limit=limit, temperature=0.0,
                                             output=str(folder / "cot.jsonl")), teacher.get())
        timings["cot_generate_filter_s"] = round(time.time() - t, 1)
        t = time.time()
        teacher_eval = evaluate(stage_args(args, limit=eval_limit, split=None, predictions=None,
                                           student=None, output=str(folder / "eval-teacher.jsonl")),
                                teacher.get())
        timings["eval_teacher_s"] = round(time.time() - t, 1)
    finally:
        teacher.close()
    result = {"run_dir": str(folder), "cot": cot, "teacher_eval": {k: teacher_eval[k] for k in
              ("n", "accuracy", "accuracy_ci95", "parse_rate")}, "timings": timings,
              "wall_s": round(time.time() - started, 1)}
    atomic_write_json(folder / "experiment.json", result)
    print(f"done in {result['wall_s']} s -> {folder}")
    return result

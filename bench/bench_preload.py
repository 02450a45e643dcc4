"""What a training step costs before and after its work: started as a new Python process, or forked from
a process that has already imported its modules (``experiment.py --preload-trainings``), side by side.

Each mode runs the same trainings one after another through the run's executor (alice/steps.py), each into
its own folder; per step: the executor's wall time (process start to exit), the script's own wall time from
its manifest (after its imports), and inside it loading, training and saving. What a mode saves is the
difference in wall time per step; the first forked step also waits for the preloading server's imports.

  python bench/bench_preload.py                                   # the small model on this machine's CPU
  python bench/bench_preload.py --gpus 0 --train-args "--data gsm_symbolic:held_out=17,train=30,test=10 \\
      --student MODEL --train-file alice.jsonl --per-device-batch-size 16 --padding-free \\
      --no-gradient-checkpointing --optim adamw_torch_fused"    # the fair test's 1.5B training
  python bench/bench_preload.py merge out/preload/preload.json    # adds P8_training_start_s to results.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

from bench_common import REPO, add_results, log

sys.path.insert(0, str(REPO))

from alice.preload import StagePreloader
from alice.steps import Executor, Step, stage_config

SMALL = ("--data {data} --answer-type number --teacher smollm2 --ground-truth --pool teacher --max-steps 4 "
         "--total-batch-size 2 --per-device-batch-size 2 --warmup-steps 0 --no-gradient-checkpointing "
         "--max-length 128")


def small_task(folder: Path) -> Path:
    path = folder / "sums.jsonl"
    rows = [{"id": f"s{i:03d}", "question": f"What is {i} plus {i + 3}?", "answer": str(2 * i + 3)} for i in range(24)]
    rows.append({"id": "t0", "question": "What is 1 plus 1?", "answer": "2", "split": "test"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def device_name(gpu: str) -> str:
    """The card's name from nvidia-smi (this process leaves CUDA alone), or "cpu"."""
    if gpu == "none":
        return "cpu"
    found = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", gpu],
                           check=False, capture_output=True, text=True)
    return found.stdout.strip() or f"GPU {gpu}"


def run_mode(mode: str, train_args: list[str], n: int, gpus: list[str], out: Path) -> dict:
    steps = [Step(f"train {mode}-{i}", "train", stage_config("train", [*train_args, "--output-dir",
                                                                      str(out / f"{mode}-{i}"), "--overwrite"]),
                  gpu=0.5 if gpus else 0.0) for i in range(n)]
    for before, step in pairwise(steps):  # one after another, as in turn on one card
        step.needs = (before.name,)
    preloader = StagePreloader() if mode == "preloaded" else None
    began = time.time()
    status = Executor(steps, gpus=gpus, log_dir=out / "logs", preloader=preloader, poll_s=0.1).make([steps[-1].name])
    wall = round(time.time() - began, 1)
    runs = []
    for step in steps:
        manifest = json.loads((Path(step.config.output_dir) / "manifest.json").read_text())
        timings = manifest["timings"]
        runs.append({"step_wall_s": status[step.name]["wall_s"], "status": status[step.name]["status"],
                     "script_wall_s": timings["wall_s"], "load_s": timings.get("load_s"),
                     "train_s": timings.get("train_s"), "save_s": timings.get("save_s"),
                     "before_script_s": round(status[step.name]["wall_s"] - timings["wall_s"], 1)})
    later = runs[1:] or runs
    return {"runs": runs, "wall_s": wall,
            "step_wall_s_later": round(statistics.mean(r["step_wall_s"] for r in later), 1),
            "before_script_s_later": round(statistics.mean(r["before_script_s"] for r in later), 1)}


def summarize(report: dict) -> dict:
    own, forked = report["modes"]["own_process"], report["modes"]["preloaded"]
    return {"P8_training_start_s": {
        "own_process_step_wall_s": own["step_wall_s_later"], "preloaded_step_wall_s": forked["step_wall_s_later"],
        "saved_per_training_s": round(own["step_wall_s_later"] - forked["step_wall_s_later"], 1),
        "before_script_s": {"own_process": own["before_script_s_later"],
                            "preloaded": forked["before_script_s_later"]},
        "first_preloaded_step_wall_s": forked["runs"][0]["step_wall_s"],
        "trainings_per_mode": len(own["runs"]),
        "note": "mean over each mode's steps after its first; the first forked step also waits for the server's "
                "imports"}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("phase", nargs="?", default="run", choices=["run", "merge"])
    p.add_argument("files", nargs="*")
    p.add_argument("--train-args", default=None, help="train.py flags (default: the small model on a tiny task)")
    p.add_argument("--trainings", type=int, default=3, help="trainings per mode, one after another")
    p.add_argument("--gpus", default="none", help="a GPU id for the steps, or none")
    p.add_argument("--out", default="out/preload")
    args = p.parse_args()
    if args.phase == "merge":
        report = json.loads(Path(args.files[0]).read_text())
        add_results(summarize(report), report["meta"])
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_args = shlex.split(args.train_args or SMALL.format(data=small_task(out)))
    gpus = [] if args.gpus == "none" else [args.gpus]
    report = {"meta": {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                       "command": "python bench/bench_preload.py " + shlex.join(sys.argv[1:]),
                       "device": device_name(args.gpus)},
              "modes": {}}
    for mode in ("own_process", "preloaded"):
        log(f"{mode}: {args.trainings} trainings")
        report["modes"][mode] = run_mode(mode, train_args, args.trainings, gpus, out)
    (out / "preload.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(summarize(report), indent=2))


if __name__ == "__main__":
    main()

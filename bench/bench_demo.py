"""The CPU demo's wall time as a newcomer meets it: ``python experiment.py`` with no arguments in a
fresh clone of this checkout (git clone into a temporary folder; the installed .venv and the model
cache under ~/.cache are reused, as after ``bash install.sh``), timed from the command's start to its
exit, with each step's time from the run's experiment.json.

  python bench/bench_demo.py                       # clone HEAD, run the demo, print the breakdown
  python bench/bench_demo.py --ref HEAD~3          # the demo as an earlier commit had it
  python bench/bench_demo.py --record              # also add demo_wall_s to bench/results.json

The machine's load average is printed before and after: another process on the same cores slows
every step (torch's threads then wait for each other), so compare runs made back to back.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import REPO, add_results, log


def run_demo(ref: str, keep: bool, extra: list[str]) -> dict:
    venv = (REPO / ".venv").resolve()
    if not (venv / "bin" / "python").exists():
        sys.exit(f"no virtual environment at {REPO / '.venv'}: run bash install.sh first")
    folder = Path(tempfile.mkdtemp(prefix="alice-demo-"))
    clone = folder / "alice"
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", ref], check=True,
                                capture_output=True, text=True).stdout.strip()
        subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(REPO), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", commit], check=True)
        (clone / ".venv").symlink_to(venv)
        load_before = os.getloadavg()
        log(f"demo at {commit} in {clone} (load average {load_before[0]:.2f}, {os.cpu_count()} cores)")
        started, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        code = subprocess.run([str(clone / ".venv" / "bin" / "python"), "experiment.py", *extra], cwd=clone,
                              check=False).returncode
        wall = round(time.perf_counter() - started, 1)
        done = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_s = round(done.ru_utime + done.ru_stime - cpu.ru_utime - cpu.ru_stime, 1)
        load_after = os.getloadavg()
        infos = list((clone / "runs").glob("*/experiment.json"))
        info = json.loads(infos[0].read_text()) if len(infos) == 1 else {}
        return {"commit": commit, "exit_code": code, "wall_s": wall, "cpu_s": cpu_s,
                "experiment_wall_s": info.get("wall_s"),
                "status": info.get("status"), "failed": info.get("failed"), "steps_s": info.get("timings_s", {}),
                "engine_starts": len(info.get("engine_starts", [])), "cores": os.cpu_count(),
                "load_average_before": round(load_before[0], 2), "load_average_after": round(load_after[0], 2)}
    finally:
        if keep:
            log(f"kept {clone}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def print_breakdown(result: dict) -> None:
    steps, wall = result["steps_s"], result["wall_s"]
    rest = wall - sum(steps.values())
    print(f"\ndemo at {result['commit']}: {result['wall_s']} s wall (exit code {result['exit_code']}, "
          f"status {result['status']}), {result['cpu_s']} s CPU, {result['cores']} cores, load average {result['load_average_before']} "
          f"before, {result['load_average_after']} after")
    print(f"{'step':<28} {'s':>7} {'share':>6}")
    for name, seconds in steps.items():
        print(f"{name:<28} {seconds:>7.1f} {seconds / wall:>6.0%}")
    print(f"{'(start-up, report, exit)':<28} {rest:>7.1f} {rest / wall:>6.0%}")
    if result["failed"]:
        print("failed: " + "; ".join(f"{k}: {v}" for k, v in result["failed"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", default="HEAD", help="the commit to clone and run (default: HEAD)")
    parser.add_argument("--keep", action="store_true", help="keep the clone and its run folder")
    parser.add_argument("--record", action="store_true", help="add demo_wall_s to bench/results.json")
    parser.add_argument("--json", help="also write the result to this file")
    parser.add_argument("extra", nargs="*", help="flags for experiment.py after --, e.g. -- --backend vllm")
    args = parser.parse_args()
    result = run_demo(args.ref, args.keep, args.extra)
    print_breakdown(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    if args.record and result["exit_code"] == 0:
        add_results({"demo_wall_s": {"value": result["wall_s"], "goal_s": 300, "cpu_s": result["cpu_s"],
                                     "commit": result["commit"], "steps_s": result["steps_s"],
                                     "load_average_before": result["load_average_before"],
                                     "load_average_after": result["load_average_after"]}},
                    {"card": f"{result['cores']}-core CPU ({platform.processor() or platform.machine()}), no GPU",
                     "date": datetime.date.today().isoformat(), "command": "python bench/bench_demo.py --record"})
    sys.exit(result["exit_code"])


if __name__ == "__main__":
    main()

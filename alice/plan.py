"""A run as a table of steps, and one executor for it.

Each ``Step`` is either one stage script's command line (run as a subprocess from the repo root,
so the step's manifest records the exact command that reruns it by hand) or a short in-process
action (a check, a summary). A step names the steps it needs and the share of one GPU's memory it
takes. ``run_steps`` works like ``make``: it runs only the steps that some target still needs
(a step is done when its outputs are complete, so a rerun resumes and finished steps cost
nothing), starts every step whose needs are met as soon as a GPU has room for it (GPUs are
shared: several trainings and engines on one card), and stops starting steps that need a failed
one. Every step's output goes to ``<log_dir>/<step>.log``; the terminal gets one line per start and
finish.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import AliceError
from .records import atomic_write_json
from .tasks import REPO_ROOT


@dataclass
class Step:
    name: str
    command: list[str] | None = None  # argv of a stage script, or None for an in-process ``action``
    needs: tuple[str, ...] = ()
    gpu: float = 0.0  # share of one GPU's memory (0: CPU only)
    done: Callable[[], bool] = lambda: False  # outputs complete: nothing to do
    action: Callable[[], object] | None = None
    after: Callable[[], None] | None = None  # runs once the step succeeded (e.g. free disk)
    env: dict[str, str] = field(default_factory=dict)
    priority: int = 5  # lower starts first among ready steps; ties keep table order


def slug_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def needed_steps(steps: Sequence[Step], targets: Sequence[str]) -> list[Step]:
    """The steps that are not done and that a target needs (transitively), in table order."""
    by_name = {s.name: s for s in steps}
    unknown = [n for s in steps for n in s.needs if n not in by_name] + [t for t in targets if t not in by_name]
    if unknown:
        raise AliceError(f"the step table names unknown steps: {', '.join(sorted(set(unknown)))}")
    needed: set[str] = set()

    def visit(name: str) -> None:
        if name in needed:
            return
        step = by_name[name]
        if step.done():
            return
        needed.add(name)
        for need in step.needs:
            visit(need)

    for target in targets:
        visit(target)
    return [s for s in steps if s.name in needed]


class Executor:
    def __init__(self, steps: Sequence[Step], gpus: Sequence[str], log_dir: Path, capacity: float = 1.0,
                 cpu_slots: int = 2, poll_s: float = 2.0) -> None:
        self.steps = list(steps)
        self.gpus = list(gpus)
        self.free = {g: capacity for g in self.gpus}
        self.capacity = capacity
        self.cpu_slots = cpu_slots
        self.log_dir = log_dir
        self.poll_s = poll_s
        self.status: dict[str, dict] = {}
        self.status_total: list[str] = []  # the steps this run has to do
        self.running: dict[str, tuple[subprocess.Popen, str | None, float]] = {}
        self.started = time.time()
        self.status_path: Path | None = None
        self.earlier_runs: list[dict] = []

    def log(self, text: str) -> None:
        elapsed = time.time() - self.started
        print(f"[{elapsed // 60:3.0f}:{elapsed % 60:04.1f}] {text}", flush=True)

    def ready(self, step: Step, finished: set[str]) -> bool:
        return all(n in finished for n in step.needs)

    def place(self, step: Step) -> str | None | bool:
        """The GPU to run ``step`` on (None: a CPU step), or False when none has room now."""
        if step.gpu <= 0:
            cpu_running = sum(1 for _, gpu, _ in self.running.values() if gpu is None)
            return None if cpu_running < self.cpu_slots else False
        if not self.gpus:
            raise AliceError(f"step {step.name} needs a GPU and none was given (--gpus)")
        if step.gpu > self.capacity:
            raise AliceError(f"step {step.name} takes {step.gpu} of a GPU; the capacity is {self.capacity}")
        best = max(self.gpus, key=lambda g: self.free[g])  # the emptiest card spreads the load
        return best if self.free[best] + 1e-9 >= step.gpu else False

    def start(self, step: Step, gpu: str | None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{slug_name(step.name)}.log"
        env = {**os.environ, **step.env, "PYTHONUNBUFFERED": "1"}
        # One card per step: a process sees only the GPU it was given.
        env["CUDA_VISIBLE_DEVICES"] = gpu if gpu is not None else ""
        with open(log_path, "a") as log:
            log.write(f"$ {' '.join(step.command)}\n")
            log.flush()
            process = subprocess.Popen(step.command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                       env=env, start_new_session=True)
        if gpu is not None:
            self.free[gpu] -= step.gpu
        self.running[step.name] = (process, gpu, time.time())
        where = f"GPU {gpu}, {step.gpu:.2f}" if gpu is not None else "CPU"
        self.log(f"start  {step.name} ({where}) -> {log_path}")

    def finish(self, step: Step, returncode: int) -> bool:
        _, gpu, began = self.running.pop(step.name)
        if gpu is not None:
            self.free[gpu] += step.gpu
        wall = round(time.time() - began, 1)
        ok = returncode == 0 and step.done()
        why = "" if ok else (f"exit code {returncode}" if returncode else "exited 0 but its outputs are incomplete")
        self.record(step, ok, wall, why, gpu)
        if not ok:
            tail = (self.log_dir / f"{slug_name(step.name)}.log").read_text(errors="replace").splitlines()[-15:]
            print("\n".join("    | " + line for line in tail), flush=True)
        return ok

    def record(self, step: Step, ok: bool, wall: float, why: str, gpu: str | None = None) -> None:
        if ok and step.after is not None:
            step.after()
        self.status[step.name] = {"status": "done" if ok else "failed", "wall_s": wall, "error": why or None,
                                  "gpu": gpu, "gpu_share": step.gpu,
                                  "began_s": round(time.time() - wall - self.started, 1),
                                  "command": " ".join(step.command) if step.command else None}
        self.write_status()  # after every step: a run killed midway still says what it did
        done = sum(1 for s in self.status.values() if s["status"] == "done")
        self.log(f"{'done  ' if ok else 'FAILED'} {step.name} in {wall} s{'' if ok else ': ' + why} "
                 f"({done} done of {len(self.status_total)})")

    def run(self, targets: Sequence[str]) -> dict[str, dict]:
        todo = needed_steps(self.steps, targets)
        self.status_total = [s.name for s in todo]
        names = set(self.status_total)
        # Needs outside the table of work are already complete.
        finished = {s.name for s in self.steps if s.name not in names}
        failed: set[str] = set()
        pending = sorted(todo, key=lambda s: s.priority)  # stable: table order within a priority
        self.log(f"{len(todo)} steps to run ({len(self.steps) - len(todo)} of {len(self.steps)} complete or not "
                 f"needed); GPUs: {', '.join(self.gpus) or 'none'}")
        try:
            while pending or self.running:
                for step in list(pending):
                    blocked = [n for n in step.needs if n in failed]
                    if blocked:
                        pending.remove(step)
                        failed.add(step.name)
                        self.status[step.name] = {"status": "skipped", "error": f"needs {', '.join(blocked)}"}
                        self.log(f"skip   {step.name}: needs {', '.join(blocked)}")
                        continue
                    if not self.ready(step, finished):
                        continue
                    if step.action is not None:  # quick in-process step
                        pending.remove(step)
                        began = time.time()
                        try:
                            step.action()
                            ok, why = True, ""
                        except AliceError as err:
                            ok, why = False, str(err)
                        except Exception as err:  # noqa: BLE001 - record, keep the other steps going
                            traceback.print_exc()
                            ok, why = False, f"{type(err).__name__}: {err}"
                        self.record(step, ok, round(time.time() - began, 1), why)
                        (finished if ok else failed).add(step.name)
                        continue
                    gpu = self.place(step)
                    if gpu is False:
                        continue
                    pending.remove(step)
                    self.start(step, gpu)
                for name, (process, _, _) in list(self.running.items()):
                    code = process.poll()
                    if code is not None:
                        step = next(s for s in self.steps if s.name == name)
                        (finished if self.finish(step, code) else failed).add(name)
                if self.running:
                    time.sleep(self.poll_s)
                elif pending and not any(self.ready(s, finished) for s in pending):
                    if any(n in failed for step in pending for n in step.needs):
                        continue  # the next pass marks the steps behind a failure as skipped
                    # Nothing runs and nothing can start: a need is neither done nor pending.
                    for step in pending:
                        self.status[step.name] = {"status": "skipped", "error": "needs steps that did not run"}
                    break
        finally:
            self.stop_all()
        return self.status

    def write_status(self) -> None:
        if self.status_path is None:
            return
        atomic_write_json(self.status_path, {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)), "steps": self.status,
            "wall_s": round(time.time() - self.started, 1), "earlier_runs": self.earlier_runs})

    def stop_all(self) -> None:
        for name, (process, _, _) in list(self.running.items()):
            if process.poll() is None:
                self.log(f"stopping {name}")
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.time() + 30
        for process, _, _ in self.running.values():
            try:
                process.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.running.clear()


def run_steps(steps: Sequence[Step], targets: Sequence[str], gpus: Sequence[str], log_dir: str | Path,
              capacity: float = 1.0, cpu_slots: int = 2, status_path: str | Path | None = None,
              dry_run: bool = False) -> dict[str, dict]:
    """Run what ``targets`` still need (see the module docstring); returns each step's status."""
    log_dir = Path(log_dir)
    if dry_run:
        for step in needed_steps(steps, targets):
            what = " ".join(step.command) if step.command else "(in-process)"
            place = f"gpu {step.gpu:.2f}" if step.gpu else "cpu"
            print(f"{step.name}  [{place}; needs {', '.join(step.needs) or '-'}]\n    {what}")
        return {}
    executor = Executor(steps, gpus, log_dir, capacity=capacity, cpu_slots=cpu_slots)
    if status_path:
        executor.status_path = Path(status_path)
        executor.earlier_runs = earlier_runs(executor.status_path)
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: children are stopped
    try:
        status = executor.run(targets)
    finally:
        signal.signal(signal.SIGTERM, previous)
        executor.write_status()
    return status


def earlier_runs(status_path: Path) -> list[dict]:
    """The runs an earlier status file records (a resumed run keeps them: its steps and wall times are
    part of the whole run's cost)."""
    if not status_path.is_file():
        return []
    try:
        earlier = json.loads(status_path.read_text())
    except ValueError:
        return []
    runs = earlier.pop("earlier_runs", [])
    return [*runs, earlier] if earlier.get("steps") else runs

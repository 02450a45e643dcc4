"""A run as a table of steps, and the one executor that goes through it (experiment.py, cascade.py).

A ``Step`` is one of three kinds:
- a stage: its script's name (``"train"`` for train.py) and that script's config (``TrainConfig``, ...).
  With ``run`` (the stage function) it runs in-process, called with the config; without, as a
  subprocess from the repo root whose command is ``python <script>.py <to_argv(config)>``: the
  command its manifest records to rerun it by hand. A stage's command is never written by hand.
- an action: a short in-process function that is not a stage (a check, a merge, a summary).
- a helper: the argv of a command that is not a stage script (``python -m alice.stages.evaluate LISTING``); a
  stage script is refused there.
A step names the steps it needs, the share of one GPU's memory it takes (a subprocess), when it is
``done`` (its outputs are complete: nothing to do), what runs ``after`` it succeeded, extra ``env``
and a ``priority``.

The ``Executor`` goes through a table in one of two ways:
- ``run(step)``, one step after another in the caller's order (experiment.py): "== [3 of 18] name"
  with the overall ETA; a step whose needs failed is skipped, a failure is recorded and the others go
  on. ``call(step)`` runs one step with errors propagating (the cascade's stages).
- ``make(targets)``, like make (the fair test): only the steps some target still needs and that are
  not done, each started as soon as its needs are met and a GPU has room for its share (several
  trainings and engines share one card; among ready steps, the one more steps wait for first), nothing
  that needs a failed step. A subprocess's output goes to ``<log_dir>/<step>.log``, the terminal gets
  one line per start and finish, and the status file (``steps.json``) is written after every step,
  keeping the runs a resumed run follows. A step with ``starts_after`` starts once those needs are
  done, where its card leaves room for the others yet to start (as many at once as without it), and
  waits for them itself; it is stopped if one of them fails.
Either way each stage resumes by itself (a finished one costs a manifest check), the executor keeps
every step's time, failure and result, and ``dry_run`` prints each step's command and full settings
instead of running it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import parse, settings_dict, to_argv
from .errors import AliceError
from .records import atomic_write_json
from .tasks import REPO_ROOT

if TYPE_CHECKING:
    from .preload import StagePreloader

# Each stage script (<name>.py at the top of the checkout) and the config it parses.
STAGES = {"cot_generate_filter": ("alice.stages.cot_generate_filter", "CotConfig"),
          "train": ("alice.stages.train", "TrainConfig"),
          "uncertainty": ("alice.stages.uncertainty", "UncertaintyConfig"),
          "student_generate": ("alice.stages.student_generate", "StudentGenerateConfig"),
          "w2s_labels": ("alice.stages.w2s_labels", "W2SLabelsConfig"),
          "eval": ("alice.stages.evaluate", "EvalConfig"),
          "cascade": ("alice.stages.cascade", "CascadeConfig"),
          "experiment": ("alice.stages.experiment", "ExperimentConfig")}


def stage_config(script: str, argv: Sequence[object]) -> Any:
    """The config ``<script>.py`` makes of the flags ``argv`` (as its own parser reads them)."""
    module, name = STAGES[script]
    argv = [str(a) for a in argv]
    try:
        return parse(getattr(import_module(module), name), argv)
    except SystemExit:
        raise AliceError(f"{script}.py {shlex.join(argv)}: not settings that script takes (its error above)") from None


@dataclass
class Step:
    name: str
    script: str | None = None  # a stage: its script's name (train -> train.py)
    config: Any = None  # a stage: that script's config
    run: Callable[[Any], object] | None = None  # in-process: the stage function (else a subprocess)
    needs: tuple[str, ...] = ()
    _: KW_ONLY
    action: Callable[[], object] | None = None  # not a stage: an in-process check, merge or summary
    helper: list[str] | None = None  # not a stage: the argv of another command (an evaluation batch)
    gpu: float = 0.0  # a subprocess's share of one GPU's memory (0: CPU only)
    done: Callable[[], bool] | None = None  # outputs complete: nothing to do (None: always run)
    after: Callable[[], None] | None = None  # runs once the step succeeded (e.g. free disk)
    env: dict[str, str] = field(default_factory=dict)  # a subprocess's extra environment
    priority: int = 5  # make: lower starts first among ready steps; ties: more steps behind it, then table order
    plan: Callable[[Any], object] | None = None  # a dry run's stand-in (the cascade prints its own steps)
    beside: bool = False  # may run in a second process beside the steps after it (experiment.py)
    # make: a subprocess that fails starts again this many times (a GPU step can fail for memory that
    # other processes held at that moment; each stage resumes its own outputs)
    retries: int = 0
    # make: the needs that must be done before it starts (None: all of them); it waits for the others itself
    # (an evaluation batch evaluates each model as its training ends) and is stopped if one of them fails
    starts_after: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.needs = tuple(self.needs)
        kinds = [self.config is not None, self.action is not None, self.helper is not None]
        if sum(kinds) != 1 or (self.script is None) == (self.config is not None):
            raise ValueError(f"step {self.name}: give a stage (script and config), an action or a helper")
        if self.script is not None and self.script not in STAGES:
            raise ValueError(f"step {self.name}: {self.script}.py is not a stage script ({', '.join(STAGES)})")
        if self.helper is not None:
            self.helper = [str(a) for a in self.helper]
            if Path(self.helper[1]).stem in STAGES and (REPO_ROOT / self.helper[1]).parent == REPO_ROOT:
                raise ValueError(f"step {self.name}: {self.helper[1]} is a stage script: give its config")

    @property
    def in_process(self) -> bool:
        return self.run is not None or self.action is not None

    def argv(self) -> list[str]:
        """The subprocess's command: ``[python, <script>.py, *to_argv(config)]`` for a stage."""
        if self.config is not None:
            return [sys.executable, f"{self.script}.py", *to_argv(self.config)]
        if self.helper is not None:
            return list(self.helper)
        raise ValueError(f"step {self.name}: an action has no command")

    def command(self) -> str:
        """The command line the step runs, or (in-process) the one that reruns it by hand."""
        if self.action is not None:
            return "(in-process)"
        argv = self.argv()
        return shlex.join(["python", *argv[1:]] if self.run is not None else argv)


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
        if step.done is not None and step.done():
            return
        needed.add(name)
        for need in step.needs:
            visit(need)

    for target in targets:
        visit(target)
    return [s for s in steps if s.name in needed]


def reordered(steps: Sequence[Step], order: Sequence[str]) -> list[Step]:
    """``steps`` with the steps named in ``order`` in that order, in the places they held among the others."""
    out = list(steps)
    position = {step.name: i for i, step in enumerate(out)}
    moved = [out[position[name]] for name in order]
    for slot, step in zip(sorted(position[name] for name in order), moved):
        out[slot] = step
    return out


def steps_waiting_for(steps: Sequence[Step]) -> dict[str, int]:
    """How many of ``steps`` that run as processes need each step, directly or through others."""
    needed_by: dict[str, list[str]] = {s.name: [] for s in steps}
    for step in steps:
        for need in step.needs:
            if need in needed_by:
                needed_by[need].append(step.name)
    by_name = {s.name: s for s in steps}
    behind: dict[str, set[str]] = {}

    def after(name: str) -> set[str]:
        if name not in behind:
            behind[name] = set()  # a cycle, were there one, ends here
            for later in needed_by[name]:
                behind[name] |= {later} | after(later)
        return behind[name]

    return {s.name: sum(not by_name[n].in_process for n in after(s.name)) for s in steps}


class Executor:
    """Runs a table's steps (see the module docstring): ``run``/``call`` one by one, ``make`` what targets
    need; ``steps``, ``gpus``, ``log_dir``, ``capacity`` (of one GPU), ``cpu_slots`` and ``status_path``
    are for ``make`` and subprocess steps."""

    def __init__(self, steps: Sequence[Step] = (), *, gpus: Sequence[str] = (), log_dir: str | Path | None = None,
                 capacity: float = 1.0, cpu_slots: int = 2, poll_s: float = 2.0,
                 status_path: str | Path | None = None, dry_run: bool = False, prefix: str = "",
                 total: int | None = None, preloader: StagePreloader | None = None) -> None:
        self.steps = list(steps)
        self.preloader = preloader  # training steps forked from it instead of started as new processes
        self.forked: set[str] = set()
        self.by_name = {s.name: s for s in self.steps}
        self.gpus = list(gpus)
        self.capacity = capacity
        self.free = {g: capacity for g in self.gpus}
        self.cpu_slots = cpu_slots
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.poll_s = poll_s
        self.status_path = Path(status_path) if status_path is not None else None
        self.dry_run = dry_run
        self.prefix = prefix
        self.total = total  # steps the run has, for "step i of n" and the overall ETA
        self.count = 0
        self.started = time.time()
        self.timings: dict[str, float] = {}
        self.failed: dict[str, str] = {}
        self.results: dict[str, object] = {}
        self.planned: list[dict] = []  # a dry run's steps: script, argv and settings
        self.status: dict[str, dict] = {}  # what the status file records
        self.earlier_runs: list[dict] = []
        self.running: dict[str, tuple[subprocess.Popen, str | None, float]] = {}
        self.retried: dict[str, int] = {}  # failed tries started again (Step.retries)
        self.retried_wall: dict[str, float] = {}

    # ------------------------------------------------------------------ one step

    def call(self, step: Step) -> object:
        """Run ``step`` now and return its result (errors propagate), or in a dry run print it and run its plan."""
        if self.dry_run:
            return self.show(step)
        if step.run is not None:
            return step.run(step.config)
        if step.action is not None:
            return step.action()
        gpu = self.place(step)
        if gpu is False:
            raise AliceError(f"step {step.name}: no GPU has room for {step.gpu} of its memory now")
        process = self.start(step, gpu)
        ok, why, _, _ = self.reap(step, process.wait())
        if not ok:
            raise AliceError(f"step {step.name}: {why}")
        return None

    def show(self, step: Step) -> object:
        """A dry run's view of ``step``: its command and full settings; then its plan, if any."""
        if step.config is not None:
            settings = settings_dict(step.config)
            self.planned.append({"step": step.name, "script": f"{step.script}.py", "argv": to_argv(step.config),
                                 "settings": settings})
        print(f"   {step.command()}")
        if step.config is not None:
            print(f"   settings: {json.dumps(settings, default=str, sort_keys=True)}", flush=True)
        return step.plan(step.config) if step.plan else None

    def attempt(self, step: Step) -> tuple[bool, str, object]:
        """``call(step)`` with its failure caught: (succeeded, why not, result)."""
        try:
            return True, "", self.call(step)
        except AliceError as err:
            return False, str(err), None
        except Exception as err:  # noqa: BLE001 - record, keep the other steps going, report at the end
            traceback.print_exc()
            return False, f"{type(err).__name__}: {err}", None

    def progress(self) -> str:
        """"3 of 18, 2m10s elapsed, about 7m left": the ETA assumes the steps to come take, on average, as
        long as those so far (finished steps that resumed cost nothing, so it errs on the short side)."""
        elapsed = time.time() - self.started
        text = f"{self.count} of {self.total}" if self.total else f"{self.count}"
        if self.dry_run:
            return text
        text += f", {_duration(elapsed)} elapsed"
        done = self.count - 1
        if self.total and done > 0:
            text += f", about {_duration(elapsed / done * (self.total - done))} left"
        return text

    def run(self, step: Step) -> object:
        """Run ``step`` unless a step it needs failed or it is done; a failure is recorded, not raised, so one
        empty filter result does not lose the other methods (the report lists what is missing)."""
        self.count += 1
        label = f"== {self.prefix}[{self.progress()}] {step.name}"
        blocked = [n for n in step.needs if n in self.failed]
        if blocked:
            self.failed[step.name] = f"needs {', '.join(blocked)}"
            self.status[step.name] = {"status": "skipped", "error": self.failed[step.name]}
            print(f"{label}: skipped ({self.failed[step.name]})", flush=True)
            return None
        if not self.dry_run and step.done is not None and step.done():
            print(f"{label}: finished earlier", flush=True)
            self.results[step.name] = None
            return None
        print(label, flush=True)
        began = time.time()
        ok, why, result = self.attempt(step)
        self.record(step, ok, round(time.time() - began, 1), why, result=result)
        if not ok:
            print(f"{label} failed: {why}", flush=True)
        return result

    def record(self, step: Step, ok: bool, wall: float, why: str, gpu: str | None = None,
               result: object = None) -> None:
        """A finished step: its after-hook, time, result or failure, and its line in the status file."""
        if ok and step.after is not None and not self.dry_run:
            step.after()
        self.timings[step.name] = wall
        if ok:
            self.results[step.name] = result
        else:
            self.failed[step.name] = why
        self.status[step.name] = {"status": "done" if ok else "failed", "wall_s": wall, "error": why or None,
                                  "gpu": gpu, "gpu_share": step.gpu,
                                  "began_s": round(time.time() - wall - self.started, 1),
                                  "command": None if step.action is not None else step.command()}
        if step.name in self.forked:
            self.status[step.name]["forked_from_preloaded"] = True  # its imports were done before it started
        if step.name in self.retried:
            self.status[step.name].update(retries=self.retried[step.name],
                                          earlier_tries_wall_s=self.retried_wall[step.name])
        self.write_status()  # after every step: a run killed midway still says what it did

    # ------------------------------------------------------------------ subprocesses

    def log(self, text: str) -> None:
        elapsed = time.time() - self.started
        print(f"[{elapsed // 60:3.0f}:{elapsed % 60:04.1f}] {text}", flush=True)

    def log_path(self, step: Step) -> Path | None:
        return self.log_dir / f"{slug_name(step.name)}.log" if self.log_dir is not None else None

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

    def room_beside(self, step: Step, gpu: str | None, waits_for: list[Step], holding: float = 0.0) -> bool:
        """A step that would start before some of its needs (``starts_after``) does only if those of them yet to
        start still find room beside it: it holds its share while it waits, and must not take the room one of
        them could start in now. Nor may it, with what other steps started so already hold while they wait
        (``holding``), lower how many of those the card could run at once (two evaluation batches waiting beside
        each other for their seeds' trainings would leave room for one training instead of two). While the card
        is full of running steps it may start in what is left: they end and give their room back (an evaluation
        batch beside two trainings, instead of after the last training of its seed has started)."""
        if gpu is None or any(w.gpu <= 0 for w in waits_for):
            cpu_running = sum(1 for _, g, _ in self.running.values() if g is None) + (gpu is None)
            if cpu_running >= self.cpu_slots:
                return False
        largest = max((w.gpu for w in waits_for if w.gpu > 0), default=0.0)
        if gpu is None or largest <= 0:
            return True
        if self.free[gpu] + 1e-9 >= largest and self.free[gpu] - step.gpu + 1e-9 < largest:
            return False  # one of them could start now, and would not beside it
        room = self.capacity - holding
        at_once = min(sum(1 for w in waits_for if w.gpu > 0), int((room + 1e-9) // largest))
        return int((room - step.gpu + 1e-9) // largest) >= at_once

    def start(self, step: Step, gpu: str | None) -> subprocess.Popen:
        argv = step.argv()
        env = {**os.environ, **step.env, "PYTHONUNBUFFERED": "1"}
        # One card per step: a process sees only the GPU it was given.
        env["CUDA_VISIBLE_DEVICES"] = gpu if gpu is not None else ""
        log_path = self.log_path(step)
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "a") as log:
                log.write(f"$ {shlex.join(argv)}\n")
        self.forked.discard(step.name)
        if self.preloader is not None and self.preloader.serves(step.script, step.config) and step.name not in self.retried:
            # forked from a process that imported its modules; a retry starts as its own process, in case the fork
            # was what failed
            process = self.preloader.start(argv, env, log_path, REPO_ROOT)
            self.forked.add(step.name)
        elif log_path is not None:
            with open(log_path, "a") as log:
                process = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
                                           start_new_session=True)
        else:
            process = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, start_new_session=True)
        if gpu is not None:
            self.free[gpu] -= step.gpu
        self.running[step.name] = (process, gpu, time.time())
        where = f"GPU {gpu}, {step.gpu:.2f}" if gpu is not None else "CPU"
        self.log(f"start  {step.name} ({where})" + (f" -> {log_path}" if log_path else ""))
        return process

    def reap(self, step: Step, returncode: int) -> tuple[bool, str, str | None, float]:
        """A subprocess that ended: (succeeded, why not, its GPU, its wall time); a failure shows its log's tail."""
        _, gpu, began = self.running.pop(step.name)
        if gpu is not None:
            self.free[gpu] += step.gpu
        wall = round(time.time() - began, 1)
        ok = returncode == 0 and (step.done is None or step.done())
        why = "" if ok else (f"exit code {returncode}" if returncode else "exited 0 but its outputs are incomplete")
        log_path = self.log_path(step)
        if not ok and log_path is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-15:]
            print("\n".join("    | " + line for line in tail), flush=True)
        return ok, why, gpu, wall

    def stop(self, name: str) -> float:
        """One running subprocess stopped (its process group), its GPU share given back; its wall time."""
        process, gpu, began = self.running.pop(name)
        end_groups([process])
        if gpu is not None:
            self.free[gpu] += self.by_name[name].gpu
        self.log(f"stopped {name}")
        return round(time.time() - began, 1)

    def stop_all(self) -> None:
        for name, (process, _, _) in self.running.items():
            if process.poll() is None:
                self.log(f"stopping {name}")
        end_groups([process for process, _, _ in self.running.values()])
        self.running.clear()

    # ------------------------------------------------------------------ what targets need

    def make(self, targets: Sequence[str]) -> dict[str, dict]:
        """Run what ``targets`` still need (see the module docstring); returns each step's status. A dry run
        prints each step with its place, needs, command and settings."""
        todo = needed_steps(self.steps, targets)
        if self.dry_run:
            for step in todo:
                place = f"gpu {step.gpu:.2f}" if step.gpu else "cpu"
                early = f"; starts after {', '.join(step.starts_after) or '-'}" if step.starts_after is not None else ""
                print(f"{step.name}  [{place}; needs {', '.join(step.needs) or '-'}{early}]\n    {step.command()}")
                if step.config is not None:
                    self.planned.append({"step": step.name, "script": f"{step.script}.py",
                                         "argv": to_argv(step.config), "settings": settings_dict(step.config)})
                    print(f"    settings: {json.dumps(self.planned[-1]['settings'], default=str, sort_keys=True)}")
            return {}
        if self.status_path is not None:
            self.earlier_runs = earlier_runs(self.status_path)
        previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: children are stopped
        try:
            self.schedule(todo)
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.write_status()
        return self.status

    def schedule(self, todo: list[Step]) -> None:
        self.total = len(todo)
        names = {s.name for s in todo}
        # Needs outside the table of work are already complete.
        finished = {s.name for s in self.steps if s.name not in names}
        failed: set[str] = set()
        waiting = steps_waiting_for(todo)
        # Among ready steps of one priority, the one more steps wait for starts first (the ceilings and teachers
        # that the gate, and so every arm's training, waits for, before leaves such as the noise floor's
        # evaluations); ties: table order.
        pending = sorted(todo, key=lambda s: (s.priority, -waiting[s.name]))  # stable

        def ready(step: Step) -> bool:
            return all(n in finished for n in (step.needs if step.starts_after is None else step.starts_after))

        def holding(gpu: str | None) -> float:
            """The share of ``gpu`` held by steps started before their needs, still waiting for one."""
            return sum(self.by_name[n].gpu for n, (_, g, _) in self.running.items()
                       if g == gpu and any(x not in finished for x in self.by_name[n].needs))

        def ended(step: Step, ok: bool, wall: float, why: str, gpu: str | None = None, result: object = None) -> None:
            self.record(step, ok, wall, why, gpu, result)
            (finished if ok else failed).add(step.name)
            done = sum(1 for s in self.status.values() if s["status"] == "done")
            self.log(f"{'done  ' if ok else 'FAILED'} {step.name} in {wall} s{'' if ok else ': ' + why} "
                     f"({done} done of {self.total})")

        self.log(f"{len(todo)} steps to run ({len(self.steps) - len(todo)} of {len(self.steps)} complete or not "
                 f"needed); GPUs: {', '.join(self.gpus) or 'none'}")
        try:
            while pending or self.running:
                for step in list(pending):
                    blocked = [n for n in step.needs if n in failed]
                    if blocked:
                        pending.remove(step)
                        failed.add(step.name)
                        self.failed[step.name] = f"needs {', '.join(blocked)}"
                        self.status[step.name] = {"status": "skipped", "error": self.failed[step.name]}
                        self.log(f"skip   {step.name}: {self.failed[step.name]}")
                        continue
                    if not ready(step):
                        continue
                    if step.in_process:  # runs here, before anything else starts
                        pending.remove(step)
                        began = time.time()
                        ok, why, result = self.attempt(step)
                        ended(step, ok, round(time.time() - began, 1), why, result=result)
                        continue
                    gpu = self.place(step)
                    if gpu is False:
                        continue
                    # What it would wait for that has yet to start needs room beside it (what runs has its own).
                    waits_for = [self.by_name[n] for n in step.needs if n not in finished and n not in self.running]
                    if waits_for and not self.room_beside(step, gpu, waits_for, holding(gpu)):
                        continue
                    pending.remove(step)
                    self.start(step, gpu)
                for name, (process, _, _) in list(self.running.items()):
                    code = process.poll()
                    if code is not None:
                        step = self.by_name[name]
                        ok, why, gpu, wall = self.reap(step, code)
                        if not ok and self.retried.get(name, 0) < step.retries:
                            self.retried[name] = self.retried.get(name, 0) + 1
                            self.retried_wall[name] = round(self.retried_wall.get(name, 0) + wall, 1)
                            self.log(f"retry  {name} after {wall} s: {why} (try {self.retried[name] + 1} of "
                                     f"{step.retries + 1})")
                            pending.insert(0, step)
                            continue
                        ended(step, ok, wall, why, gpu)
                for name in list(self.running):
                    step = self.by_name[name]
                    blocked = [n for n in step.needs if n in failed]
                    if blocked:  # started before this need was done, and the need failed: it would wait forever
                        ended(step, False, self.stop(name), f"needs {', '.join(blocked)}")
                if self.running:
                    time.sleep(self.poll_s)
                elif pending and not any(ready(s) for s in pending):
                    if any(n in failed for step in pending for n in step.needs):
                        continue  # the next pass marks the steps behind a failure as skipped
                    # Nothing runs and nothing can start: a need is neither done nor pending.
                    for step in pending:
                        self.failed[step.name] = "needs steps that did not run"
                        self.status[step.name] = {"status": "skipped", "error": self.failed[step.name]}
                    break
        finally:
            self.stop_all()

    def write_status(self) -> None:
        if self.status_path is None:
            return
        atomic_write_json(self.status_path, {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)), "steps": self.status,
            "wall_s": round(time.time() - self.started, 1), "earlier_runs": self.earlier_runs})


def end_groups(processes: list[subprocess.Popen], grace_s: float = 30) -> None:
    """Each subprocess's process group asked to end (SIGTERM), killed if it has not within ``grace_s``."""
    for process in processes:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + grace_s
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:  # a forked stage stopped before it had its own group
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)


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


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"

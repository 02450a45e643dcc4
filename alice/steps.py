"""A run as a table of steps, and the one executor that goes through it (experiment.py, cascade.py).

A step is (name, the script that runs it by hand, its stage config, the steps it needs, the function
that runs it). The executor runs the steps in order: a step whose needs failed is skipped, a failed
step is recorded and the others go on (``run``), or stops the run (``call``); each stage resumes by
itself, so a finished step costs a manifest check. ``--dry-run`` prints each step's command and full
config instead of running it.
"""

from __future__ import annotations

import json
import shlex
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .config import settings_dict, to_argv
from .errors import AliceError


@dataclass
class Step:
    name: str
    script: str  # the script that runs this step by hand (its manifest records the same command)
    config: Any  # the stage's config
    run: Callable[[Any], object]
    needs: tuple[str, ...] = ()
    plan: Callable[[Any], object] | None = None  # a dry run's stand-in (the cascade prints its own steps)
    beside: bool = False  # may run in a second process beside the steps after it (see Executor.run)

    def command(self) -> str:
        return shlex.join(["python", f"{self.script}.py", *to_argv(self.config)])


@dataclass
class Executor:
    dry_run: bool = False
    prefix: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    results: dict[str, object] = field(default_factory=dict)
    planned: list[dict] = field(default_factory=list)
    count: int = 0
    total: int | None = None  # steps the run has, for "step i of n" and the overall ETA
    started: float = field(default_factory=time.time)

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

    def call(self, step: Step) -> object:
        """Run ``step`` (errors propagate), or in a dry run print it and run its plan."""
        if not self.dry_run:
            return step.run(step.config)
        settings = settings_dict(step.config)
        self.planned.append({"step": step.name, "script": f"{step.script}.py", "argv": to_argv(step.config),
                             "settings": settings})
        print(f"   {step.command()}")
        print(f"   settings: {json.dumps(settings, default=str, sort_keys=True)}", flush=True)
        return step.plan(step.config) if step.plan else None

    def run(self, step: Step) -> object:
        """Run ``step`` unless a step it needs failed; a failure is recorded, not raised, so one empty
        filter result does not lose the other methods (the report lists what is missing)."""
        self.count += 1
        label = f"== {self.prefix}[{self.progress()}] {step.name}"
        blocked = [n for n in step.needs if n in self.failed]
        if blocked:
            self.failed[step.name] = f"needs {', '.join(blocked)}"
            print(f"{label}: skipped ({self.failed[step.name]})", flush=True)
            return None
        print(label, flush=True)
        started = time.time()
        try:
            result = self.call(step)
        except AliceError as err:
            self.failed[step.name] = str(err)
            print(f"{label} failed: {err}", flush=True)
            return None
        except Exception as err:  # noqa: BLE001 - keep the other methods going, report at the end
            self.failed[step.name] = f"{type(err).__name__}: {err}"
            traceback.print_exc()
            return None
        finally:
            self.timings[step.name] = round(time.time() - started, 1)
        self.results[step.name] = result
        return result


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"

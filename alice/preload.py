"""Stage scripts started from a process that has already imported what they import.

A training step spends tens of seconds importing torch, transformers, TRL, PEFT, datasets and accelerate
before its first step, and a packed run starts dozens of them. ``StagePreloader`` keeps one server process
(multiprocessing's forkserver) that imports those modules once (alice/preloaded.py), without touching CUDA;
each stage then runs in a fresh child forked from it: its own process, session, environment
(``CUDA_VISIBLE_DEVICES`` included), working directory and log, running ``<script>.py`` with its argv as
``python <script>.py ...`` would. The child is returned as a ``ForkedStage``, which the executor uses as it
uses a ``subprocess.Popen`` (``pid``, ``poll``, ``wait``; the child leads its own process group, so stopping
its group stops it).
"""

from __future__ import annotations

import multiprocessing
import os
import runpy
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .config import environment

# What a training imports (alice/preloaded.py: the trainer's submodules too, without bitsandbytes, which would
# initialize CUDA: a forked child cannot use CUDA again once its parent did). The NVML check keeps
# torch.cuda.is_available() (if anything calls it while importing) off the driver.
TRAINING_MODULES = ("alice.preloaded",)
SERVER_ENV = {"PYTORCH_NVML_BASED_CUDA_CHECK": "1"}


def run_stage(argv: list[str], env: dict[str, str], log_path: str | None, cwd: str) -> None:
    """In the forked child: become the stage script (argv = [python, script.py, *args])."""
    os.setsid()  # its own process group, as subprocess.Popen(start_new_session=True) gives
    os.environ.clear()
    os.environ.update(env)
    if log_path is not None:
        fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    os.chdir(cwd)
    torch = sys.modules.get("torch")
    if torch is not None and getattr(torch.cuda, "_is_in_bad_fork", lambda: False)():
        # Something the server imported initialized CUDA: this child could not use it. The same script,
        # started afresh in this process (same pid, group, log, environment and directory).
        print("(the preloading process had initialized CUDA: this stage starts as its own process)", flush=True)
        os.execv(argv[0], list(argv))
    sys.argv = list(argv[1:])
    # SystemExit(code) from the script becomes the child's exit code (multiprocessing's bootstrap).
    runpy.run_path(argv[1], run_name="__main__")


class ForkedStage:
    """A stage running in a forked child, with the part of ``subprocess.Popen`` the executor uses."""

    def __init__(self, process: multiprocessing.process.BaseProcess, argv: Sequence[str]) -> None:
        self.process = process
        self.args = list(argv)
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.process.exitcode
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self.process.join(timeout)
        if self.poll() is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self.returncode


class StagePreloader:
    """One forkserver per run that has imported ``modules``; ``start`` forks a stage from it."""

    def __init__(self, modules: Sequence[str] = TRAINING_MODULES) -> None:
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(list(modules))

    @staticmethod
    def serves(script: str | None, config: object) -> bool:
        """Whether a stage can start from this server: a training that does not quantize (QLoRA needs
        bitsandbytes, which the server leaves out: importing it initializes CUDA)."""
        return script == "train" and not getattr(config, "qlora", False)

    def warm(self) -> None:
        """Start the server now (it imports in the background), so the first stage does not wait for it."""
        from multiprocessing import forkserver

        with environment(SERVER_ENV):
            forkserver.ensure_running()

    def start(self, argv: Sequence[str], env: dict[str, str], log_path: Path | None, cwd: Path) -> ForkedStage:
        self.warm()
        process = self.context.Process(target=run_stage, args=(list(argv), dict(env),
                                                                str(log_path) if log_path else None, str(cwd)),
                                       daemon=False)
        process.start()
        return ForkedStage(process, argv)

"""Progress a person can read, in a terminal and in a log file alike.

The project's own progress (questions done of total, samples, tokens/s, ETA) goes to stderr: a tqdm bar
on a terminal, plain lines every ``ALICE_PROGRESS_INTERVAL`` seconds (default 30) and at the end when
stderr is a file or a pipe. The libraries' own bars (transformers' weight loading, datasets, hub
downloads) are off unless ``ALICE_LIBRARY_PROGRESS=1``; vLLM's are off in the backend (``use_tqdm``).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

INTERVAL_ENV = "ALICE_PROGRESS_INTERVAL"  # seconds between plain progress lines when stderr is not a terminal
LIBRARY_BARS_ENV = "ALICE_LIBRARY_PROGRESS"  # "1": show transformers/datasets/hub progress bars too


def quiet_library_bars() -> None:
    """Turn the libraries' progress bars off (unless ALICE_LIBRARY_PROGRESS=1): through their environment
    variables, read when they are imported, and their switches where they already are."""
    if os.environ.get(LIBRARY_BARS_ENV) == "1":
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class Progress:
    """Questions done of ``total`` (each with ``samples`` samples) and tokens generated; thread-safe."""

    def __init__(self, total: int, desc: str, samples: int = 1, stream: TextIO | None = None,
                 interval: float | None = None) -> None:
        self.total, self.desc, self.samples = total, desc, samples
        self.stream = stream or sys.stderr
        self.interval = float(os.environ.get(INTERVAL_ENV, "30")) if interval is None else interval
        self.done = self.tokens = 0
        self.started = self.last_line = time.time()
        self._lock = threading.Lock()
        self.bar = None
        if total and self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="q", file=self.stream, mininterval=1.0, dynamic_ncols=True)
        elif total:
            self._line()

    def rate(self) -> float:
        return self.tokens / max(1e-9, time.time() - self.started)

    def text(self) -> str:
        elapsed = time.time() - self.started
        eta = "?" if not self.done else _duration(elapsed / self.done * (self.total - self.done))
        # vLLM reports each finished request but its tokens only when the whole chunk returns.
        tokens = (f"{self.tokens} tokens ({self.rate():.1f} tokens/s)" if self.tokens or not self.done
                  else "tokens counted when the chunk ends")
        return (f"{self.desc}: {self.done}/{self.total} questions, {self.done * self.samples} samples, "
                f"{tokens}, elapsed {_duration(elapsed)}, ETA {eta}")

    def _line(self) -> None:
        print(self.text(), file=self.stream, flush=True)
        self.last_line = time.time()

    def update(self, questions: int = 0, tokens: int = 0) -> None:
        with self._lock:
            self.done = min(self.total, self.done + questions)
            self.tokens += tokens
            if self.bar is not None:
                self.bar.set_postfix_str(f"{self.done * self.samples} samples, {self.rate():.0f} tok/s", refresh=False)
                self.bar.update(questions)
            elif (questions or tokens) and time.time() - self.last_line >= self.interval and self.done < self.total:
                self._line()

    def close(self) -> None:
        with self._lock:
            if self.bar is not None:
                self.bar.close()
            elif self.total:
                self._line()

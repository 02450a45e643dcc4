"""experiment.py --report-to tensorboard|wandb: the run where researchers look, one logged run per step.

Each training step is a run named after the step ("train student-alice"); each evaluation logs
``eval/accuracy`` and ``eval/parse_rate`` as the run "eval <method>"; the report logs
``pgr/<method>`` and ``paired/<a>_vs_<b>`` (the paired difference a - b, with ``/ci_low``,
``/ci_high`` and ``/p``, Wilcoxon's p over the independent units) as the run "report". All of a run
folder's runs share one group, the folder's name.

- TensorBoard: ``<run-dir>/tensorboard/<step>/`` (``train-student-alice``, ``eval-alice``, ``report``);
  ``tensorboard --logdir <run-dir>/tensorboard`` shows every method's accuracy in one chart.
- W&B: one run per step in the project ``$WANDB_PROJECT`` (default ``alice``), grouped by the folder.

The training runs are transformers' own (train.py's ``--report-to``), named and placed through the
environment it and wandb read (TENSORBOARD_LOGGING_DIR, WANDB_NAME, WANDB_RUN_GROUP, WANDB_PROJECT).
The backends are imported only when something is logged.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .config import environment
from .errors import AliceError

BACKENDS = ("tensorboard", "wandb")  # each is also the package to install
TB_DIR = "TENSORBOARD_LOGGING_DIR"


def require(report_to: list[str]) -> None:
    """One line before anything is spent when a chosen backend is not installed."""
    for name in report_to:
        if name not in BACKENDS:
            raise AliceError(f"--report-to {name}: one of {', '.join(BACKENDS)}")
        if importlib.util.find_spec(name) is None:
            raise AliceError(f"--report-to {name} needs the {name} package (pip install {name})")


def project() -> str:
    return os.environ.get("WANDB_PROJECT") or "alice"


def folder_name(step: str) -> str:
    """A step's TensorBoard folder: "train student-alice" -> train-student-alice."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", step).strip("-")


class Tracker:
    """Where one run folder's steps are logged (nothing when ``report_to`` is empty)."""

    def __init__(self, report_to: list[str], folder: Path) -> None:
        self.report_to = list(report_to)
        self.root = Path(folder) / "tensorboard"
        self.group = Path(folder).resolve().name

    @contextmanager
    def training(self, step: str) -> Iterator[None]:
        """transformers' logging of a training step, as the run ``step`` in this folder's group."""
        if not self.report_to:
            yield
            return
        with environment({TB_DIR: str(self.root / folder_name(step)), "WANDB_NAME": step,
                          "WANDB_RUN_GROUP": self.group, "WANDB_PROJECT": project()}):
            try:
                yield
            finally:
                _finish_wandb()  # transformers leaves its run open: the next step starts its own

    def evaluation(self, method: str, summary: dict) -> None:
        self.log(f"eval {method}", {"eval/accuracy": summary.get("accuracy"),
                                    "eval/parse_rate": summary.get("parse_rate")},
                 config={"method": method, "model": summary.get("model")})

    def report(self, report: dict) -> None:
        """The report's PGR per method and its paired differences (``build_report``'s rows and paired)."""
        metrics: dict[str, float | None] = {}
        for row in report["rows"]:
            metrics[f"pgr/{row['method']}"] = row.get("pgr")
            if row.get("pgr") is not None:
                metrics[f"pgr/{row['method']}/ci_low"] = row.get("pgr_ci_low")
                metrics[f"pgr/{row['method']}/ci_high"] = row.get("pgr_ci_high")
        for pair in report["paired"]:
            tag = f"paired/{pair['a']}_vs_{pair['b']}"
            low, high = pair.get("ci") or (None, None)
            metrics.update({tag: pair["delta"], f"{tag}/ci_low": low, f"{tag}/ci_high": high,
                            f"{tag}/p": pair.get("p_clusters")})
        self.log("report", metrics)

    def log(self, step: str, metrics: dict[str, float | None], config: dict | None = None) -> None:
        """One point per metric (step 0) in the run ``step``; undefined values (None, NaN) are left out."""
        values = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
        for backend in self.report_to:
            try:
                (self._tensorboard if backend == "tensorboard" else self._wandb)(step, values, config or {})
            except Exception as err:  # noqa: BLE001 - a side channel: the step's own outputs are written
                print(f"warning: --report-to {backend}: {step} not logged: {type(err).__name__}: {err}",
                      file=sys.stderr, flush=True)

    def _tensorboard(self, step: str, values: dict[str, float], config: dict) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step=0: a rerun's values replace the earlier ones rather than stacking beside them.
        with SummaryWriter(str(self.root / folder_name(step)), purge_step=0) as writer:
            for tag, value in values.items():
                writer.add_scalar(tag, value, 0)

    def _wandb(self, step: str, values: dict[str, float], config: dict) -> None:
        import wandb

        _finish_wandb()
        run = wandb.init(project=project(), group=self.group, name=step, job_type=step.split()[0], config=config)
        run.log(values)
        run.finish()


@contextmanager
def within(part: str) -> Iterator[None]:
    """A training inside a logged step (a cascade stage inside the cascade step) as its own run:
    ``<folder>/<part>``, named "<step> <part>"; nothing changes where no step is being logged."""
    values = {}
    if os.environ.get(TB_DIR):
        values[TB_DIR] = str(Path(os.environ[TB_DIR]) / folder_name(part))
    if os.environ.get("WANDB_NAME"):
        values["WANDB_NAME"] = f"{os.environ['WANDB_NAME']} {part}"
    with environment(values):
        try:
            yield
        finally:
            if values:
                _finish_wandb()


def _finish_wandb() -> None:
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()

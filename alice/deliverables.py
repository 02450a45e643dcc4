"""A run folder's deliverables without model weights (``collect``), and a run folder rebuilt from them
(``restore``), so a run can be kept in a repository (results/fair) and resumed in parts on machines that
keep nothing between parts (``experiment.py --results DIR`` and ``--restore-from DIR``).

The deliverables hold the report and what it reads (summaries, each evaluation's per-question rows with
the response text), the gate, noise floor, evidence, status and settings, the recipe, every manifest,
and every other JSONL the run wrote (training files, uncertainty rows, rejection logs), compressed (xz).
Left out: model weights, probing samples (``*.samples.jsonl``), the parts a merged output was made of,
logs. A restored trained model has its manifest but no weights: a step that still needs the model trains
it again (experiment.py's finished check and train.py both look for the weights), one whose readers are
all done costs nothing.
"""

from __future__ import annotations

import json
import lzma
import re
import shutil
from pathlib import Path

from .errors import AliceError
from .records import iter_jsonl

RUN_FILES = ("report.md", "report.csv", "report.png", "report.pdf", "report.json", "experiment.json", "gate.json",
             "noise_floor.json", "evidence.json", "steps.json")
EVAL_KEEP = ("id", "cluster", "prediction", "parsed", "correct", "correct_by_rule", "response")  # an evaluation's rows, as kept
PART = re.compile(r".+-p\d+\.jsonl$")  # uncertainty-p1.jsonl ...: merged into uncertainty.jsonl


def compressed_copy(source: Path, target: Path, keep: tuple[str, ...] | None = None) -> None:
    """A JSONL file as ``target`` (.jsonl.xz), each row reduced to ``keep`` where given."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with lzma.open(target, "wt", encoding="utf-8", preset=6) as out:
        for _, row in iter_jsonl(source):
            out.write(json.dumps(row if keep is None else {k: row.get(k) for k in keep if k in row},
                                 ensure_ascii=False) + "\n")


def _kept(path: Path, run: Path, results: Path) -> bool:
    """Not checkpoints, step logs and tensorboard events (a batch of evaluations' listing and engine record in
    logs/ are kept: evidence reads them), nor the deliverables folder itself when it sits in the run."""
    relative = path.relative_to(run)
    if relative.parts[0] == "logs":
        return len(relative.parts) == 2 and path.suffix == ".json"
    return not (any(p.startswith("checkpoint-") for p in relative.parts) or relative.parts[0] == "tensorboard"
                or path.resolve().is_relative_to(results.resolve()))


def collect(run: str | Path, results: str | Path, recipe: str | Path | None = None) -> int:
    """The deliverables of ``run`` into ``results`` (see the module docstring); ``recipe``: the config file the
    run was made from, copied beside them. Returns the number of files written."""
    run, results = Path(run), Path(results)
    if not run.is_dir():
        raise AliceError(f"{run}: no such run folder")
    results.mkdir(parents=True, exist_ok=True)
    written = 0
    for path in sorted(run.rglob("*")):
        if not path.is_file() or not _kept(path, run, results):
            continue
        relative, name = path.relative_to(run), path.name
        if name.endswith("manifest.json"):
            target = results / "manifests" / relative
        elif name.endswith(".summary.json") or name in RUN_FILES or relative.parts[0] == "logs":
            target = results / relative
        elif name.endswith(".jsonl") and not name.endswith(".samples.jsonl") and not PART.fullmatch(name):
            evaluation = name.startswith("eval-") and path.with_name(name.removesuffix(".jsonl") + ".summary.json").is_file()
            compressed_copy(path, results / relative.with_name(name + ".xz"), EVAL_KEEP if evaluation else None)
            written += 1
            continue
        else:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        written += 1
    if recipe is not None:
        shutil.copyfile(recipe, results / Path(recipe).name)
        written += 1
    return written


def restore(results: str | Path, run: str | Path) -> int:
    """A run folder rebuilt from its deliverables (``collect``) so a later part resumes from them on another
    machine: every manifest back in its place, every compressed JSONL decompressed, the summaries and run
    files copied. Files already in ``run`` are kept. Returns the number of files written."""
    results, run = Path(results), Path(run)
    if not (results / "manifests").is_dir():
        raise AliceError(f"{results}: not a run's deliverables (no manifests/; experiment.py --results writes them)")
    written = 0
    for path in sorted(results.rglob("*")):
        if not path.is_file():
            continue
        relative = path.relative_to(results)
        if relative.parts[0] == "manifests":
            target = run / relative.relative_to("manifests")
        elif path.name.endswith(".jsonl.xz"):
            target = run / relative.with_name(path.name.removesuffix(".xz"))
        elif path.name.endswith(".summary.json") or path.name in RUN_FILES or relative.parts[0] == "logs":
            target = run / relative
        else:
            continue
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.name.endswith(".jsonl.xz") and relative.parts[0] != "manifests":
            with lzma.open(path, "rb") as data, open(target, "wb") as out:
                shutil.copyfileobj(data, out)
        else:
            shutil.copyfile(path, target)
        written += 1
    return written

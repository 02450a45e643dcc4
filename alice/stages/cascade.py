"""Cascade Alice (docs/METHOD.md stage 7) and the plumbing a multi-stage run needs.

    ladder = [teacher, mid, student]         # any length >= 2
    stage i: teacher_i = ladder[0] if i == 1 else the model trained in stage i-1
             uncertainty(teacher_i) on part i of the student pool -> student_generate(ladder[i])
             -> train ladder[i] on its answers -> trained_i

The student pool is split into disjoint, contiguous parts, one per stage (``--pool-part i/n``;
``--split-seed`` shuffles the pool first). Every stage writes into ``<output-dir>/stage<i>/`` with
the same files and manifests the scripts write by hand, and a ``stage.json`` marker when it is
finished; a rerun skips finished stages and resumes the one that was interrupted (each stage
resumes itself: JSONL appenders, training checkpoints).

Each stage is three steps (uncertainty, student_generate, train), each with its stage config built
from the cascade's own (``stage_steps``); the stages' own settings (--train-args and the like) are
mappings, read once where they came in. Engines are shared through ``alice.engines``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from importlib import import_module
from pathlib import Path
from typing import Any

from ..cli import (
    CheckSettings,
    GenerationSettings,
    ModelSettings,
    TeacherDataSettings,
    TestDataSettings,
    resolve_role,
    role,
)
from ..config import StageSettings, field_map, fingerprint_settings, flag_of, setting
from ..engines import ENGINE_SETTINGS, SHARED_ENGINE, SUMMARIZER_ENGINE, Engines
from ..errors import AliceError
from ..models import ModelRef
from ..records import Manifest, atomic_write_json, fingerprint, read_json
from ..steps import STAGES, Executor, Step
from ..tracking import within
from .common import slug

# Engine settings the probing may have of its own (its engines are then built with them, the summarizer's too):
# the model runner decides how fast seeded samples are drawn, and probing draws K of them per question.
PROBE_ENGINE_SETTINGS = frozenset({"vllm_runner"})
PASSTHROUGH = "settings passed on to the stages' configs (in a recipe: train: {lr: 3e-5}, uncertainty: {...})"


def stage_settings(name: str, script: str, help: str, refused: Mapping[str, str] | None = None) -> Any:
    """A setting holding the settings of every ``script`` step of a run, as a mapping (``StageSettings``).
    A generating step shares the run's engines: an engine setting of its own is refused (with ``refused``)."""
    module, config = STAGES[script]
    if refused is None:
        refused = dict.fromkeys(ENGINE_SETTINGS, SHARED_ENGINE)
    stage = StageSettings(name, f"{script}.py", lambda: getattr(import_module(module), config), refused)
    return setting({}, help + " (default: none)", group=PASSTHROUGH, stage=stage)


@dataclass(kw_only=True)
class StagePassthrough:
    """Extra settings for one kind of step: that script's settings as a mapping, given as its flags
    (--train-args "--lr 3e-5"), one at a time (--train.lr 3e-5) or in a recipe (train: {lr: 3e-5})."""

    uncertainty_args: dict[str, Any] = stage_settings(
        "uncertainty", "uncertainty", 'uncertainty.py settings, e.g. "--embedder X" or --uncertainty.embedder X',
        {**dict.fromkeys(ENGINE_SETTINGS - PROBE_ENGINE_SETTINGS, SHARED_ENGINE), **SUMMARIZER_ENGINE})
    generate_args: dict[str, Any] = stage_settings(
        "generate", "student_generate", 'student_generate.py settings, e.g. "--statement structured" or '
        "--generate.statement structured")
    train_args: dict[str, Any] = stage_settings(
        "train", "train", 'train.py settings, e.g. "--lora --max-steps 4" or --train.lora --train.max-steps 4',
        refused={})


@dataclass(kw_only=True)
class CascadeConfig(StagePassthrough, CheckSettings, GenerationSettings, ModelSettings, TeacherDataSettings):
    """cascade.py (the cascade splits the student pool itself, one part per stage: no --pool-part)."""

    teacher: str | None = role("teacher")
    midlevel: str | None = role("midlevel")
    student: str | None = role("student")
    summarizer: str | None = role("summarizer")
    ladder: list[str] | None = setting(None, "the whole ladder, trained teacher first (sizes with --model, or "
                                       "ids/folders)", metavar="MODEL", group="models")
    k: int = setting(100, "teacher samples per question (uncertainty probing)")
    share_engine: bool = setting(False, "vLLM: serve LoRA adapters on their base model's one engine (use with "
                                 "--train-args --lora)", operational=True)
    output_dir: str | None = setting(None, "default: runs/cascade-<data>-<ladder>", operational=True)
    overwrite: bool = setting(False, "start every stage over (each replaces its own outputs; other files in the "
                              "folder stay)", operational=True)


# The setting groups a step takes over from the run it belongs to, where its config has the group
# (a training step has no generation settings: the run's sampling --seed is not its training seed).
SHARED_GROUPS = (TestDataSettings, TeacherDataSettings, ModelSettings, GenerationSettings, CheckSettings)


def derive(cls: type, source: Any, stage: Mapping[str, Any] | None = None, given_as: str = "", /,
           **values: Any) -> Any:
    """A stage config with ``source``'s data, model and generation settings (the groups ``cls`` has;
    the question budget excepted: each step gets its own), ``values`` (what the run sets for this step)
    over them, and over all that ``stage``: the stage's own settings, from the run's ``given_as``
    (--train-args and the like), which cannot be one the run sets for the step itself."""
    stage = stage or {}
    clash = [flag_of(field_map(cls)[name]) for name in stage if name in values]
    if clash:
        script = next((s for s, (_, name) in STAGES.items() if name == cls.__name__), cls.__name__)
        raise AliceError(f"{given_as} {', '.join(clash)}: the run sets this for each {script}.py step itself")
    names = {f.name for group in SHARED_GROUPS if issubclass(cls, group) for f in fields(group)} - {"config", "limit"}
    return cls(**{**{name: getattr(source, name) for name in names}, **values, **stage})


def model_arg(ref_or_name: str | ModelRef) -> str:
    """What to put after --teacher/--student: a folder (adapter or model) or the user's name."""
    if isinstance(ref_or_name, ModelRef):
        return ref_or_name.adapter or ref_or_name.path
    return ref_or_name


def resolve_name(model_family: str | None, value: str, revision: str | None = None) -> ModelRef:
    """A ladder entry: a size with --model (1.5B), or any model id / folder / adapter."""
    from types import SimpleNamespace

    return resolve_role(SimpleNamespace(model=model_family, rung=value, revision=revision), "rung")


# ----------------------------------------------------------------------------- cascade


def planned_rung(model_family: str | None, value: str) -> ModelRef | str:
    """A dry run's ladder entry: resolved where it can be; a model an earlier step will train is
    not there yet, and stays the name given."""
    try:
        return resolve_name(model_family, value)
    except AliceError:
        return value


def ladder_from_args(args: CascadeConfig) -> list[str]:
    """--ladder A B C ..., or the paper's --teacher / --midlevel / --student (with --model)."""
    if args.ladder:
        if args.teacher or args.midlevel or args.student:
            raise AliceError("give either --ladder or --teacher/--midlevel/--student, not both")
        ladder = list(args.ladder)
    else:
        ladder = [x for x in (args.teacher, args.midlevel, args.student) if x]
        if not (args.teacher and args.student):
            raise AliceError("give --ladder A B [C ...] or --teacher and --student (and --midlevel)")
    if len(ladder) < 2:
        raise AliceError("a cascade needs at least two models (a teacher and a student)")
    return ladder


def stage_fingerprint(args: CascadeConfig, stage: int, stages: int, teacher: str, student: str) -> str:
    """What a finished stage's marker must match to be skipped: the cascade's settings (the question
    budget too: a larger --limit gives every stage more questions) and the stage's own models."""
    return fingerprint({"stage": stage, "stages": stages, "teacher": teacher, "student": student,
                        "limit": args.limit, **fingerprint_settings(args)})


def stage_steps(args: CascadeConfig, stage: int, stages: int, teacher: str, student: str, folder: Path,
                engines: Engines | None) -> list[Step]:
    """Stage ``stage``'s three steps, each with its full config: probe ``teacher`` on part ``stage`` of
    the student pool, let ``student`` answer, train ``student`` on the answers."""
    from .student_generate import StudentGenerateConfig, student_generate
    from .train import TrainConfig, run_training
    from .uncertainty import UncertaintyConfig, uncertainty

    part = {"pool_part": f"{stage}/{stages}", "limit": args.limit, "overwrite": args.overwrite}

    def probe(config: UncertaintyConfig) -> dict:
        summ_ref = resolve_role(config, "summarizer") if config.summarizer and not config.summarizer_base_url else None
        return uncertainty(config, engines.handle(resolve_role(config, "teacher"), config),
                           engines.handle(summ_ref, config) if summ_ref else None)

    def answer(config: StudentGenerateConfig) -> dict:
        counts = student_generate(config, engines.handle(resolve_role(config, "student")))
        if counts["rows"] == 0:
            raise AliceError(f"cascade stage {stage}: no training rows (the teacher had no answer on any "
                             f"of {counts['questions']} questions); use more questions or a larger --k")
        return counts

    def train(config: TrainConfig) -> dict:
        engines.before_training()
        with within(f"stage{stage}"):  # logged inside a step (experiment.py --report-to): a run of its own
            return run_training(config)

    return [
        Step("uncertainty", "uncertainty", derive(
            UncertaintyConfig, args, args.uncertainty_args, "--uncertainty-args", **part, teacher=teacher,
            summarizer=args.summarizer, k=args.k, output=str(folder / "uncertainty.jsonl")), probe),
        Step("student_generate", "student_generate", derive(
            StudentGenerateConfig, args, args.generate_args, "--generate-args", **part, student=student,
            uncertainty=str(folder / "uncertainty.jsonl"), output=str(folder / "alice.jsonl")), answer),
        Step("train", "train", derive(
            TrainConfig, args, args.train_args, "--train-args", overwrite=args.overwrite, student=student,
            train_file=str(folder / "alice.jsonl"), output_dir=str(folder / "model")), train),
    ]


def run_cascade(args: CascadeConfig, engines: Engines | None = None, executor: Executor | None = None) -> dict:
    """Run (or resume) every stage of the ladder; returns the cascade's summary. ``--overwrite``
    starts every stage over (each replaces its own outputs; nothing else in the folder is removed);
    ``executor``: how each step is run (a dry run prints them)."""
    executor = executor or Executor()
    ladder = ladder_from_args(args)
    refs = [planned_rung(args.model, name) if executor.dry_run else resolve_name(args.model, name, args.revision)
            for name in ladder]
    stages = len(ladder) - 1
    out = Path(args.output_dir or Path("runs") / "-".join(
        ["cascade", slug(args.data)] + [slug(model_arg(r)) for r in refs]))
    # The first stage's configs: a stage setting the cascade sets itself stops it here, before anything is written.
    stage_steps(args, 1, stages, model_arg(refs[0]), model_arg(refs[1]), out / "stage1", engines)
    if executor.dry_run:
        print(f"   cascade of {stages} stages in {out}")
    else:
        out.mkdir(parents=True, exist_ok=True)
        manifest = Manifest(out, "cascade", args, {"ladder": [(r.path, r.adapter) for r in refs],
                                                   **fingerprint_settings(args)})
        manifest.claim([], overwrite=args.overwrite)
        manifest.data["models"] = {f"rung{i}": r.describe() for i, r in enumerate(refs)}
        manifest.save()
    own_engines = engines is None
    if own_engines:
        engines = Engines(args, share_adapters=False)
    teacher = model_arg(refs[0])
    results = []
    try:
        for stage in range(1, stages + 1):
            student = model_arg(refs[stage])
            folder = out / f"stage{stage}"
            marker_path = folder / "stage.json"
            title = f"cascade stage {stage}/{stages}: {teacher} -> {student}"
            mark = stage_fingerprint(args, stage, stages, teacher, student)
            if args.overwrite and not executor.dry_run:
                marker_path.unlink(missing_ok=True)  # this stage is started over
            if marker_path.exists() and not args.overwrite:
                marker = read_json(marker_path)
                if marker.get("fingerprint") == mark and marker.get("status") == "complete":
                    print(f"{title}: finished earlier, skipped")
                    results.append(marker)
                    teacher = marker["trained_model"]
                    continue
            print(title, flush=True)
            started = time.time()
            u_counts, s_counts, trained = (executor.call(step) for step in stage_steps(
                args, stage, stages, teacher, student, folder, engines))
            marker = {"status": "complete", "fingerprint": mark, "stage": stage, "stages": stages,
                      "teacher": teacher, "student": student, "pool_part": f"{stage}/{stages}",
                      "trained_model": str(folder / "model"), "uncertainty": u_counts, "student_generate": s_counts,
                      "training": (trained or {}).get("counts", {}), "wall_s": round(time.time() - started, 1)}
            if not executor.dry_run:
                atomic_write_json(marker_path, marker)
            results.append(marker)
            teacher = marker["trained_model"]
    finally:
        if own_engines:
            engines.close()
    summary = {"ladder": ladder, "stages": results, "final_model": teacher, "output_dir": str(out)}
    if not executor.dry_run:
        manifest.complete({"stages": stages}, final_model=teacher, engine_starts=engines.starts)
        print(f"cascade done: final model {teacher}")
    return summary

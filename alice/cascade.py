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

``Engines`` hands out generation backends for the models of a run. With vLLM and LoRA-trained
models every adapter of a base model is served on that base's one engine (``LoRARequest``), so a
CPU run starts one engine in all. Otherwise one engine lives at a time (GPU memory).
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .answers import DEFAULT_SCORING
from .backends import Backend, VLLMBackend, cuda_available, vllm_available
from .cli import OPERATIONAL, add_generation_args, backend_from_args, resolve_role
from .errors import AliceError
from .models import ModelRef
from .records import Manifest, atomic_write_json, fingerprint, read_json
from .stages import slug
from .tasks import REPO_ROOT

# ----------------------------------------------------------------------------- stage arguments


def stage_namespace(script: str, argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv`` with a stage script's own parser, so every stage gets exactly the defaults
    and checks it has when run by hand (and the argv doubles as the command to rerun it)."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    module = importlib.import_module(script)
    try:
        return module.build_parser().parse_args([str(a) for a in argv])
    except SystemExit as stop:  # argparse already printed why
        raise AliceError(f"bad arguments for {script}.py: {shlex.join(map(str, argv))}") from stop


class StageCalls:
    """Runs a stage from the argv its script would get, or, for ``--dry-run``, prints the command
    and every setting the stage would run with, and runs nothing."""

    def __init__(self, dry_run: bool = False) -> None:
        self.dry_run = dry_run
        self.planned: list[dict] = []

    def __call__(self, script: str, argv: Sequence[str], run: Callable[[argparse.Namespace], object],
                 plan: Callable[[argparse.Namespace], object] | None = None) -> object:
        """``run(namespace)`` for real; in a dry run ``plan(namespace)`` (default: nothing) instead."""
        ns = stage_namespace(script, argv)
        if not self.dry_run:
            return run(ns)
        settings = {k: v for k, v in sorted(vars(ns).items())}
        self.planned.append({"script": f"{script}.py", "argv": [str(a) for a in argv], "settings": settings})
        print(f"   python {script}.py {shlex.join(map(str, argv))}")
        print(f"   settings: {json.dumps(settings, default=str)}", flush=True)
        return plan(ns) if plan else None


def data_argv(args: argparse.Namespace, split_seed: bool = True) -> list[str]:
    """The data flags of ``args`` (``split_seed=False`` for eval.py: the test split is never shuffled)."""
    out = ["--data", args.data]
    if args.answer_type:
        out += ["--answer-type", args.answer_type]
    if split_seed and args.split_seed is not None:
        out += ["--split-seed", args.split_seed]
    if getattr(args, "scoring", DEFAULT_SCORING) != DEFAULT_SCORING:
        out += ["--scoring", args.scoring]
    return [str(x) for x in out]


def generation_argv(args: argparse.Namespace) -> list[str]:
    """Every generation flag (``cli.add_generation_args``) with its value in ``args``: read off the
    parser itself, so a flag added there reaches every stage."""
    reference = argparse.ArgumentParser(add_help=False)
    add_generation_args(reference)
    out: list[str] = []
    for action in reference._actions:
        value = getattr(args, action.dest, action.default)
        if action.nargs == 0:  # an on/off flag
            out += [action.option_strings[0]] if value else []
        elif value is not None:
            out += [action.option_strings[0], str(value)]
    return out


def revision_argv(args: argparse.Namespace) -> list[str]:
    """--revision passed on to the stages that load models."""
    return ["--revision", args.revision] if getattr(args, "revision", None) else []


def extra_argv(text: str | None) -> list[str]:
    """Options passed through to one stage, as a user would type them: "--k 20 --embedder X"."""
    return shlex.split(text) if text else []


def add_passthrough_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("options passed through to the stage scripts")
    g.add_argument("--uncertainty-args", default="", help='extra uncertainty.py options, e.g. "--embedder X"')
    g.add_argument("--generate-args", default="", help="extra student_generate.py options")
    g.add_argument("--train-args", default="", help='extra train.py options, e.g. "--lora --max-steps 4"')
    g.add_argument("--eval-args", default="", help="extra eval.py options")


def model_arg(ref_or_name: str | ModelRef) -> str:
    """What to put after --teacher/--student: a folder (adapter or model) or the user's name."""
    if isinstance(ref_or_name, ModelRef):
        return ref_or_name.adapter or ref_or_name.path
    return ref_or_name


def resolve_name(model_family: str | None, value: str, revision: str | None = None) -> ModelRef:
    """A ladder entry: a size with --model (1.5B), or any model id / folder / adapter."""
    return resolve_role(argparse.Namespace(model=model_family, rung=value, revision=revision), "rung")


# ----------------------------------------------------------------------------- engines


class EngineHandle(Backend):
    """A backend for one model that starts (or reuses) an engine only when asked to generate."""

    def __init__(self, engines: Engines, ref: ModelRef):
        self.engines, self.ref = engines, ref

    def _ready(self) -> Backend:
        return self.engines.ready(self.ref)

    @property
    def max_context(self) -> int | None:  # type: ignore[override]
        return self._ready().max_context

    def prompt_tokens(self, conversation):
        return self._ready().prompt_tokens(conversation)

    def generate(self, conversations, sampling, ids):
        return self._ready().generate(conversations, sampling, ids)

    def describe(self) -> dict:
        return self.engines.describe(self.ref)

    def close(self) -> None:  # the engine belongs to Engines
        pass


class _AdapterView(Backend):
    """One adapter (or the base) on a shared vLLM engine: the engine's LoRA request is swapped
    for the duration of each call."""

    def __init__(self, engine: VLLMBackend, request):
        self.engine, self.request = engine, request
        self.max_context = engine.max_context

    def prompt_tokens(self, conversation):
        return self.engine.prompt_tokens(conversation)

    def generate(self, conversations, sampling, ids):
        saved, self.engine.lora = self.engine.lora, self.request
        try:
            return self.engine.generate(conversations, sampling, ids)
        finally:
            self.engine.lora = saved


class Engines:
    """Generation backends for every model of a run; see the module docstring."""

    def __init__(self, args: argparse.Namespace, share_adapters: bool, max_lora_rank: int = 64):
        self.args = args
        kind = args.backend
        if kind == "auto":
            kind = "openai" if args.base_url else ("vllm" if vllm_available() else "hf")
        self.share = share_adapters and kind == "vllm"
        self.max_lora_rank = max_lora_rank
        self.current: tuple[tuple, Backend] | None = None  # (key, backend): one engine at a time
        self.lora_ids: dict[str, int] = {}
        self.starts: list[dict] = []

    def handle(self, ref: ModelRef) -> EngineHandle:
        return EngineHandle(self, ref)

    def _key(self, ref: ModelRef) -> tuple:
        return (ref.path,) if self.share else (ref.path, ref.adapter)

    def ready(self, ref: ModelRef) -> Backend:
        key = self._key(ref)
        if self.current is None or self.current[0] != key:
            self.close()
            started = time.time()
            if self.share:  # the base model's engine, serving every adapter trained on it
                backend = backend_from_args(self.args, ModelRef(ref.path, source=ref.path), enable_lora=True,
                                            max_lora_rank=self.max_lora_rank)
            else:
                backend = backend_from_args(self.args, ref)
            self.starts.append({"model": ref.adapter or ref.path, "load_s": round(time.time() - started, 1)})
            self.current = (key, backend)
        backend = self.current[1]
        if not self.share:
            return backend
        request = None
        if ref.adapter:
            from vllm.lora.request import LoRARequest

            lora_id = self.lora_ids.setdefault(ref.adapter, len(self.lora_ids) + 1)
            request = LoRARequest(f"adapter{lora_id}", lora_id, ref.adapter)
        return _AdapterView(backend, request)

    def describe(self, ref: ModelRef) -> dict:
        info = {"backend": "vllm" if self.share else self.args.backend, "model": ref.adapter or ref.path,
                "shared_engine": self.share}
        if self.current is not None and self.current[0] == self._key(ref):
            info.update(self.current[1].describe())
        return info

    def before_training(self) -> None:
        """Training needs the GPU's memory: close the engine there (on CPU it stays loaded)."""
        if cuda_available():
            self.close()

    def close(self) -> None:
        if self.current is not None:
            self.current[1].close()
            self.current = None


# ----------------------------------------------------------------------------- cascade


def planned_rung(model_family: str | None, value: str) -> ModelRef | str:
    """A dry run's ladder entry: resolved where it can be; a model an earlier step will train is
    not there yet, and stays the name given."""
    try:
        return resolve_name(model_family, value)
    except AliceError:
        return value


def ladder_from_args(args: argparse.Namespace) -> list[str]:
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


def stage_fingerprint(args: argparse.Namespace, stage: int, stages: int, teacher: str, student: str) -> str:
    keys = ("data", "answer_type", "split_seed", "limit", "k", "max_new_tokens", "seed", "summarizer",
            "uncertainty_args", "generate_args", "train_args")
    return fingerprint({"stage": stage, "stages": stages, "teacher": teacher, "student": student,
                        **{k: getattr(args, k, None) for k in keys}})


def run_cascade(args: argparse.Namespace, engines: Engines | None = None, calls: StageCalls | None = None) -> dict:
    """Run (or resume) every stage of the ladder; returns the cascade's summary. ``--overwrite``
    starts every stage over (each replaces its own outputs; nothing else in the folder is removed);
    ``calls``: how each stage is run (a dry run prints them)."""
    from .alice_stages import student_generate, uncertainty
    from .training import run_training

    calls = calls or StageCalls()
    ladder = ladder_from_args(args)
    refs = [planned_rung(args.model, name) if calls.dry_run else resolve_name(args.model, name, getattr(args, "revision", None))
            for name in ladder]
    stages = len(ladder) - 1
    out = Path(args.output_dir or Path("runs") / "-".join(
        ["cascade", slug(args.data)] + [slug(model_arg(r)) for r in refs]))
    if calls.dry_run:
        print(f"   cascade of {stages} stages in {out}")
    else:
        out.mkdir(parents=True, exist_ok=True)
        manifest = Manifest(out, "cascade", vars(args), {"ladder": [(r.path, r.adapter) for r in refs],
                                                          **{k: v for k, v in vars(args).items()
                                                             if k not in OPERATIONAL | {"share_engine"}}})
        manifest.claim([], overwrite=args.overwrite)
        manifest.data["models"] = {f"rung{i}": r.describe() for i, r in enumerate(refs)}
        manifest.save()
    own_engines = engines is None
    if own_engines:
        engines = Engines(args, share_adapters=False)
    teacher = model_arg(refs[0])
    overwrite = ["--overwrite"] if args.overwrite else []
    results = []
    try:
        for stage in range(1, stages + 1):
            student = model_arg(refs[stage])
            folder = out / f"stage{stage}"
            marker_path = folder / "stage.json"
            print_ = f"cascade stage {stage}/{stages}: {teacher} -> {student}"
            mark = stage_fingerprint(args, stage, stages, teacher, student)
            if args.overwrite and not calls.dry_run:
                marker_path.unlink(missing_ok=True)  # this stage is started over
            if marker_path.exists() and not args.overwrite:
                marker = read_json(marker_path)
                if marker.get("fingerprint") == mark and marker.get("status") == "complete":
                    print(f"{print_}: finished earlier, skipped")
                    results.append(marker)
                    teacher = marker["trained_model"]
                    continue
            print(print_, flush=True)
            started = time.time()
            part = ["--pool-part", f"{stage}/{stages}"]
            limit = ["--limit", str(args.limit)] if args.limit else []
            common = data_argv(args) + part + limit
            family = (["--model", args.model] if args.model else []) + revision_argv(args)
            summ = ["--summarizer", args.summarizer] if args.summarizer else []

            def probe(ns: argparse.Namespace) -> dict:
                summ_ref = resolve_role(ns, "summarizer") if ns.summarizer and not ns.summarizer_base_url else None
                return uncertainty(ns, engines.handle(resolve_role(ns, "teacher")),
                                   engines.handle(summ_ref) if summ_ref else None)

            def answer(ns: argparse.Namespace, stage: int = stage) -> dict:
                counts = student_generate(ns, engines.handle(resolve_role(ns, "student")))
                if counts["rows"] == 0:
                    raise AliceError(f"cascade stage {stage}: no training rows (the teacher had no answer on any "
                                     f"of {counts['questions']} questions); use more questions or a larger --k")
                return counts

            def train(ns: argparse.Namespace) -> dict:
                engines.before_training()
                return run_training(ns)

            u_counts = calls("uncertainty", common + generation_argv(args) + family + [
                "--teacher", teacher, *summ, "--k", str(args.k), "--output", str(folder / "uncertainty.jsonl"),
                *overwrite, *extra_argv(args.uncertainty_args)], probe)
            s_counts = calls("student_generate", common + generation_argv(args) + family + [
                "--student", student, "--uncertainty", str(folder / "uncertainty.jsonl"),
                "--output", str(folder / "alice.jsonl"), *overwrite, *extra_argv(args.generate_args)], answer)
            trained = calls("train", data_argv(args) + family + [
                "--student", student, "--train-file", str(folder / "alice.jsonl"),
                "--output-dir", str(folder / "model"), *overwrite, *extra_argv(args.train_args)], train)
            marker = {"status": "complete", "fingerprint": mark, "stage": stage, "stages": stages,
                      "teacher": teacher, "student": student, "pool_part": f"{stage}/{stages}",
                      "trained_model": str(folder / "model"), "uncertainty": u_counts, "student_generate": s_counts,
                      "training": (trained or {}).get("counts", {}), "wall_s": round(time.time() - started, 1)}
            if not calls.dry_run:
                atomic_write_json(marker_path, marker)
            results.append(marker)
            teacher = marker["trained_model"]
    finally:
        if own_engines:
            engines.close()
    summary = {"ladder": ladder, "stages": results, "final_model": teacher, "output_dir": str(out)}
    if not calls.dry_run:
        manifest.complete({"stages": stages}, final_model=teacher, engine_starts=engines.starts)
        print(f"cascade done: final model {teacher}")
    return summary

"""The paper's whole comparison for one dataset and model pair, in one run folder, ending with the
report: weak teacher, strong ceiling, zero-shot, original W2S (CoT- and answers-only teachers),
Alice, and cascade Alice (when a mid model is given).

Every step is the function its script calls, with arguments parsed by that script's own parser
(``stage_namespace``), so the run folder holds the same JSONL, models and manifests a researcher
gets running the scripts by hand, and a rerun resumes every step (finished ones cost nothing).

Run folder layout::

    cot.jsonl                       stage 1: the base teacher's filtered CoT
    teacher-cot/ teacher-gt/ [teacher-qa/]   trained teachers (CoT; ground truth = weak; answers only)
    student-ceiling/                the student trained on its pool's ground truth
    uncertainty.jsonl alice.jsonl   Alice stages 3-5 (CoT teacher -> student)
    w2s-cot.jsonl w2s-qa.jsonl      original W2S labels (temperature 0.6)
    student-alice/ student-w2s-cot/ student-w2s-qa/
    cascade/stage<i>/...            cascade Alice (teacher-cot -> mid -> student)
    eval-<method>.jsonl/.summary.json   weak, ceiling, zero-shot, w2s-qa, w2s-cot, alice, cascade
    report.md report.csv report.png experiment.json
"""

from __future__ import annotations

import argparse
import math
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from .backends import cuda_available
from .cascade import (
    Engines,
    StageCalls,
    data_argv,
    extra_argv,
    generation_argv,
    revision_argv,
    run_cascade,
)
from .cli import resolve_role, task_from_args
from .errors import AliceError
from .models import SMALL_MODEL, small_model_folder
from .records import atomic_write_json, read_json
from .report import build_report
from .stages import slug

# The embedded default (CPU, minutes): small slices, few samples, two training steps per model.
DEMO = {
    "limit": 16, "student_limit": 12, "eval_limit": 16, "k": 4, "max_new_tokens": 100,
    "summarizer_max_new_tokens": 48,
    # K=4 samples from a 135M model rarely agree twice: keep singleton clusters, or most questions
    # (and, on a cascade stage's half of the slice, all of them) have no teacher answer.
    "uncertainty_args": "--keep-singletons",
    # Full fine-tuning: vLLM on CPU serves LoRA adapters through a slow fallback kernel (per-token
    # gathered weights, padded to the engine's max rank), so trained models are plain folders here.
    "train_args": "--max-steps 2 --total-batch-size 2 --lr 5e-5 --warmup-steps 0 --max-length 512 "
                  "--no-gradient-checkpointing --logging-steps 1",
}
# The paper's setting: every question, K=100, the paper's training recipe (train.py defaults).
PAPER = {"limit": None, "student_limit": None, "eval_limit": None, "k": 100, "max_new_tokens": 512,
         "summarizer_max_new_tokens": 256, "uncertainty_args": "", "train_args": ""}


def is_small_default(args: argparse.Namespace) -> bool:
    """Every model named is the embedded small model (by name, or its folder)."""
    def small(name: str) -> bool:
        if name.lower() == SMALL_MODEL:
            return True
        return Path(name).is_dir() and Path(name).resolve() == small_model_folder().resolve()

    names = [args.model, args.teacher, args.student, args.midlevel, args.summarizer]
    return all(n is None or small(n) for n in names)


def apply_preset(args: argparse.Namespace) -> argparse.Namespace:
    """Fill every option the user left unset from the preset (demo for the embedded small model)."""
    if args.model is None and not (args.teacher and args.student):
        args.model = SMALL_MODEL  # a role left unset is the embedded small model
    preset = args.preset
    if preset == "auto":
        preset = "demo" if is_small_default(args) else "paper"
    args.preset = preset
    values = DEMO if preset == "demo" else PAPER
    for key, value in values.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if preset == "demo" and args.midlevel is None and args.cascade:
        args.midlevel = args.student or args.model  # a 3-rung ladder on the one small model
    if args.backend is None:
        # On a CPU the demo's steps are tiny (16 questions x 100 tokens): vLLM's ~18 s engine start
        # outweighs its faster decoding there (eval.py on 16 questions: 41.6 s with vLLM, 20.5 s with
        # transformers, same answers), so the demo generates with transformers; vLLM everywhere else.
        args.backend = "hf" if preset == "demo" and not cuda_available() else "auto"
    for key in ("limit", "student_limit", "eval_limit"):
        if getattr(args, key) == 0:
            setattr(args, key, None)  # 0 = all
    return args


def run_folder(args: argparse.Namespace) -> Path:
    if args.run_dir:
        return Path(args.run_dir)
    parts = [args.data, args.model, args.teacher, args.midlevel if args.cascade else None, args.student,
             args.preset if args.preset == "demo" else None]
    return Path("runs") / "-".join(slug(str(x)) for x in parts if x)


class Chain:
    """Runs named steps in order; a failed step is recorded and the steps that need it are skipped,
    so one empty filter result does not lose the other methods (the report lists what is missing)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.timings: dict[str, float] = {}
        self.failed: dict[str, str] = {}
        self.results: dict[str, object] = {}
        self.count = 0

    def run(self, name: str, fn: Callable[[], object], needs: tuple[str, ...] = ()) -> object:
        self.count += 1
        blocked = [n for n in needs if n in self.failed]
        if blocked:
            self.failed[name] = f"needs {', '.join(blocked)}"
            print(f"== {self.prefix}[{self.count}] {name}: skipped ({self.failed[name]})", flush=True)
            return None
        print(f"== {self.prefix}[{self.count}] {name}", flush=True)
        started = time.time()
        try:
            result = fn()
        except AliceError as err:
            self.failed[name] = str(err)
            print(f"== {self.prefix}[{self.count}] {name} failed: {err}", flush=True)
            return None
        except Exception as err:  # noqa: BLE001 - keep the other methods going, report at the end
            self.failed[name] = f"{type(err).__name__}: {err}"
            traceback.print_exc()
            return None
        finally:
            self.timings[name] = round(time.time() - started, 1)
        self.results[name] = result
        return result


class Steps:
    """What every step of one run needs (its folder, the argv fragments passed to the stage scripts,
    the engines), and the steps used in more than one place. The cascade branch builds its own
    ``Steps`` in its own process when it runs beside the rest (``--parallel-cascade``)."""

    def __init__(self, args: argparse.Namespace, folder: Path, engines: Engines, calls: StageCalls) -> None:
        self.args, self.folder, self.engines, self.calls = args, folder, engines, calls
        self.family = (["--model", args.model] if args.model else []) + revision_argv(args)
        # --overwrite starts every step over: each replaces its own outputs, nothing else is removed.
        self.overwrite = ["--overwrite"] if args.overwrite else []
        self.data = data_argv(args)
        self.gen = self.data + generation_argv(args) + self.family + self.overwrite
        self.train_extra = extra_argv(args.train_args)
        self.eval_limit = ["--limit", str(args.eval_limit)] if args.eval_limit else []
        self.student_name = args.student or args.model
        self.summ = ["--summarizer", args.summarizer] if args.summarizer else []
        self.path = {name: str(folder / name) for name in (
            "cot.jsonl", "teacher-cot", "teacher-gt", "teacher-qa", "student-ceiling", "uncertainty.jsonl",
            "alice.jsonl", "w2s-cot.jsonl", "w2s-qa.jsonl", "student-alice", "student-w2s-cot", "student-w2s-qa",
            "cascade")}

    def train(self, role_flag: str, model: str, output_dir: str, source: list[str]) -> dict:
        from .training import run_training

        def train(ns: argparse.Namespace) -> dict:
            self.engines.before_training()
            return run_training(ns)

        return self.calls("train", self.data + self.family + [role_flag, model, *source, "--output-dir", output_dir,
                                                              *self.overwrite, *self.train_extra], train)

    def evaluate_into(self, method: str, role_flag: str, model: str) -> dict:
        from .stages import evaluate

        # The test split is never shuffled: eval.py takes no --split-seed.
        argv = (data_argv(self.args, split_seed=False) + generation_argv(self.args) + self.family + self.overwrite
                + [role_flag, model, *self.eval_limit, "--output", str(self.folder / f"eval-{method}.jsonl"),
                   *extra_argv(self.args.eval_args)])
        return self.calls("eval", argv, lambda ns: evaluate(
            ns, self.engines.handle(resolve_role(ns, role_flag.lstrip("-")))))

    def cascade(self, chain: Chain) -> None:
        """Cascade Alice (CoT teacher -> mid -> student, on disjoint parts of the same question budget)
        and its evaluation."""
        args = self.args

        def cascade() -> dict:
            stages = 2
            per_stage = max(1, math.ceil(args.student_limit / stages)) if args.student_limit else None
            argv = self.gen + [
                "--ladder", self.path["teacher-cot"], args.midlevel, self.student_name, *self.summ,
                "--k", str(args.k), "--output-dir", self.path["cascade"],
                # --flag=value: a value that starts with "--" is not taken for an option
                (f"--uncertainty-args=--summarizer-max-new-tokens {args.summarizer_max_new_tokens} "
                 f"{args.uncertainty_args}"),
                f"--generate-args={args.generate_args}", f"--train-args={args.train_args}"]
            if per_stage:
                argv += ["--limit", str(per_stage)]
            return self.calls("cascade", argv, lambda ns: run_cascade(ns, self.engines),
                              plan=lambda ns: run_cascade(ns, self.engines, self.calls))

        result = chain.run("cascade", cascade, needs=("train teacher-cot",))
        chain.run("eval cascade", lambda: self.evaluate_into("cascade", "--student", result["final_model"]),
                  needs=("cascade",))


def share_adapters(args: argparse.Namespace) -> bool:
    # LoRA adapters share their base model's engine on GPU; on CPU vLLM's LoRA path is too slow.
    train_extra = extra_argv(args.train_args)
    return ("--lora" in train_extra or "--qlora" in train_extra) and cuda_available()


def cascade_process(args: argparse.Namespace, folder: str, result_path: str) -> None:
    """The cascade branch in its own process (``--parallel-cascade``): own engines, own chain; what
    happened goes to ``result_path`` for the main process to merge."""
    import signal
    import sys

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so the engines shut down
    engines = Engines(args, share_adapters=share_adapters(args))
    chain = Chain(prefix="cascade process ")
    try:
        Steps(args, Path(folder), engines, StageCalls()).cascade(chain)
    finally:
        engines.close()
        atomic_write_json(result_path, {"timings_s": chain.timings, "failed": chain.failed,
                                        "engine_starts": engines.starts, "pid": os.getpid()})


class CascadeBranch:
    """Runs ``cascade_process`` beside the main chain once the CoT teacher exists."""

    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        import multiprocessing

        self.result_path = folder / "cascade-process.json"
        self.result_path.unlink(missing_ok=True)
        # spawn: a fresh interpreter (CUDA and vLLM's engine processes do not survive fork)
        self.process = multiprocessing.get_context("spawn").Process(
            target=cascade_process, args=(args, str(folder), str(self.result_path)), name="alice-cascade")
        self.process.start()
        print(f"== cascade runs beside the other steps (process {self.process.pid})", flush=True)

    def join(self, chain: Chain) -> dict:
        self.process.join()
        if self.result_path.exists():
            result = read_json(self.result_path)
        else:
            result = {"timings_s": {}, "engine_starts": [], "pid": self.process.pid,
                      "failed": {"cascade": f"cascade process exited with code {self.process.exitcode}"}}
        chain.timings.update({f"{k} (parallel)": v for k, v in result["timings_s"].items()})
        chain.failed.update(result["failed"])
        return result

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(60)


def run_experiment(args: argparse.Namespace) -> dict:
    started = time.time()
    args = apply_preset(args)
    folder = run_folder(args)
    calls = StageCalls(dry_run=args.dry_run)
    if args.dry_run:
        print(f"dry run: {folder} (nothing is run or written)")
    else:
        folder.mkdir(parents=True, exist_ok=True)
    task = task_from_args(args)
    teacher_name, student_name = args.teacher or args.model, args.student or args.model
    if not teacher_name or not student_name:
        raise AliceError("give --model (and --teacher/--student sizes), or --teacher and --student")
    teacher_ref, student_ref = resolve_role(args, "teacher"), resolve_role(args, "student")
    if args.summarizer:
        resolve_role(args, "summarizer")  # a bad name stops the run before anything is spent
    same_base = teacher_ref == student_ref
    note = ""
    if same_base:
        note = (f"Note: teacher and student are the same base model ({teacher_ref.source or teacher_ref.path}); "
                "this run checks the pipeline end to end, it does not measure weak-to-strong generalization.")
        print(note, flush=True)
    if args.dry_run:
        return plan_experiment(args, folder, task, calls)
    with_cascade = bool(args.cascade and args.midlevel)
    info = {"dataset": task.name, "teacher_label": teacher_name, "student_label": student_name,
            "midlevel": args.midlevel if with_cascade else None, "preset": args.preset, "note": note,
            "run_dir": str(folder)}
    info_path = folder / "experiment.json"
    attempts = (read_json(info_path).get("attempts", 1) + 1) if info_path.exists() and not args.overwrite else 1
    atomic_write_json(info_path, {**info, "status": "running", "attempts": attempts})

    engines = Engines(args, share_adapters=share_adapters(args))
    steps = Steps(args, folder, engines, calls)
    result = run_steps(args, folder, task, steps, with_cascade)
    report = build_report(folder)
    wall = round(time.time() - started, 1)
    chain, branch_result = result["chain"], result["branch"]
    result = {**info, "status": "complete" if not chain.failed else "incomplete", "cot": chain.results.get("cot"),
              "failed": chain.failed, "timings_s": chain.timings,
              "engine_starts": engines.starts + branch_result.get("engine_starts", []),
              "cascade_process": {"pid": branch_result["pid"]} if branch_result else None,
              "settings": {k: v for k, v in vars(args).items()}, "wall_s": wall,
              "report": {k: report[k] for k in ("markdown", "csv", "png")}}
    result["attempts"] = attempts
    atomic_write_json(info_path, result)
    print("\n" + report["text"])
    if chain.failed:
        print("not produced: " + "; ".join(f"{k}: {v}" for k, v in chain.failed.items()))
    print(f"done in {wall} s -> {folder} (report.md, report.csv, report.png)")
    if note:
        print(note)
    return result


def plan_experiment(args: argparse.Namespace, folder: Path, task, calls: StageCalls) -> dict:
    """``--dry-run``: every step's command and settings, printed in order; nothing runs."""
    engines = Engines(args, share_adapters=False)  # hands out handles only: no engine starts
    chain = run_steps(args, folder, task, Steps(args, folder, engines, calls), bool(args.cascade and args.midlevel))
    print(f"dry run: {len(calls.planned)} steps, nothing run")
    return {"dry_run": True, "run_dir": str(folder), "steps": calls.planned, "failed": chain["chain"].failed}


def run_steps(args: argparse.Namespace, folder: Path, task, steps: Steps, with_cascade: bool) -> dict:
    """Every step of the run in order (each resumes; a dry run prints them instead)."""
    from .alice_stages import student_generate, uncertainty
    from .stages import cot_generate_filter
    from .w2s import w2s_labels

    engines, calls = steps.engines, steps.calls
    teacher_name, student_name = args.teacher or args.model, args.student or args.model
    teacher_ref = resolve_role(args, "teacher")
    summ_ref = resolve_role(args, "summarizer") if args.summarizer else None
    gen, path, train, evaluate_into = steps.gen, steps.path, steps.train, steps.evaluate_into
    teacher_limit = ["--limit", str(args.limit)] if args.limit else []
    student_limit = ["--limit", str(args.student_limit)] if args.student_limit else []
    chain = Chain()
    branch: CascadeBranch | None = None
    branch_result: dict = {}

    def labels(teacher_dir: str, output: str) -> dict:
        return calls("w2s_labels", gen + ["--teacher", teacher_dir, *student_limit, "--output", output],
                     lambda ns: w2s_labels(ns, engines.handle(resolve_role(ns, "teacher"))))

    # The answers-only teacher equals the weak one where the ground truth has no rationales (ARC).
    teacher_examples = task.examples("teacher", args.split_seed, args.limit)
    qa_is_weak = all(task.ground_truth_response(ex, True) == task.ground_truth_response(ex, False)
                     for ex in teacher_examples)
    qa_teacher = path["teacher-gt"] if qa_is_weak else path["teacher-qa"]
    qa_step = "train teacher-gt" if qa_is_weak else "train teacher-qa"

    try:
        # Stage 1 (a bad model or dataset stops the run here, before anything else is spent).
        if calls.dry_run:
            print("== [0] cot_generate_filter")
        chain.results["cot"] = calls("cot_generate_filter", gen + [
            "--teacher", teacher_name, *teacher_limit, "--output", path["cot.jsonl"]],
            lambda ns: cot_generate_filter(ns, engines.handle(teacher_ref)))
        # Trained teachers and the ceiling (no engine needed).
        chain.run("train teacher-cot", lambda: train("--teacher", teacher_name, path["teacher-cot"],
                                                      ["--train-file", path["cot.jsonl"]]))
        if with_cascade and args.parallel_cascade and "train teacher-cot" not in chain.failed and not calls.dry_run:
            branch = CascadeBranch(args, folder)
        chain.run("train teacher-gt", lambda: train("--teacher", teacher_name, path["teacher-gt"],
                                                     ["--ground-truth", "--pool", "teacher", *teacher_limit]))
        if not qa_is_weak:
            chain.run("train teacher-qa", lambda: train("--teacher", teacher_name, path["teacher-qa"],
                                                         ["--ground-truth", "--no-rationale", "--pool", "teacher",
                                                          *teacher_limit]))
        chain.run("train student-ceiling", lambda: train("--student", student_name, path["student-ceiling"],
                                                          ["--ground-truth", "--pool", "student", *student_limit]))
        # The CoT teacher: its uncertainty (Alice) and its labels (W2S-CoT).

        def probe() -> dict:
            def run(ns: argparse.Namespace) -> dict:
                summ_backend = engines.handle(summ_ref) if summ_ref and not ns.summarizer_base_url else None
                return uncertainty(ns, engines.handle(resolve_role(ns, "teacher")), summ_backend)

            return calls("uncertainty", gen + [
                "--teacher", path["teacher-cot"], *steps.summ, *student_limit, "--k", str(args.k),
                "--summarizer-max-new-tokens", str(args.summarizer_max_new_tokens),
                "--output", path["uncertainty.jsonl"], *extra_argv(args.uncertainty_args)], run)

        chain.run("w2s-cot labels", lambda: labels(path["teacher-cot"], path["w2s-cot.jsonl"]),
                  needs=("train teacher-cot",))
        chain.run("uncertainty", probe, needs=("train teacher-cot",))
        # The untrained student (often also the summarizer, whose engine is still up): zero-shot
        # baseline, then Alice's proactive answers.
        chain.run("eval zero-shot", lambda: evaluate_into("zero-shot", "--student", student_name))

        def proactive() -> dict:
            return calls("student_generate", gen + [
                "--student", student_name, "--uncertainty", path["uncertainty.jsonl"], *student_limit,
                "--output", path["alice.jsonl"], *extra_argv(args.generate_args)],
                lambda ns: student_generate(ns, engines.handle(resolve_role(ns, "student"))))

        chain.run("student_generate", proactive, needs=("uncertainty",))
        chain.run("eval weak", lambda: evaluate_into("weak", "--teacher", path["teacher-gt"]),
                  needs=("train teacher-gt",))
        chain.run("w2s-qa labels", lambda: labels(qa_teacher, path["w2s-qa.jsonl"]), needs=(qa_step,))
        # Trained students.
        for method, source, needs in (("alice", path["alice.jsonl"], "student_generate"),
                                      ("w2s-cot", path["w2s-cot.jsonl"], "w2s-cot labels"),
                                      ("w2s-qa", path["w2s-qa.jsonl"], "w2s-qa labels")):
            chain.run(f"train student-{method}",
                      lambda m=method, s=source: train("--student", student_name, path[f"student-{m}"],
                                                       ["--train-file", s]), needs=(needs,))
        for method in ("ceiling", "alice", "w2s-cot", "w2s-qa"):
            chain.run(f"eval {method}", lambda m=method: evaluate_into(m, "--student", path[f"student-{m}"]),
                      needs=(f"train student-{method}",))
        engines.close()  # free the GPU for the cascade branch's last steps
        if branch is not None:
            branch_result = branch.join(chain)
        elif with_cascade:
            steps.cascade(chain)
        else:
            chain.failed["cascade"] = "no --midlevel (cascade Alice needs a mid model)"
    finally:
        engines.close()
        if branch is not None:
            branch.stop()
    return {"chain": chain, "branch": branch_result}

"""The paper's whole comparison for one dataset and model pair, in one run folder, ending with the
report: weak teacher, strong ceiling, zero-shot, original W2S (CoT- and answers-only teachers),
Alice, and cascade Alice (when a mid model is given).

The run is a table of steps (``experiment_steps``): each is the function its script calls with that
script's own config, built from this run's config (``alice.stages.cascade.derive``), so the run
folder holds the same JSONL, models and manifests a researcher gets running the scripts by hand
(each manifest records the command that reruns its step), and a rerun resumes every step (finished
ones cost nothing). ``--dry-run`` prints every step's command and full config. ``--gpus`` runs the same
table packed (``execute_packed``): every stage step as its script in a subprocess, as many at once as
the cards' memory shares allow.

Run folder layout::

    cot.jsonl                       stage 1: the base teacher's filtered CoT
    teacher-cot/ teacher-gt/ [teacher-qa/]   trained teachers (CoT; ground truth = weak; answers only)
    student-ceiling/                the student trained on its pool's ground truth
    uncertainty.jsonl alice.jsonl   Alice stages 3-5 (CoT teacher -> student)
    w2s-cot.jsonl w2s-qa.jsonl      original W2S labels (temperature 0.6)
    student-alice/ student-w2s-cot/ student-w2s-qa/
    cascade/stage<i>/...            cascade Alice (teacher-cot -> mid -> student)
    eval-<method>[-seed<N>].jsonl/.summary.json   weak, ceiling, zero-shot, each student arm, cascade
    held_out_templates/eval-*       --second-test: every model on the second test set
    gate.json                       --gate: the validity gate's verdict
    noise/ noise_floor.json         --noise-floor: the untrained student's reruns, and how often outcomes differ
    evidence.json                   what each arm trained on (targets right, checks) and each training's run
    report.md report.csv report.png experiment.json
    tensorboard/<step>/             --report-to tensorboard: train-<model>/, cascade/stage<i>/, eval-<method>/, report/
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from ..backends import cuda_available
from ..cli import (
    CheckSettings,
    GenerationSettings,
    ModelSettings,
    TeacherDataSettings,
    resolve_role,
    role,
    task_from_args,
)
from ..config import field_map, fingerprint_settings, like, setting, settings_dict
from ..deliverables import collect, restore
from ..engines import Engines
from ..errors import AliceError
from ..evidence import evidence
from ..gate import check_gate, decide, noise_floor
from ..models import SMALL_MODEL, drop_weights, has_weights, small_model_folder
from ..preload import StagePreloader
from ..records import atomic_write_json, complete_manifest, read_json, scrub
from ..report import build_report
from ..steps import Executor, Step, reordered, slug_name
from ..tasks import load_task
from ..tracking import Tracker, require
from .cascade import CascadeConfig, StagePassthrough, derive, run_cascade, stage_settings
from .common import slug, summary_path
from .evaluate import evaluated_name
from .student_generate import ALICE_STATEMENTS
from .uncertainty import merge_parts

EXPERIMENT = "experiment (unset values come from the preset)"
# Each student arm's training data: (the step that writes it, its file in the run folder).
ARM_DATA = {"alice": ("student_generate", "alice.jsonl"), "w2s_cot": ("w2s-cot labels", "w2s-cot.jsonl"),
            "w2s_qa": ("w2s-qa labels", "w2s-qa.jsonl"),
            "self_training": ("self-training labels", "self-training.jsonl"),
            "alice_no_statement": ("student_generate alice_no_statement", "alice-no-statement.jsonl"),
            "alice_structured": ("student_generate alice_structured", "alice-structured.jsonl")}
SECOND_TEST = "held_out_templates"  # --second-test's folder in the run folder
PRESET_MERGE = "{} (default: the preset's; these merge over it setting by setting)"
PACKED = "packed onto GPUs (--gpus)"


@dataclass(kw_only=True)
class ExperimentConfig(StagePassthrough, CheckSettings, GenerationSettings, ModelSettings, TeacherDataSettings):
    """experiment.py. It compares the methods on the whole student pool (the cascade splits it itself):
    --student-limit makes it smaller, --pool-part is not taken. No models at all: the embedded small one."""

    teacher: str | None = role("teacher")
    midlevel: str | None = role("midlevel")
    student: str | None = role("student")
    summarizer: str | None = role("summarizer")
    backend: str | None = like(GenerationSettings, "backend", None, help="auto = vllm where it imports, else "
                               "transformers (hf) (default: the preset's: transformers for the CPU demo, else auto)")
    max_new_tokens: int | None = like(GenerationSettings, "max_new_tokens", None)
    max_tries: int | None = like(CheckSettings, "max_tries", None, help=field_map(CheckSettings)["max_tries"].metadata[
        "help"] + " (default: the preset's: 0 for the CPU demo, 4 otherwise)")
    preset: str = setting("auto", "auto: demo for the embedded small model, paper for any other",
                          choices=["auto", "demo", "paper"], group=EXPERIMENT)
    student_limit: int | None = setting(None, "student-pool questions (0 = all); --limit is the teacher's half",
                                        group=EXPERIMENT)
    eval_limit: int | None = setting(None, "test questions to evaluate (0 = all)", group=EXPERIMENT)
    k: int | None = setting(None, "teacher samples per question (uncertainty)", group=EXPERIMENT)
    summarizer_max_new_tokens: int | None = setting(None, "tokens per uncertainty statement at most",
                                                    group=EXPERIMENT)
    arms: list[str] = setting(["alice", "w2s_cot", "w2s_qa"], "the student arms beside weak, ceiling and zero-shot: "
                              "original W2S (w2s_qa, w2s_cot), Alice, and the controls: self_training (the student "
                              "labels its pool itself, temperature 0.9), alice_no_statement (Alice's prompt without "
                              "the statement), alice_structured (a statement written by rule from the teacher's "
                              "clusters); cascade Alice comes with --midlevel", choices=list(ARM_DATA),
                              group=EXPERIMENT)
    seeds: list[int] = setting([0], "training seeds: weak, ceiling and every student arm are trained and evaluated "
                               "once per seed (eval-<arm>-seed<N>); the report pairs every seed of one arm with every "
                               "seed of the other (the cascade trains once)", group=EXPERIMENT)
    gate: bool = setting(False, "before any student arm trains, check that weak is above chance, the ceiling beats "
                         "it by --gate-min-gap with intervals apart and is not below zero-shot (seed means, intervals "
                         "resampling templates and seeds); a failed gate stops the student arms, gate.json says why",
                         group=EXPERIMENT)
    override_gate: bool = setting(False, "--gate: run the student arms even when it fails (gate.json, the report and "
                                  "its figure say so); for checking a pipeline, not for results", group=EXPERIMENT)
    gate_min_gap: float = setting(0.15, "the gap the gate asks of ceiling over weak (accuracy, 0-1; 0: no gap asked, "
                                  "nor intervals apart)", group=EXPERIMENT)
    gate_chance: float | None = setting(None, "accuracy of guessing, for the gate (default: 0.25 for multiple "
                                        "choice, ARC's four options; 0 for open answers)", group=EXPERIMENT)
    second_test: str | None = setting(None, "a second test set, every model evaluated on it beside the first: options "
                                      "added to --data (e.g. eval=held_out with gsm_symbolic:held_out=17, templates "
                                      "no training file contains), into <run>/held_out_templates/, a group of its "
                                      "own in the report", group=EXPERIMENT)
    weak_pool: str = setting("teacher", "whose ground truth weak is trained on: teacher (the teacher's own half, "
                             "the data the paper gives the teacher) or student (the student pool's, as the ceiling "
                             "and the reference code's base method)", choices=["teacher", "student"],
                             group=EXPERIMENT)
    noise_floor: bool = setting(False, "also evaluate the untrained student three more times, where only the batch "
                                "changes (the evaluation settings in chunks of --noise-chunk-size; twice plain "
                                "greedy, without batch-invariant kernels), and write noise_floor.json: how many "
                                "outcomes change run to run", group=EXPERIMENT)
    noise_chunk_size: int = setting(48, "--noise-floor: the reruns' chunk size (another batch composition)",
                                    group=EXPERIMENT)
    cascade: bool = setting(True, "skip cascade Alice", dest_flag="--no-cascade", group=EXPERIMENT)
    parallel_cascade: bool = setting(False, "run cascade Alice in a second process beside the other steps once "
                                     "the CoT teacher is trained (one GPU with room for two jobs; pair with "
                                     "--kv-cache-gb)", group=EXPERIMENT)
    uncertainty_args: dict[str, Any] = like(StagePassthrough, "uncertainty_args", {}, help=PRESET_MERGE.format(
        'uncertainty.py settings, e.g. "--embedder X" or --uncertainty.embedder X'))
    train_args: dict[str, Any] = like(StagePassthrough, "train_args", {}, help=PRESET_MERGE.format(
        'train.py settings, e.g. "--lora --max-steps 4" or --train.lora --train.max-steps 4'))
    # The evaluations' own engine settings apply (--eval.batch-invariant): they get an engine built with them.
    eval_args: dict[str, Any] = stage_settings("eval", "eval", 'eval.py settings, e.g. "--max-new-tokens 1024", '
                                               "--eval.max-new-tokens 1024 or --eval.batch-invariant", refused={})
    run_dir: str | None = setting(None, "folder for this run (default: runs/<settings>)", operational=True)
    report_to: list[str] = setting([], "also log to TensorBoard (<run-dir>/tensorboard) or W&B, one run per step: "
                                   "each training's losses, each evaluation's accuracy and parse rate, the report's "
                                   "PGR and paired differences (default: nowhere else)",
                                   choices=["tensorboard", "wandb"], operational=True)
    overwrite: bool = setting(False, "start every step over (each replaces its own outputs; other files in the "
                              "run folder stay)", operational=True)
    drop_weights: bool = setting(False, "delete a trained model's weights (*.safetensors; its manifest, config and "
                                 "tokenizer stay) once its evaluations are done, for long runs on a small disk (a rerun "
                                 "still resumes: its training and evaluations are complete); models that later steps "
                                 "read (the trained teachers) are kept", operational=True)
    dry_run: bool = setting(False, "print every step's command and full settings; run nothing, write nothing",
                            operational=True)
    results: str | None = setting(None, "also copy the run's deliverables, without model weights, into this folder "
                                  "at the end (report, gate, evidence, every manifest and summary, each "
                                  "evaluation's rows and every training file compressed; alice/deliverables.py): "
                                  "what a repository keeps (results/fair), and what --restore-from reads",
                                  operational=True)
    restore_from: str | None = setting(None, "first rebuild the run folder from deliverables that --results wrote "
                                       "(files already there are kept), so a run in parts resumes on a machine that "
                                       "kept nothing: finished steps cost nothing, a step that still needs a "
                                       "trained model whose weights are not there trains it again (the run folder's "
                                       "path must be the one the deliverables were made at)",
                                       operational=True)
    # Packed: the same table, each stage step its script's command, as many at once as the GPUs hold.
    gpus: str | None = setting(None, "run the steps as subprocesses, several at once where their shares of a "
                               "card's memory fit: GPU indices ('0' or '0,1'; vLLM engines then need --kv-cache-gb), "
                               "or 'none' for the CPU (--cpu-slots at once); logs in <run>/logs/, status in "
                               "<run>/steps.json (default: one step after another in this process, engines kept "
                               "alive across steps)", group=PACKED, operational=True)
    gpu_capacity: float = setting(0.95, "--gpus: the share of each card's memory the steps may fill together",
                                  group=PACKED, operational=True)
    share_train_student: float = setting(0.4, "--gpus: one student training's share of a card (a 1.5B full "
                                         "fine-tune at batch 16: ~50 GB of an H200's 141)", group=PACKED,
                                         operational=True)
    share_train_teacher: float = setting(0.12, "--gpus: one teacher, weak or mid-level training's share of a card",
                                         group=PACKED, operational=True)
    share_engine: float = setting(0.09, "--gpus: one generating or evaluating step's share (its engine: weights "
                                  "and --kv-cache-gb)", group=PACKED, operational=True)
    share_probe: float = setting(0.12, "--gpus: the probing step's share (uncertainty.py: the teacher's and the "
                                 "summarizer's engines)", group=PACKED, operational=True)
    cpu_slots: int = setting(2, "--gpus: steps without a GPU share running at once", group=PACKED, operational=True)
    probe_parts: int = setting(1, "--gpus: probe the pool in this many disjoint parts at once, each its own engine "
                               "(--share-probe each), merged into uncertainty.jsonl (one engine is host-bound: four "
                               "probed 3.6x as fast as one on an H200)", group=PACKED, operational=True)
    targets: list[str] | None = setting(None, "--gpus: run only what these steps need (names or shell patterns, e.g. "
                                        "gate 'train student-*-seed0'; a run in parts on a machine held for a "
                                        "while); the report covers what exists", group=PACKED, operational=True)
    eval_batches: bool = setting(False, "--gpus: evaluate each seed's trained student arms (both test sets) in one "
                                 "process and one engine, each next model's weights loaded into it as its "
                                 "training ends (the batch starts with the first), and every other model's two "
                                 "test sets in one engine (instead of an engine per evaluation)", group=PACKED,
                                 operational=True)
    preload_trainings: bool = setting(False, "--gpus: start each training as a child of one process that has "
                                      "imported torch, transformers, TRL, PEFT, datasets and accelerate (without "
                                      "CUDA), instead of a new Python process that imports them again (QLoRA "
                                      "trainings still start as their own process: bitsandbytes is left out)",
                                      group=PACKED, operational=True)


# The embedded default (CPU, minutes): small slices, few samples, two training steps per model. It runs
# every stage once and measures nothing, so each slice is the least that still exercises its code
# (bench/RESULTS.md has the timings on 2 cores): 4 questions per evaluation (the same code for each of the
# 7 models), 6 student-pool questions (3 per cascade stage), 64 new tokens (most of the 135M model's
# answers end by then; the CoT filter keeps 2 of its 16) but 100 for the probes, whose K=4 samples must
# parse for a question to come out uncertain (at 64 tokens 1 in 4 did and no question was uncertain: no
# statement, no proactive answer); one row per training step.
DEMO = {
    "limit": 16, "student_limit": 6, "eval_limit": 4, "k": 4, "max_new_tokens": 64,
    "summarizer_max_new_tokens": 48,
    # The 135M model's answers are mostly cut short or unparsable: checked, almost nothing would be
    # left to train on, so the demo keeps every completion as the reference code does.
    "max_tries": 0,
    # K=4 samples from a 135M model rarely agree twice: keep singleton clusters, or most questions
    # (and, on a cascade stage's half of the slice, all of them) have no teacher answer.
    "uncertainty_args": {"keep_singletons": True, "max_new_tokens": 100},
    # Full fine-tuning: vLLM on CPU serves LoRA adapters through a slow fallback kernel (per-token
    # gathered weights, padded to the engine's max rank), so trained models are plain folders here.
    "train_args": {"max_steps": 2, "total_batch_size": 1, "lr": 5e-5, "warmup_steps": 0, "max_length": 512,
                   "gradient_checkpointing": False, "logging_steps": 1},
}
# The paper's setting: every question, K=100, the paper's training recipe (train.py defaults).
PAPER = {"limit": None, "student_limit": None, "eval_limit": None, "k": 100, "max_new_tokens": 512,
         "summarizer_max_new_tokens": 256, "max_tries": 4, "uncertainty_args": {}, "train_args": {}}


def is_small_default(args: ExperimentConfig) -> bool:
    """Every model named is the embedded small model (by name, or its folder)."""
    def small(name: str) -> bool:
        if name.lower() == SMALL_MODEL:
            return True
        return Path(name).is_dir() and Path(name).resolve() == small_model_folder().resolve()

    names = [args.model, args.teacher, args.student, args.midlevel, args.summarizer]
    return all(n is None or small(n) for n in names)


def apply_preset(args: ExperimentConfig) -> ExperimentConfig:
    """Fill every option the user left unset from the preset (demo for the embedded small model)."""
    if args.model is None and not (args.teacher and args.student):
        args.model = SMALL_MODEL  # a role left unset is the embedded small model
    preset = args.preset
    if preset == "auto":
        preset = "demo" if is_small_default(args) else "paper"
    args.preset = preset
    values = DEMO if preset == "demo" else PAPER
    for key, value in values.items():
        if isinstance(value, dict):
            # A stage's settings merge key by key over the preset's (--train-args "--lr 3e-5" keeps the demo's
            # --max-steps 2).
            setattr(args, key, {**value, **getattr(args, key)})
        elif getattr(args, key) is None:
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


def run_folder(args: ExperimentConfig) -> Path:
    if args.run_dir:
        return Path(args.run_dir)
    parts = [args.data, args.model, args.teacher, args.midlevel if args.cascade else None, args.student,
             args.preset if args.preset == "demo" else None]
    return Path("runs") / "-".join(slug(str(x)) for x in parts if x)


# The run folder's shared files (models and training files are named per step: ARM_DATA, train()).
PATHS = ("cot.jsonl", "teacher-cot", "uncertainty.jsonl", "cascade")
CASCADE_STAGES = 2  # CoT teacher -> mid -> student


def share_adapters(args: ExperimentConfig) -> bool:
    # LoRA adapters share their base model's engine on GPU; on CPU vLLM's LoRA path is too slow.
    return bool(args.train_args.get("lora") or args.train_args.get("qlora")) and cuda_available()


def experiment_steps(args: ExperimentConfig, folder: Path, task, engines: Engines, executor: Executor) -> list[Step]:
    """The whole run as a table: every step with its stage config, in the order they run. Steps marked
    ``beside`` (the cascade and its evaluation) may run in a second process (--parallel-cascade)."""
    from .cot_generate_filter import CotConfig, cot_generate_filter
    from .evaluate import EvalConfig, evaluate
    from .student_generate import StudentGenerateConfig, student_generate
    from .train import TrainConfig, run_training
    from .uncertainty import UncertaintyConfig, uncertainty
    from .w2s_labels import W2SLabelsConfig, w2s_labels

    tracker = Tracker(args.report_to, folder)
    train_extra = args.train_args
    if args.report_to:  # --train-args --report-to wins
        train_extra = {**train_extra, "report_to": train_extra.get("report_to", list(args.report_to))}
    path = {name: str(folder / name) for name in PATHS}
    teacher_name, student_name = args.teacher or args.model, args.student or args.model
    teacher_ref = resolve_role(args, "teacher")
    summ_ref = resolve_role(args, "summarizer") if args.summarizer else None
    again = {"overwrite": args.overwrite}  # --overwrite: each step replaces its own outputs, nothing else

    def run_train(config: TrainConfig, step: str) -> dict:
        engines.before_training()
        with tracker.training(step):
            return run_training(config)

    def train(name: str, role_: str, model: str, needs: tuple[str, ...] = (), seed: int | None = None,
              **source) -> Step:
        """train.py into <run>/<name>/ (its step: "train <name>")."""
        step = f"train {name}"
        seed_setting = {} if seed is None else {"seed": seed}
        return Step(step, "train", derive(TrainConfig, args, train_extra, "--train-args", **again, **{role_: model},
                                          output_dir=str(folder / name), **seed_setting, **source),
                    lambda c: run_train(c, step), needs)

    def evaluation(method: str, role_: str, model: str, needs: tuple[str, ...] = (), beside: bool = False,
                   test_set: str | None = None, noise: tuple[str, dict, dict] | None = None) -> Step:
        """eval.py of one model; ``test_set``: on --second-test's set instead, into its folder; ``noise``:
        a --noise-floor rerun (its name, eval settings and what it sets) into <run>/noise/."""
        # The test split is never shuffled: EvalConfig has no --split-seed.
        output = folder / (SECOND_TEST if test_set else "") / f"eval-{method}.jsonl"
        stage, values = args.eval_args, {}
        if noise:
            output, stage, values = folder / "noise" / f"{noise[0]}.jsonl", noise[1], noise[2]
        config = derive(EvalConfig, args, stage, "--eval-args", **again, **{role_: model}, **values,
                        limit=args.eval_limit, output=str(output), **({"data": test_set} if test_set else {}))
        name = f"eval {method}" + (f" ({SECOND_TEST})" if test_set else "") + (f" (noise {noise[0]})" if noise else "")

        def run_eval(c: EvalConfig) -> dict:
            summary = evaluate(c, engines.handle(resolve_role(c, role_), c))  # --eval's engine settings apply
            tracker.evaluation(name.removeprefix("eval "), summary)
            return summary

        return Step(name, "eval", config, run_eval, needs, beside=beside)

    def evaluated(method: str, role_: str, model: str, needs: tuple[str, ...] = (), beside: bool = False) -> list[Step]:
        """A model's evaluation and, with --second-test, its twin on the second test set right after."""
        first = evaluation(method, role_, model, needs, beside)
        if not args.second_test:
            return [first]
        return [first, evaluation(method, role_, model, (first.name,), beside, second_test_data(args))]

    def labels(name: str, teacher_dir: str, output: str, needs: tuple[str, ...], **sampling) -> Step:
        config = derive(W2SLabelsConfig, args, **again, teacher=teacher_dir, limit=args.student_limit,
                        output=str(folder / output), **sampling)
        return Step(name, "w2s_labels", config,
                    lambda c: w2s_labels(c, engines.handle(resolve_role(c, "teacher"))), needs)

    def proactive(arm: str) -> Step:
        statement = ALICE_STATEMENTS[arm]
        name, output = ARM_DATA[arm]
        return Step(name, "student_generate", derive(
            StudentGenerateConfig, args, args.generate_args, "--generate-args", **again, student=student_name,
            uncertainty=path["uncertainty.jsonl"], limit=args.student_limit, output=str(folder / output),
            **({} if statement == "summarizer" else {"statement": statement})),
            lambda c: student_generate(c, engines.handle(resolve_role(c, "student"))), ("uncertainty",))

    def cascade_step(config: CascadeConfig) -> dict:
        with tracker.training("cascade"):  # each stage's training: its own run inside (cascade stage1, ...)
            return run_cascade(config, engines)

    def probe(config: UncertaintyConfig) -> dict:
        # --uncertainty.vllm-runner: the probing's engines are built with it (own settings), as in a packed run
        summ_backend = engines.handle(summ_ref, config) if summ_ref and not config.summarizer_base_url else None
        return uncertainty(config, engines.handle(resolve_role(config, "teacher"), config), summ_backend)

    # The answers-only teacher equals the weak one where the ground truth has no rationales (ARC).
    teacher_examples = task.examples("teacher", args.split_seed, args.limit)
    qa_is_weak = args.weak_pool == "teacher" and all(
        task.ground_truth_response(ex, True) == task.ground_truth_response(ex, False) for ex in teacher_examples)
    weak_limit = args.limit if args.weak_pool == "teacher" else args.student_limit

    # Training seeds: one seed keeps the plain names (student-alice/, eval-alice); several name each model
    # and evaluation by its seed (student-alice-seed1/, eval-alice-seed1).
    seeds = list(dict.fromkeys(args.seeds)) or [0]
    several = seeds != [0]

    def seeded(name: str, seed: int) -> str:
        return f"{name}-seed{seed}" if several else name

    def seed_of(seed: int) -> int | None:
        return seed if several else None

    arms = [arm for arm in ARM_DATA if arm in args.arms]  # the table's order, whatever order they were given in
    weak_dir = seeded("teacher-gt", seeds[0])
    qa_teacher, qa_step = (weak_dir, f"train {weak_dir}") if qa_is_weak else ("teacher-qa", "train teacher-qa")
    steps = [
        # Stage 1 (a bad model or dataset stops the run here, before anything else is spent).
        Step("cot_generate_filter", "cot_generate_filter",
             derive(CotConfig, args, **again, teacher=teacher_name, limit=args.limit, output=path["cot.jsonl"]),
             lambda c: cot_generate_filter(c, engines.handle(teacher_ref))),
        # Trained teachers and the ceiling (no engine needed).
        train("teacher-cot", "teacher", teacher_name, ("cot_generate_filter",), train_file=path["cot.jsonl"]),
        *(train(seeded("teacher-gt", s), "teacher", teacher_name, seed=seed_of(s), ground_truth=True,
                pool=args.weak_pool, limit=weak_limit) for s in seeds),
    ]
    if "w2s_qa" in arms and not qa_is_weak:
        steps.append(train("teacher-qa", "teacher", teacher_name, ground_truth=True, no_rationale=True,
                           pool="teacher", limit=args.limit))
    steps += [train(seeded("student-ceiling", s), "student", student_name, seed=seed_of(s), ground_truth=True,
                    pool="student", limit=args.student_limit) for s in seeds]
    if "w2s_cot" in arms:  # the CoT teacher's labels
        steps.append(labels("w2s-cot labels", path["teacher-cot"], "w2s-cot.jsonl", ("train teacher-cot",)))
    if any(arm in ALICE_STATEMENTS for arm in arms):  # the CoT teacher's uncertainty
        steps.append(Step("uncertainty", "uncertainty", derive(
            UncertaintyConfig, args, args.uncertainty_args, "--uncertainty-args", **again, teacher=path["teacher-cot"],
            summarizer=args.summarizer, limit=args.student_limit, k=args.k,
            summarizer_max_new_tokens=args.summarizer_max_new_tokens, output=path["uncertainty.jsonl"]),
            probe, ("train teacher-cot",)))
    # The untrained student (often also the summarizer, whose engine is still up): zero-shot baseline,
    # then Alice's proactive answers and the student's own labels.
    steps += evaluated("zero-shot", "student", student_name)
    steps += [proactive(arm) for arm in arms if arm in ALICE_STATEMENTS]
    if "self_training" in arms:
        steps.append(labels("self-training labels", student_name, "self-training.jsonl", (), temperature=0.9))
    steps += [step for s in seeds for step in evaluated(
        seeded("weak", s), "teacher", str(folder / seeded("teacher-gt", s)), (f"train {seeded('teacher-gt', s)}",))]
    if "w2s_qa" in arms:
        steps.append(labels("w2s-qa labels", str(folder / qa_teacher), "w2s-qa.jsonl", (qa_step,)))
    ceiling_evals = [step for s in seeds for step in evaluated(
        seeded("ceiling", s), "student", str(folder / seeded("student-ceiling", s)),
        (f"train {seeded('student-ceiling', s)}",))]
    gate: tuple[str, ...] = ()
    if args.gate:  # the frame is checked before any student arm trains
        steps += ceiling_evals
        steps.append(Step("gate", action=lambda: check_run_gate(args, folder, task, seeds, seeded), needs=(
            "eval zero-shot", *(f"eval {seeded(n, s)}" for n in ("weak", "ceiling") for s in seeds))))
        gate = ("gate",)
    # Trained students and their evaluations, seed by seed (a run cut short has whole seeds).
    for s in seeds:
        for arm in arms:
            data_step, data_file = ARM_DATA[arm]
            steps.append(train(seeded(f"student-{arm.replace('_', '-')}", s), "student", student_name,
                               (data_step, *gate), seed=seed_of(s), train_file=str(folder / data_file)))
        if not args.gate and s == seeds[0]:
            steps += ceiling_evals
        for arm in arms:
            model = seeded(f"student-{arm.replace('_', '-')}", s)
            steps += evaluated(seeded(arm.replace("_", "-"), s), "student", str(folder / model), (f"train {model}",))
    if args.noise_floor:
        # The untrained student again where only the batch changes: with the evaluation settings in other
        # chunks, and twice plain greedy (the second in other chunks too).
        chunked = {"chunk_size": args.noise_chunk_size}
        rest = {k: v for k, v in args.eval_args.items() if k != "chunk_size"}
        plain = {k: v for k, v in rest.items() if k != "batch_invariant"}
        reruns = [("rerun", rest, chunked), ("plain-a", plain, {"batch_invariant": False}),
                  ("plain-b", plain, {"batch_invariant": False, **chunked})]
        steps += [evaluation("zero-shot", "student", student_name, noise=n) for n in reruns]
        steps.append(Step("noise floor", action=lambda: write_noise_floor(folder), needs=(
            "eval zero-shot", *(f"eval zero-shot (noise {n[0]})" for n in reruns))))
    if args.cascade and args.midlevel:
        # Cascade Alice (CoT teacher -> mid -> student, on disjoint parts of the same question budget).
        per_stage = max(1, math.ceil(args.student_limit / CASCADE_STAGES)) if args.student_limit else None
        config = derive(CascadeConfig, args, **again, ladder=[path["teacher-cot"], args.midlevel, student_name],
                        summarizer=args.summarizer, k=args.k, output_dir=path["cascade"], limit=per_stage,
                        uncertainty_args={"summarizer_max_new_tokens": args.summarizer_max_new_tokens,
                                          **args.uncertainty_args},
                        generate_args=args.generate_args, train_args=train_extra)
        final_model = str(Path(path["cascade"]) / f"stage{CASCADE_STAGES}" / "model")
        steps += [
            # The cascade's config holds its stages' settings as mappings, as the run's own (its rerun
            # command writes them as --train-args and the like).
            Step("cascade", "cascade", config, cascade_step,
                 ("train teacher-cot",), plan=lambda c: run_cascade(c, engines, executor),
                 beside=True),
            *evaluated("cascade", "student", final_model, ("cascade",), beside=True),
        ]
    return with_weight_drops(steps) if args.drop_weights else steps


def second_test_data(args: ExperimentConfig) -> str:
    """--data with --second-test's options added."""
    return args.data + ("," if ":" in args.data else ":") + args.second_test


def write_evidence(args: ExperimentConfig, folder: Path, task) -> dict:
    """evidence.json: what each arm trained on (targets right, checks, rows judged again) and whether each
    training reached its learning rate (``alice.evidence``)."""
    arms = [arm for arm in ARM_DATA if arm in args.arms]
    models = sorted(m for m in folder.glob("*/manifest.json") if m.parent.name.startswith(("teacher-", "student-")))
    result = evidence(folder, task, {arm: folder / ARM_DATA[arm][1] for arm in arms}, models,
                      limit=args.student_limit, split_seed=args.split_seed)
    atomic_write_json(folder / "evidence.json", result)
    return result


def write_noise_floor(folder: Path) -> dict:
    """--noise-floor's verdict (noise_floor.json, which the report quotes)."""
    result = noise_floor(folder, "zero-shot")
    atomic_write_json(folder / "noise_floor.json", result)
    print(f"noise floor: {result['eval_settings']['outcomes_differ']} of {result['eval_settings']['n']} outcomes "
          f"differ between two evaluations of the untrained student", flush=True)
    return result


def check_run_gate(args: ExperimentConfig, folder: Path, task, seeds: list[int], seeded) -> dict:
    """--gate: the verdict on weak, ceiling and zero-shot (gate.json); a failed gate fails this step, so the
    student arms that need it are skipped."""
    chance = args.gate_chance
    if chance is None:
        chance = 0.25 if task.answer_type == "choice" else 0.0  # ARC's four options; open answers: none
    gate = check_gate(folder, [seeded("weak", s) for s in seeds], [seeded("ceiling", s) for s in seeds], "zero-shot",
                      chance=chance, min_gap=args.gate_min_gap, intervals_apart=args.gate_min_gap > 0)
    return decide({**gate, "seeds": {"weak": seeds, "ceiling": seeds}}, folder, args.override_gate)


def cascade_process(args: ExperimentConfig, folder: str, result_path: str) -> None:
    """The cascade steps in their own process (``--parallel-cascade``): own engines, own executor; what
    happened goes to ``result_path`` for the main process to merge."""
    import signal
    import sys

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so the engines shut down
    engines = Engines(args, share_adapters=share_adapters(args))
    executor = Executor(prefix="cascade process ")
    try:
        for step in experiment_steps(args, Path(folder), task_from_args(args), engines, executor):
            if step.beside:
                executor.run(step)
    finally:
        engines.close()
        atomic_write_json(result_path, {"timings_s": executor.timings, "failed": executor.failed,
                                        "engine_starts": engines.starts, "pid": os.getpid()})


class CascadeBranch:
    """Runs ``cascade_process`` beside the main steps once the CoT teacher exists."""

    def __init__(self, args: ExperimentConfig, folder: Path) -> None:
        import multiprocessing

        self.result_path = folder / "cascade-process.json"
        self.result_path.unlink(missing_ok=True)
        # spawn: a fresh interpreter (CUDA and vLLM's engine processes do not survive fork)
        self.process = multiprocessing.get_context("spawn").Process(
            target=cascade_process, args=(args, str(folder), str(self.result_path)), name="alice-cascade")
        self.process.start()
        print(f"== cascade runs beside the other steps (process {self.process.pid})", flush=True)

    def join(self, executor: Executor) -> dict:
        self.process.join()
        if self.result_path.exists():
            result = read_json(self.result_path)
        else:
            result = {"timings_s": {}, "engine_starts": [], "pid": self.process.pid,
                      "failed": {"cascade": f"cascade process exited with code {self.process.exitcode}"}}
        executor.timings.update({f"{k} (parallel)": v for k, v in result["timings_s"].items()})
        executor.failed.update(result["failed"])
        return result

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(60)


def execute(args: ExperimentConfig, folder: Path, steps: list[Step], executor: Executor, engines: Engines) -> dict:
    """Every step of the table in order. The first one's failure stops the run (nothing else could
    work); with --parallel-cascade the ``beside`` steps start in a second process as soon as what they
    need is done."""
    branch: CascadeBranch | None = None
    branch_result: dict = {}
    parallel = args.parallel_cascade and not executor.dry_run
    beside = [s for s in steps if s.beside] if parallel else []
    executor.total = executor.total or len(steps) - 1 - len(beside)  # the first step runs before the count
    try:
        if executor.dry_run:
            print("== [0] " + steps[0].name)
        executor.results["cot"] = executor.call(steps[0])
        for step in steps[1:]:
            if step in beside:
                continue
            if step.beside and step is next(s for s in steps if s.beside):
                engines.close()  # free the GPU for the cascade's steps
            executor.run(step)
            if beside and branch is None:
                needs = beside[0].needs
                if all(n in executor.results for n in needs):
                    branch = CascadeBranch(args, folder)
                elif any(n in executor.failed for n in needs):
                    for waiting in beside:
                        executor.failed[waiting.name] = f"needs {', '.join(needs)}"
                    beside = []
        engines.close()
        if branch is not None:
            branch_result = branch.join(executor)
        elif args.cascade and not args.midlevel:
            executor.failed["cascade"] = "no --midlevel (cascade Alice needs a mid model; --no-cascade: not asked)"
    finally:
        engines.close()
        if branch is not None:
            branch.stop()
    return branch_result


def with_weight_drops(steps: list[Step]) -> list[Step]:
    """--drop-weights: each trained model read only by its evaluations (a chain: each evaluation after the
    one before) loses its weights once the last of them succeeded."""
    trained = {Path(s.config.output_dir): s.name for s in steps if s.script == "train"}

    def reads(step: Step, folder: Path) -> bool:
        if step.config is None or step.name == trained[folder]:
            return False
        values = [v for v in settings_dict(step.config).values() if isinstance(v, str)]
        return any(v == str(folder) or v.startswith(f"{folder}/") for v in values)

    after: dict[str, Path] = {}
    for folder in trained:
        readers = [s for s in steps if reads(s, folder)]
        chained = all(a.name in b.needs for a, b in pairwise(readers))
        if readers and chained and all(s.script == "eval" for s in readers):
            after[readers[-1].name] = folder
    return [replace(s, after=lambda folder=after[s.name]: drop_weights(folder)) if s.name in after else s
            for s in steps]


def packed_steps(args: ExperimentConfig, folder: Path, steps: list[Step]) -> list[Step]:
    """The table for --gpus: every stage step as a subprocess running its script with its config's command
    (the one its manifest records), with its share of a card; checks and summaries stay in this process."""
    on_gpu = gpu_list(args) != []

    def share(step: Step) -> float:
        if not on_gpu or step.config is None:
            return 0.0
        if step.script == "train":
            return args.share_train_student if getattr(step.config, "student", None) else args.share_train_teacher
        if step.script == "cascade":  # trains students and runs engines, one after another
            return max(args.share_train_student, args.share_probe)
        return args.share_probe if step.script == "uncertainty" else args.share_engine

    # A GPU step can fail for memory other processes held at that moment: once more (each stage resumes).
    # A finished step starts no process at all (a run in parts resumes in seconds).
    packed = [replace(step, run=None, gpu=share(step), retries=1 if on_gpu else 0, beside=False,
                      done=lambda step=step: finished_as_configured(step))
              if step.config is not None else step for step in steps]
    if args.probe_parts > 1:
        packed = probe_in_parts(args, packed)
    if args.eval_batches:
        packed = batch_evaluations(args, folder, packed)
    return packed if args.overwrite else training_done(packed)


def probe_in_parts(args: ExperimentConfig, steps: list[Step]) -> list[Step]:
    """--probe-parts N: the probing step as N steps on disjoint parts of the pool (``--pool-part i/N``, each
    into uncertainty-p<i>.jsonl), then ``uncertainty`` merges them (pool order, counts summed), so every step
    that needs it is unchanged."""
    out: list[Step] = []
    for step in steps:
        if step.name != "uncertainty" or step.script != "uncertainty":
            out.append(step)
            continue
        if step.config.limit:  # a part is a slice of the whole pool, cut before the limit
            raise AliceError("--probe-parts splits the whole student pool: leave out the question limit "
                             f"(--student-limit, the preset's {step.config.limit}) or probe in one part")
        n = args.probe_parts
        whole = Path(step.config.output)
        outputs = [whole.with_name(f"{whole.stem}-p{i}.jsonl") for i in range(1, n + 1)]
        parts = [replace(step, name=f"uncertainty {i}/{n}", config=replace(step.config, pool_part=f"{i}/{n}",
                                                                           output=str(output)))
                 for i, output in enumerate(outputs, start=1)]
        # Each part is done by its own output, not the whole's (the step it was copied from checks that one).
        parts = [replace(part, done=lambda part=part: finished_as_configured(part)) if part.done else part
                 for part in parts]
        out += [*parts, Step("uncertainty", action=lambda outputs=outputs, whole=whole: merge_parts(outputs, whole),
                             needs=tuple(p.name for p in parts),
                             done=lambda parts=parts, whole=whole: merged(parts, whole))]
    return out


def merged(parts: list[Step], whole: Path) -> bool:
    """The probing parts' merge is done when its output is complete and every part is, as configured (the parts'
    own rows are not kept in a run's deliverables: a restored run has the merged file only)."""
    return (complete_manifest(whole) is not None and whole.is_file()
            and all(finished_as_configured(part) for part in parts))


def batch_evaluations(args: ExperimentConfig, folder: Path, steps: list[Step]) -> list[Step]:
    """--eval-batches: the evaluations of each seed's trained student arms (the trainings named
    ``train student-<arm>``, the ceiling aside) become one step, ``eval seed<N> arms``, and every other
    model's two test sets one step, ``eval <model> (both test sets)``, each running
    ``python -m alice.stages.evaluate`` on their configs (written to <run>/logs/ when the run starts):
    one engine, each next model's weights loaded into it. Each evaluation still writes its own output
    and manifest, whose rerun is its eval.py command."""
    by_name = {step.name: step for step in steps}
    arm_trainings = {f"train student-{arm.replace('_', '-')}" for arm in args.arms}

    def training_of(step: Step) -> Step | None:
        for need in step.needs:
            if need.rsplit("-seed", 1)[0] in arm_trainings:
                return by_name[need]
            if by_name.get(need) is not None and by_name[need].script == "eval":
                return training_of(by_name[need])
        return None

    batches: dict[int, list[Step]] = {}
    for step in steps:
        training = training_of(step) if step.script == "eval" else None
        if training is not None:
            batches.setdefault(training.config.seed, []).append(step)
    batch_of = {step.name: f"eval seed{seed} arms" for seed, group in batches.items() for step in group}
    first_of = {group[0].name: group for group in batches.values()}  # a batch takes its first member's place
    # Every other model's evaluation on the second test set joins its first: one engine start, not two, and
    # the gate's models ready one start sooner. The noise floor's reruns keep engines of their own.
    for step in steps:
        if step.script != "eval" or step.name in batch_of:
            continue
        followers = [s for s in steps if s.script == "eval" and step.name in s.needs and s.name not in batch_of]
        if followers:
            group = [step, *followers]
            batch_of.update((s.name, f"{step.name} (both test sets)") for s in group)
            first_of[step.name] = group
    trained_by = {str(s.config.output_dir): s.name for s in steps if s.script == "train" and s.config is not None}

    @cache
    def depth(name: str) -> int:  # steps in the longest chain of needs before it: what trains early comes first
        return 1 + max((depth(n) for n in by_name[name].needs if n in by_name), default=0)

    out: list[Step] = []
    for step in steps:
        if step.name not in batch_of:
            needs = tuple(dict.fromkeys(batch_of.get(n, n) for n in step.needs))
            out.append(replace(step, needs=needs) if needs != step.needs else step)
        elif step.name in first_of:
            out.append(batch_step(args, folder, batch_of[step.name], first_of[step.name], batch_of, trained_by, depth))
    # Each seed's arm trainings listed in the order its batch evaluates them (fewest steps before their training
    # first): ready at once, steps start in table order, so the batch, which starts once its first model is
    # trained, finds that model trained first and each next one in turn (not Alice's first, as the arms are given).
    for group in batches.values():
        position = {step.name: i for i, step in enumerate(out)}
        trainings = dict.fromkeys(training_of(step).name for step in group)
        out = reordered(out, sorted(trainings, key=lambda name: (depth(name), position[name])))
    return out


def batch_step(args: ExperimentConfig, folder: Path, name: str, group: list[Step], batch_of: dict[str, str],
               trained_by: dict[str, str], depth: Callable[[str], int]) -> Step:
    """One ``eval seed<N> arms`` step: its evaluations' configs listed in <run>/logs/ (when the run starts),
    run by ``python -m alice.stages.evaluate``; it needs what they need outside the batch. Its models come in
    the order they can be trained (fewest steps before their training first: the arms whose labels need no
    probing before Alice's), and it starts once the first is trained and evaluates each later one as its
    training ends (the engine's start and the evaluations overlap the trainings still running, instead of
    following the last of them). ``trained_by``: the training step that writes each model folder."""
    listing = folder / "logs" / f"{slug_name(name)}.json"
    # Evaluations already done (an earlier part) stay out: their models' weights may be gone, and they cost nothing.
    pending = [s for s in group if args.dry_run or not finished_as_configured(s)]
    done_before = not pending and listing.is_file()  # its listing says what ran: kept as it is
    pending = pending or group
    models = list(dict.fromkeys(evaluated_name(s.config) for s in pending))  # a model's two test sets stay together
    rank = {m: (depth(trained_by[m]) if m in trained_by else 0, i) for i, m in enumerate(models)}
    pending.sort(key=lambda s: rank[evaluated_name(s.config)])
    needs = tuple(dict.fromkeys(n for s in pending for n in s.needs if n not in batch_of))
    later = [m for m in sorted(models, key=rank.get)[1:] if m in trained_by]
    if not args.dry_run and not done_before:
        listing.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(listing, {"evaluations": [settings_dict(s.config) for s in pending], "wait_for": later})
    hooks = [s.after for s in group if s.after is not None]
    return Step(name, helper=[sys.executable, "-m", "alice.stages.evaluate", str(listing)], needs=needs,
                gpu=group[0].gpu, retries=group[0].retries,
                starts_after=tuple(n for n in needs if n not in {trained_by[m] for m in later}) if later else None,
                done=lambda: all(finished_as_configured(s) for s in group),
                after=(lambda: [hook() for hook in hooks]) if hooks else None)


TRAINING_SCRIPTS = ("train", "cascade")  # steps whose output is a model (the cascade's: its last stage's)


def trained_model(step: Step) -> Path:
    """The folder of the model a training step writes (a cascade: its last stage's model)."""
    output = Path(step.config.output_dir)
    if step.script == "cascade":
        stages = sorted(output.glob("stage*/model"), key=lambda p: int(p.parent.name.removeprefix("stage") or 0))
        return stages[-1] if stages else output / "model"
    return output


def finished_as_configured(step: Step, need_weights: bool = True) -> bool:
    """A stage step whose output's manifest says complete, written with the same result-defining settings
    (operational ones may differ, as when the stage resumes itself); an evaluation also needs its summary, a
    training its model's weights (unless ``need_weights`` is false: see ``training_done``)."""
    output = getattr(step.config, "output", None) or getattr(step.config, "output_dir", None)
    if not output or (step.script == "eval" and not summary_path(Path(output)).is_file()):
        return False
    if need_weights and step.script in TRAINING_SCRIPTS and not has_weights(trained_model(step)):
        return False  # dropped once evaluated, or restored without weights (``training_done``)
    manifest = complete_manifest(output)
    if manifest is None or not isinstance(manifest.get("args"), dict):
        return False
    current = json.loads(json.dumps(scrub(settings_dict(step.config)), default=str))
    return all(manifest["args"].get(key) == current.get(key) for key in fingerprint_settings(step.config))


def restore_run(results: str, folder: Path) -> None:
    """--restore-from: the run folder rebuilt from deliverables of a run at the same path (its steps' settings
    name their files by path, so elsewhere every step would run again)."""
    info = Path(results) / "experiment.json"
    made_at = read_json(info).get("run_dir") if info.is_file() else None
    if not made_at:
        raise AliceError(f"--restore-from {results}: not deliverables of an experiment.py run (no run_dir in its "
                         "experiment.json); a run resumes only from what experiment.py --results wrote")
    if Path(made_at).resolve() != folder.resolve():
        raise AliceError(f"--restore-from {results}: its run was made at {made_at}, not {folder}; its steps' "
                         f"settings name files by path: give --run-dir {made_at}")
    print(f"restored {restore(results, folder)} files from {results} into {folder}", flush=True)


def training_done(steps: list[Step]) -> list[Step]:
    """Each training step done when its model is trained as configured and either still has its weights or every
    step that reads it is done: a model whose weights were dropped once evaluated (--drop-weights), or that came
    back from deliverables without them (--restore-from), is trained again only for a reader that is not done."""
    readers = {s.name: [r for r in steps if s.name in r.needs] for s in steps}

    def reader_done(reader: Step) -> bool:
        if reader.done is not None:
            return reader.done()
        return reader.config is not None and finished_as_configured(reader)

    def done(step: Step) -> bool:
        return finished_as_configured(step) or (
            finished_as_configured(step, need_weights=False) and all(reader_done(r) for r in readers[step.name]))

    return [replace(s, done=lambda s=s: done(s)) if s.script in TRAINING_SCRIPTS and s.config is not None else s
            for s in steps]


def gpu_list(args: ExperimentConfig) -> list[str]:
    """--gpus as card indices ([] for 'none': subprocesses on the CPU)."""
    text = (args.gpus or "").strip()
    return [] if text.lower() in ("", "none", "cpu") else [g.strip() for g in text.split(",") if g.strip()]


def check_packing(args: ExperimentConfig) -> None:
    """Engines that share a card need a fixed KV cache (vLLM otherwise takes most of the card's memory)."""
    if gpu_list(args) and args.backend != "hf" and args.kv_cache_gb is None:
        raise AliceError("--gpus runs several engines on one card: give --kv-cache-gb (each engine's KV cache, "
                         "e.g. 6) or --backend hf")
    if args.probe_parts < 1:
        raise AliceError(f"--probe-parts must be 1 or more, got {args.probe_parts}")
    if gpu_list(args) and args.tensor_parallel_size > 1:
        raise AliceError("--gpus places every step on one card: --tensor-parallel-size needs the in-process mode "
                         "(leave out --gpus)")
    for name in ("gpu_capacity", "share_train_student", "share_train_teacher", "share_engine", "share_probe"):
        if not 0 < getattr(args, name) <= 1:
            raise AliceError(f"--{name.replace('_', '-')} must be in (0, 1], got {getattr(args, name)}")


def chosen_targets(args: ExperimentConfig, table: list[Step]) -> list[str]:
    """--targets as step names (patterns matched against the table); every step when not given."""
    names = [step.name for step in table]
    if not args.targets:
        return names
    chosen: list[str] = []
    for pattern in args.targets:
        matched = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not matched:
            raise AliceError(f"--targets {pattern!r} matches no step (--dry-run lists them)")
        chosen += [n for n in matched if n not in chosen]
    return chosen


def prepare_models(args: ExperimentConfig) -> None:
    """--gpus: a model that must be fetched or converted first (a GGUF file, the demo's model) is, once,
    here, before steps that start at once each try to convert it."""
    for role_name in ("teacher", "student", "summarizer", "midlevel"):
        if getattr(args, role_name, None):
            try:
                resolve_role(args, role_name)
            except AliceError:
                pass  # the steps that use it say what is wrong, each in its own log


def execute_packed(args: ExperimentConfig, folder: Path, steps: list[Step]) -> Executor:
    """--gpus: the table's steps started as soon as what they need is done and a card has room."""
    table = packed_steps(args, folder, steps)
    preloader = StagePreloader() if args.preload_trainings and not args.dry_run else None
    executor = Executor(table, gpus=gpu_list(args), log_dir=folder / "logs", capacity=args.gpu_capacity,
                        cpu_slots=args.cpu_slots, status_path=folder / "steps.json", dry_run=args.dry_run,
                        preloader=preloader)
    executor.make(chosen_targets(args, table))
    if args.cascade and not args.midlevel and not args.dry_run:
        executor.failed["cascade"] = "no --midlevel (cascade Alice needs a mid model; --no-cascade: not asked)"
    return executor


def run_experiment(args: ExperimentConfig) -> dict:
    started = time.time()
    args = apply_preset(args)
    if not args.dry_run:
        require(args.report_to)  # a logging backend that is not installed stops the run before anything is spent
    folder = run_folder(args)
    packed = args.gpus is not None
    packed_only = [flag for flag, given in (("--probe-parts", args.probe_parts != 1), ("--eval-batches",
                   args.eval_batches), ("--targets", bool(args.targets)), ("--preload-trainings",
                   args.preload_trainings)) if given]
    if packed_only and not packed:
        raise AliceError(f"{', '.join(packed_only)}: only with --gpus (one step after another, a run keeps its "
                         "engines between steps instead)")
    if packed:
        check_packing(args)
        if gpu_list(args) and not args.dry_run and not cuda_available():
            # a dry run may plan for another machine; a run would put every "GPU" step on the CPU unasked
            raise AliceError(f"--gpus {args.gpus}: this machine has no GPU that torch can use (--gpus none: the "
                             "steps as subprocesses on the CPU; --dry-run: plan for another machine)")
        folder = folder.resolve()  # its steps run from the checkout's root, wherever this was started
    executor = Executor(dry_run=args.dry_run)
    if args.dry_run:
        print(f"dry run: {folder} (nothing is run or written)")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        if args.restore_from:
            restore_run(args.restore_from, folder)
    task = task_from_args(args)
    if args.second_test:
        load_task(second_test_data(args), args.answer_type)  # a bad spec stops the run before anything is spent
    teacher_name, student_name = args.teacher or args.model, args.student or args.model
    if not teacher_name or not student_name:
        raise AliceError("give --model (and --teacher/--student sizes), or --teacher and --student")
    teacher_ref, student_ref = resolve_role(args, "teacher"), resolve_role(args, "student")
    if args.summarizer:
        resolve_role(args, "summarizer")  # a bad name stops the run before anything is spent
    note = ""
    if teacher_ref == student_ref:
        note = (f"Note: teacher and student are the same base model ({teacher_ref.source or teacher_ref.path}); "
                "this run checks the pipeline end to end, it does not measure weak-to-strong generalization.")
        print(note, flush=True)
    if args.dry_run:
        engines = Engines(args, share_adapters=False)  # hands out handles only: no engine starts
        steps = experiment_steps(args, folder, task, engines, executor)
        if packed:
            executor = execute_packed(args, folder, steps)
        else:
            execute(args, folder, steps, executor, engines)
        print(f"dry run: {len(steps)} steps ({len(executor.planned)} stage commands), nothing run")
        return {"dry_run": True, "run_dir": str(folder), "steps": executor.planned, "failed": executor.failed}
    with_cascade = bool(args.cascade and args.midlevel)
    info = {"dataset": task.name, "teacher_label": teacher_name, "student_label": student_name,
            "midlevel": args.midlevel if with_cascade else None, "preset": args.preset, "note": note,
            "run_dir": str(folder), "data_description": task.describe()}
    info_path = folder / "experiment.json"
    attempts = (read_json(info_path).get("attempts", 1) + 1) if info_path.exists() and not args.overwrite else 1
    # The settings go in now: the report, built before the final write, reads the run's arms from them.
    atomic_write_json(info_path, {**info, "status": "running", "attempts": attempts, "settings": settings_dict(args)})
    if args.second_test:  # the report's second group: its title and note
        atomic_write_json(folder / SECOND_TEST / "experiment.json",
                          {**info, "settings": settings_dict(args), "dataset": f"{task.name} ({args.second_test})",
                           "note": (note + " " if note else "") + f"Second test set: --data {args.data} with "
                                   f"{args.second_test}."})

    engines = Engines(args, share_adapters=share_adapters(args) and not packed)
    steps = experiment_steps(args, folder, task, engines, executor)
    if packed:  # the engines here stay unused: each step's process starts its own
        prepare_models(args)
        executor, branch_result = execute_packed(args, folder, steps), {}
    else:
        branch_result = execute(args, folder, steps if args.overwrite else training_done(steps), executor, engines)
    try:  # before the report, which quotes it
        write_evidence(args, folder, task)
    except Exception as err:  # noqa: BLE001 - the report and experiment.json still get written
        executor.failed["evidence"] = f"{type(err).__name__}: {err}"
    report = build_report(folder)
    Tracker(args.report_to, folder).report(report)
    wall = round(time.time() - started, 1)
    result = {**info, "status": "complete" if not executor.failed else "incomplete",
              "cot": executor.results.get("cot"), "failed": executor.failed, "timings_s": executor.timings,
              "engine_starts": engines.starts + branch_result.get("engine_starts", []),
              "cascade_process": {"pid": branch_result["pid"]} if branch_result else None,
              "settings": settings_dict(args), "wall_s": wall,
              "report": {k: report[k] for k in ("markdown", "csv", "png")}}
    result["attempts"] = attempts
    atomic_write_json(info_path, result)
    if args.results:
        collect(folder, args.results, args.config)
        print(f"deliverables (no model weights) -> {args.results}")
    print("\n" + report["text"])
    if executor.failed:
        print("not produced: " + "; ".join(f"{k}: {v}" for k, v in executor.failed.items()))
    print(f"done in {wall} s -> {folder} (report.md, report.csv, report.png)")
    if note:
        print(note)
    return result

"""The fair weak-to-strong test: every arm of the comparison, with training seeds, two controls, a
validity gate and the evidence a reader needs, as one table of steps run by ``alice.steps.Executor.make``.
Each step that runs a stage script is that script's config (the flags below, read by its own parser);
its command is the config's.

Arms (each trained student arm once per seed in ``seeds.student``; models named in the config):
- ``weak``: the teacher model trained on the ground truth of the student pool's half (as the
  reference code's ``base`` method), ``ceiling``: the student trained on the same ground truth;
- ``zero_shot``: the untrained student;
- ``w2s_cot`` / ``w2s_qa``: the student trained on the labels (temperature 0.6) of the teacher
  trained on rationales / on answers only, both on the teacher's half;
- ``alice``: uncertainty of the rationale-trained teacher (K samples), statements by the
  summarizer, the student's proactive answers, the student trained on them;
- ``self_training`` (control, no teacher): the student trained on its own zero-shot answers to the
  same pool questions (temperature 0.9, as Alice's zero-shot stage);
- ``alice_no_statement`` (control): Alice with the teacher's answer but without the statement;
- ``alice_structured``: Alice with a statement written by rule from the teacher's clusters (the
  results it reached and how often) instead of the summarizer's: does the LLM summary add anything
  over the teacher's answer distribution?

Every generated training target and statement is checked (alice/hygiene.py; ``--max-tries``), and
the checks' counts per arm are the report's ``hygiene``.

Test sets: every model is evaluated on the data set's test split (``eval-*.jsonl`` at the run
folder's root: new instances of the training templates) and, when the config names
``held_out_eval`` (e.g. ``eval=held_out`` for ``gsm_symbolic:held_out=N``), on the second test set
(``held_out_templates/eval-*.jsonl``: templates absent from every training file).

The gate (``gate.json``) runs once every seed of weak and ceiling and the zero-shot student are
evaluated, and reads seed means; the student arms' training waits for it, so nothing is spent on a
frame that does not hold. The noise floor (``noise_floor.json``) evaluates the untrained student
again in other batch compositions. Run folder: ``models/`` (trained models; weights removed once
evaluated unless ``keep_models``), ``data/`` (training JSONL), ``uncertainty.jsonl``,
``eval-<arm>[-seed<N>].jsonl`` + summaries, ``held_out_templates/``, ``noise/``, ``logs/``,
``gate.json``, ``noise_floor.json``, ``evidence.json``, ``experiment.json``, ``steps.json`` and the
report.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .costs import relocate
from .errors import AliceError
from .evidence import evidence as run_evidence
from .gate import check_gate, decide, generation_seconds, noise_floor
from .models import cache_dir, drop_weights, resolve_model
from .records import atomic_write_json, iter_jsonl, read_json
from .stages.student_generate import ALICE_STATEMENTS
from .stages.uncertainty import merge_parts
from .steps import Executor, Step, stage_config
from .tasks import load_task

ARMS = ("w2s_qa", "w2s_cot", "alice", "self_training", "alice_no_statement", "alice_structured")
# What student_generate.py's --statement is for each Alice arm.
HELD_OUT = "held_out_templates"  # the second test set's folder
PY = sys.executable


def load_config(path: str | Path) -> dict:
    import tomllib

    try:
        with open(path, "rb") as f:
            config = tomllib.load(f)
    except FileNotFoundError:
        raise AliceError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as err:
        raise AliceError(f"{path}: not valid TOML ({err})") from None
    for key in ("data", "models", "seeds", "gate", "args"):
        if key not in config:
            raise AliceError(f"{path}: missing [{key}] (see configs/fair.toml)")
    for role in ("teacher", "student"):
        model = config["models"].get(role)
        if not model or not any(k in model for k in ("gguf", "hub", "path")):
            raise AliceError(f"{path}: [models.{role}] needs gguf, hub or path")
    unknown = set(config.get("arms", ARMS)) - set(ARMS)
    if unknown:
        raise AliceError(f"{path}: unknown arms {sorted(unknown)} (known: {', '.join(ARMS)})")
    if not config["seeds"].get("student") or not config["seeds"].get("weak"):
        raise AliceError(f"{path}: [seeds] needs student = [...] and weak = [...]")
    return config


@dataclass
class Model:
    role: str
    label: str
    folder: str  # what the scripts get as --teacher/--student (a folder or a hub id)
    convert: tuple[str, str] | None  # (gguf path, label) when a GGUF must be converted first
    source: str


def model_for(config: dict, role: str, gguf_dir: str | None, from_hub: bool) -> Model:
    entry = config["models"][role]
    label = entry.get("label", role)
    source = entry.get("source", "")
    if from_hub and "hub" in entry:
        return Model(role, label, entry["hub"], None, source or entry["hub"])
    if "path" in entry:
        return Model(role, label, resolve_model(entry["path"]).path, None, source or entry["path"])
    if "gguf" not in entry:
        return Model(role, label, entry["hub"], None, source or entry["hub"])
    gguf = Path(gguf_dir or Path.home() / ".cache" / "small-models") / entry["gguf"]
    return Model(role, label, str(cache_dir() / "models" / label), (str(gguf), label), source)


def complete(manifest: Path) -> bool:
    try:
        return read_json(manifest).get("status") == "complete"
    except (AliceError, OSError, json.JSONDecodeError):
        return False


def output_done(output: Path) -> bool:
    return complete(output.with_name(output.name.removesuffix(".jsonl") + ".manifest.json"))


def trained(folder: Path) -> bool:
    return complete(folder / "manifest.json") and any(folder.glob("*.safetensors"))


class FairTest:
    """The table of steps for one config and run folder."""

    def __init__(self, config: dict, run: Path, gguf_dir: str | None = None, from_hub: bool = False,
                 gpus: list[str] | None = None, override_gate: bool = False, config_path: str | None = None) -> None:
        self.config, self.run = config, run
        self.config_path, self.gguf_dir, self.from_hub = config_path, gguf_dir, from_hub
        self.override_gate = override_gate
        self.gpus = gpus or []
        self.teacher = model_for(config, "teacher", gguf_dir, from_hub)
        self.student = model_for(config, "student", gguf_dir, from_hub)
        self.args = config["args"]
        self.shares = config.get("gpu", {})
        self.arms = list(config.get("arms", ARMS))
        self.seeds = [int(s) for s in config["seeds"]["student"]]
        self.weak_seeds = [int(s) for s in config["seeds"]["weak"]]
        self.steps: list[Step] = []
        self.threads = str(max(1, (os.cpu_count() or 2) // max(1, 3 * max(1, len(self.gpus)))))

    # ------------------------------------------------------------------ building blocks

    def data(self) -> list[str]:
        out = ["--data", self.config["data"]]
        if self.config.get("limit"):
            out += ["--limit", str(self.config["limit"])]
        return out

    def gen(self) -> list[str]:
        return list(self.args.get("generation", []))

    def checks(self) -> list[str]:
        """--max-tries for the steps that write training data (the stages' default when the config has none)."""
        return ["--max-tries", str(self.config["max_tries"])] if "max_tries" in self.config else []

    def share(self, kind: str) -> float:
        return float(self.shares.get(kind, 0.0)) if self.gpus else 0.0

    def add(self, name: str, script: str | None = None, argv: list | None = None, **kwargs) -> Step:
        """A step of the table: the stage ``script`` with the config its parser makes of ``argv`` (the
        step's command is that config's), or an action or helper (``kwargs``; see ``alice.steps.Step``)."""
        kwargs.setdefault("env", {}).setdefault("OMP_NUM_THREADS", self.threads)
        step = Step(name, script, stage_config(script, argv) if script else None, **kwargs)
        self.steps.append(step)
        return step

    @property
    def batched(self) -> bool:
        """Evaluate each seed's trained students in one process and one engine (``eval_batches``)."""
        if getattr(self, "_batched", None) is not None:
            return bool(self._batched)
        return bool(self.config.get("eval_batches")) and self.config_path is not None

    def evaluate_batch(self, seed: int, folders: dict[str, Path]) -> None:
        """One step evaluating every arm trained with ``seed`` on both test sets in one process: one engine,
        each next model's weights loaded into it (``evaluate_many``), instead of an engine per evaluation.
        Each evaluation still writes its own output and manifest (whose ``rerun`` is its eval.py command)."""
        names = [f"{arm}-seed{seed}" for arm in folders]
        outputs = [(self.run / f"eval-{n}.jsonl") for n in names]
        if self.config.get("held_out_eval"):
            outputs += [self.run / HELD_OUT / f"eval-{n}.jsonl" for n in names]
        keep = self.config.get("keep_models", False)
        where = (["--from-hub"] if self.from_hub else []) + (["--gguf-dir", self.gguf_dir] if self.gguf_dir else [])
        self.add(f"eval seed{seed} arms", helper=[PY, "scripts/fair.py", "evaluate", "--config", self.config_path,
                                                  "--run-dir", self.run, *where, *names],
                 needs=tuple(f"train {n}" for n in names), gpu=self.share("engine"), priority=2, retries=1,
                 done=lambda: all(o.with_name(o.name.removesuffix(".jsonl") + ".summary.json").is_file()
                                  and output_done(o) for o in outputs),
                 after=None if keep else lambda: [drop_weights(f) for f in folders.values()])

    def eval_configs(self, name: str) -> list:
        """eval.py's config for every evaluation of one trained model (both test sets), as the table
        would run them one by one."""
        steps = {s.name: s for s in self.build(batched=False)}
        found = [steps[step].config for step in (f"eval {name}", f"eval {name} (held-out)") if step in steps]
        if not found:
            raise AliceError(f"no evaluation of {name!r} in this table (names: <arm>-seed<N>)")
        return found

    def model_needs(self, *models: Model) -> tuple[str, ...]:
        return tuple(f"convert {m.role}" for m in models if m.convert)

    def train(self, name: str, role: str, model: Model, source: list[str], seed: int, needs: tuple[str, ...],
              priority: int) -> Path:
        folder = self.run / "models" / name
        kind = "train_student" if role == "student" else "train_teacher"
        self.add(f"train {name}", "train", [*self.data(), f"--{role}", model.folder, *source,
                                            *self.args.get("train", []), "--seed", seed, "--output-dir", folder,
                                            "--resume"],
                 needs=needs + self.model_needs(model), gpu=self.share(kind), done=lambda: trained(folder),
                 priority=priority, env={"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}, retries=1)
        return folder

    def evaluate(self, method: str, model_folder: str, needs: tuple[str, ...], priority: int,
                 cleanup: Path | None = None, output: Path | None = None, extra: list[str] | None = None,
                 name: str | None = None, both: bool = True) -> Path:
        """Evaluation steps of one model: the test split, then (``both`` and a config with
        ``held_out_eval``) the held-out templates; the weights are dropped after the last."""
        output = output or self.run / f"eval-{method}.jsonl"
        eval_args = self.args.get("eval", []) if extra is None else extra
        keep = self.config.get("keep_models", False)
        held_out = self.config.get("held_out_eval") if both else None
        sets = [(name or f"eval {method}", output, self.data())]
        if held_out:
            sets.append((f"{name or f'eval {method}'} (held-out)", self.run / HELD_OUT / output.name,
                         ["--data", f"{self.config['data']},{held_out}"]))
        previous: tuple[str, ...] = needs
        for i, (step, path, data) in enumerate(sets):
            summary = path.with_name(path.name.removesuffix(".jsonl") + ".summary.json")
            last = i == len(sets) - 1
            self.add(step, "eval", [*data, "--student", model_folder, *self.gen(), *eval_args, "--output", path],
                     needs=previous, gpu=self.share("engine"), priority=priority,
                     done=lambda s=summary, o=path: s.is_file() and output_done(o),
                     after=(lambda: drop_weights(cleanup)) if cleanup is not None and not keep and last else None)
            previous = (step,)
        return output

    # ------------------------------------------------------------------ the table

    def build(self, batched: bool | None = None) -> list[Step]:
        """The table of steps; ``batched=False`` gives every evaluation its own step (``eval_batches``)."""
        self.steps = []
        self._batched = batched
        run, teacher, student = self.run, self.teacher, self.student
        for model in (teacher, student):
            if model.convert:
                gguf, label = model.convert
                folder = Path(model.folder)
                self.add(f"convert {model.role}", helper=[PY, "scripts/fair.py", "convert", gguf, label],
                         done=lambda f=folder: (f / "config.json").is_file(), priority=0)
        s0 = self.seeds[0]
        # The teacher trained on its half's rationales (GSM-style data ships them: this is stage 1-2's
        # filtered CoT) and on answers only; weak and ceiling on the pool's ground truth.
        teacher_dir = self.train("teacher", "teacher", teacher, ["--ground-truth", "--pool", "teacher"], 0, (), 0)
        teacher_qa_dir = self.train("teacher_qa", "teacher", teacher,
                                    ["--ground-truth", "--pool", "teacher", "--no-rationale"], 0, (), 4)
        weak_dirs = {s: self.train(f"weak-seed{s}", "teacher", teacher, ["--ground-truth", "--pool", "student"],
                                   s, (), 1 if s == self.weak_seeds[0] else 6) for s in self.weak_seeds}
        ceiling_dirs = {s: self.train(f"ceiling-seed{s}", "student", student,
                                      ["--ground-truth", "--pool", "student"], s, (), 1 if s == s0 else 6)
                        for s in self.seeds}
        self.evaluate("zero_shot", student.folder, self.model_needs(student), 1)
        for s, folder in weak_dirs.items():
            self.evaluate(f"weak-seed{s}", str(folder), (f"train weak-seed{s}",), 2, cleanup=folder)
        for s, folder in ceiling_dirs.items():
            self.evaluate(f"ceiling-seed{s}", str(folder), (f"train ceiling-seed{s}",), 2, cleanup=folder)
        self.add("gate", action=self.check_gate, priority=2, done=self.gate_done,
                 needs=("eval zero_shot", *(f"eval weak-seed{s}" for s in self.weak_seeds),
                        *(f"eval ceiling-seed{s}" for s in self.seeds)))

        # Teacher-side data (no student training yet, so not gated).
        # Probing is host-bound in vLLM (~45 us per running sequence per step), so the pool is probed in
        # ``probe_parts`` disjoint parts by as many engines at once, then merged.
        uncertainty = run / "uncertainty.jsonl"
        parts = int(self.config.get("probe_parts", 1))
        outputs = [run / f"uncertainty-p{i}.jsonl" for i in range(1, parts + 1)] if parts > 1 else [uncertainty]
        for i, output in enumerate(outputs, start=1):
            self.add(f"uncertainty {i}/{parts}" if parts > 1 else "uncertainty", "uncertainty",
                     [*self.data(), "--teacher", teacher_dir, "--summarizer", student.folder, *self.gen(),
                      *self.checks(), "--k", self.config.get("k", 100), *self.args.get("probe", []),
                      *(["--pool-part", f"{i}/{parts}"] if parts > 1 else []), "--output", output],
                     needs=("train teacher",) + self.model_needs(student), gpu=self.share("probe"),
                     done=lambda o=output: output_done(o), priority=1)
        if parts > 1:
            self.add("uncertainty", action=lambda: merge_parts(outputs, uncertainty),
                     needs=tuple(f"uncertainty {i}/{parts}" for i in range(1, parts + 1)),
                     done=lambda: output_done(uncertainty), priority=1)
        data = run / "data"
        sources = {  # each arm's training data: (script, its flags, needs)
            "w2s_cot": ("w2s_labels", [*self.data(), "--teacher", teacher_dir, *self.gen(), *self.checks(),
                                       "--output", data / "w2s_cot.jsonl"], ("train teacher",)),
            "w2s_qa": ("w2s_labels", [*self.data(), "--teacher", teacher_qa_dir, *self.gen(), *self.checks(),
                                      "--output", data / "w2s_qa.jsonl"], ("train teacher_qa",)),
            # The student labels the pool itself, sampled as Alice's zero-shot stage samples it.
            "self_training": ("w2s_labels", [*self.data(), "--teacher", student.folder, *self.gen(), *self.checks(),
                                             "--temperature", "0.9", "--output", data / "self_training.jsonl"],
                              self.model_needs(student)),
            **{arm: ("student_generate", [*self.data(), "--student", student.folder, "--uncertainty", uncertainty,
                                          *self.gen(), *self.checks(), "--statement", statement, "--output",
                                          data / f"{arm}.jsonl"],
                     ("uncertainty",)) for arm, statement in ALICE_STATEMENTS.items()},
        }
        for arm in self.arms:
            script, argv, needs = sources[arm]
            output = data / f"{arm}.jsonl"
            self.add(f"data {arm}", script, argv, needs=needs, gpu=self.share("engine"),
                     done=lambda o=output: output_done(o), priority=2 if arm == "alice" else 3)
        # The student arms, seed by seed, once the gate has passed.
        for s in self.seeds:
            folders = {}
            for arm in self.arms:
                folders[arm] = self.train(f"{arm}-seed{s}", "student", student,
                                          ["--train-file", data / f"{arm}.jsonl"], s, (f"data {arm}", "gate"),
                                          3 + self.seeds.index(s))  # seed by seed: a cut run has whole seeds
                if not self.batched:
                    self.evaluate(f"{arm}-seed{s}", str(folders[arm]), (f"train {arm}-seed{s}",), 2,
                                  cleanup=folders[arm])
            if self.batched:
                self.evaluate_batch(s, folders)
        if self.config.get("context_evals", True):
            # What the teacher scores before and after training (context for the table; not arms). The
            # untrained one runs first of all: the evaluation settings meet the GPU there.
            self.evaluate("teacher", str(teacher_dir), ("train teacher",), 5, both=False)
            self.evaluate("teacher_zero_shot", teacher.folder, self.model_needs(teacher), 0, both=False)
        if self.config.get("noise", True):
            self.noise_steps()
        return self.steps

    def noise_steps(self) -> None:
        """The untrained student evaluated again: with the eval settings in another batch composition
        (smaller chunks), and twice without batch invariance (plain greedy), for the noise floor."""
        noise = self.run / "noise"
        chunk = str(self.config.get("noise_chunk_size", 48))
        needs = self.model_needs(self.student)
        self.evaluate("zero_shot", self.student.folder, needs, 7, output=noise / "rerun.jsonl",
                      extra=[*self.args.get("eval", []), "--chunk-size", chunk], name="noise rerun", both=False)
        self.evaluate("zero_shot", self.student.folder, needs, 7, output=noise / "plain-a.jsonl", extra=[],
                      name="noise plain-a", both=False)
        self.evaluate("zero_shot", self.student.folder, needs, 7, output=noise / "plain-b.jsonl",
                      extra=["--chunk-size", chunk], name="noise plain-b", both=False)
        self.add("noise floor", action=self.noise_floor, priority=7, done=(self.run / "noise_floor.json").is_file,
                 needs=("eval zero_shot", "noise rerun", "noise plain-a", "noise plain-b"))

    # ------------------------------------------------------------------ checks and summaries

    def check_gate(self) -> dict:
        return decide(gate_result(self.run, self.config, self.seeds, self.weak_seeds), self.run, self.override_gate)

    def gate_done(self) -> bool:
        """Decided earlier: passed, or let through with --override-gate (a failed gate is checked again)."""
        path = self.run / "gate.json"
        if not path.is_file():
            return False
        gate = read_json(path)
        return bool(gate.get("passed") or (gate.get("overridden") and self.override_gate))

    def noise_floor(self) -> dict:
        result = noise_floor(self.run, "zero_shot")
        atomic_write_json(self.run / "noise_floor.json", result)
        return result

    def targets(self, patterns: list[str] | None = None) -> list[str]:
        """The steps to run to: every evaluation, the gate and the noise floor, or those matching ``patterns``
        (step names or shell patterns); a pattern that matches nothing is an error."""
        if not patterns:
            return [s.name for s in self.steps if s.name.startswith(("eval ", "noise ")) or s.name == "gate"]
        from fnmatch import fnmatchcase

        chosen = []
        for pattern in patterns:
            matched = [s.name for s in self.steps if fnmatchcase(s.name, pattern)]
            if not matched:
                raise AliceError(f"--targets {pattern!r} matches no step (see --dry-run for their names)")
            chosen += [m for m in matched if m not in chosen]
        return chosen


def gate_result(run: Path, config: dict, seeds: list[int], weak_seeds: list[int]) -> dict:
    """The gate (``alice.gate``) on the means over every seed of weak and of the ceiling, thresholds from
    the config's ``[gate]``."""
    gate = config["gate"]
    result = check_gate(run, [f"weak-seed{s}" for s in weak_seeds], [f"ceiling-seed{s}" for s in seeds], "zero_shot",
                        chance=float(gate.get("chance", 0.0)), min_gap=float(gate.get("min_gap", 0.15)),
                        intervals_apart=gate.get("intervals_apart", True))
    return {**result, "seeds": {"weak": weak_seeds, "ceiling": seeds}}


def evidence(run: Path, config: dict) -> dict:
    """What the arms trained on and what the GPU time went to (``alice.evidence``), in this run's layout, with
    each evaluation batch's cost."""
    task = load_task(config["data"])
    models = [m for m in sorted((run / "models").glob("*/manifest.json")) if not unevaluated_model(run, m)]
    result = run_evidence(run, task, {arm: run / "data" / f"{arm}.jsonl" for arm in ARMS}, models,
                          limit=config.get("limit") or None)
    result["evaluation_batches"] = eval_batch_costs(run)
    return result


def eval_batch_costs(run: Path) -> list[dict]:
    """Each batch of evaluations sharing one engine: its wall time against the generation time of its
    evaluations (what loading, starting and swapping the weights cost on top), and its engine record."""
    batches = []
    for path in sorted((run / "engines").glob("*.json")):
        record = read_json(path)
        generation = sum(generation_seconds(relocate(o, run)) or 0 for o in record.get("outputs", []))
        batches.append({"models": path.stem.split("+"), "evaluations": len(record.get("outputs", [])),
                        "wall_s": record.get("wall_s"), "generation_s": round(generation, 1),
                        "wall_over_generation": round(record["wall_s"] / generation, 2) if generation else None,
                        "engines": record.get("engines")})
    return batches


def setting(config: dict, test: FairTest) -> dict:
    task = load_task(config["data"])
    teacher_half, pool = task.pools()
    return {"data": config["data"], "data_description": task.describe(), "held_out_eval": config.get("held_out_eval"),
            "train_rows": len(task.load(task.train_split)), "teacher_half": len(teacher_half),
            "student_pool": len(pool), "test_rows": len(task.load(task.eval_split)), "limit": config.get("limit"),
            "teacher": {"label": test.teacher.label, "model": test.teacher.folder, "source": test.teacher.source},
            "student": {"label": test.student.label, "model": test.student.folder, "source": test.student.source},
            "summarizer": "the student (untrained)", "k": config.get("k", 100), "seeds": config["seeds"],
            "arms": test.arms, "args": config["args"], "gate": config["gate"]}


def compressed_copy(source: Path, target: Path, keep: tuple[str, ...] | None = None) -> None:
    """A JSONL file as ``target`` (.jsonl.xz), each row reduced to ``keep`` where given."""
    import lzma

    target.parent.mkdir(parents=True, exist_ok=True)
    with lzma.open(target, "wt", encoding="utf-8", preset=6) as out:
        for _, row in iter_jsonl(source):
            out.write(json.dumps(row if keep is None else {k: row.get(k) for k in keep if k in row},
                                 ensure_ascii=False) + "\n")


EVAL_KEEP = ("id", "cluster", "prediction", "parsed", "correct", "response")


def collect(run: Path, results: Path, config_path: str | Path) -> None:
    """The deliverables without model weights: report, gate, noise floor, evidence, steps, config,
    every manifest, each evaluation's per-question rows with the response text (id, cluster, prediction,
    parsed, correct, response; compressed), every training file, rejection log and the uncertainty rows
    (compressed)."""
    results.mkdir(parents=True, exist_ok=True)
    for name in ("report.md", "report.csv", "report.png", "report.pdf", "report.json", "experiment.json", "gate.json",
                 "noise_floor.json", "evidence.json", "steps.json"):
        if (run / name).exists():
            shutil.copyfile(run / name, results / name)
    shutil.copyfile(config_path, results / "config.toml")
    folders = [run, run / HELD_OUT, run / "noise"]
    for summary in sorted(s for folder in folders for s in folder.glob("*.summary.json")):
        folder = results / summary.parent.relative_to(run)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(summary, folder / summary.name)
        rows = summary.with_name(summary.name.removesuffix(".summary.json") + ".jsonl")
        if rows.is_file():
            compressed_copy(rows, folder / (rows.name + ".xz"), EVAL_KEEP)
    if (run / HELD_OUT / "experiment.json").is_file():
        shutil.copyfile(run / HELD_OUT / "experiment.json", results / HELD_OUT / "experiment.json")
    for path in sorted((run / "data").glob("*.jsonl")) + [run / "uncertainty.jsonl"]:
        if path.is_file():
            compressed_copy(path, results / path.relative_to(run).with_name(path.name + ".xz"))
    manifests = results / "manifests"
    for path in sorted(run.rglob("*manifest.json")):
        if "checkpoint-" in str(path) or unevaluated_model(run, path):
            continue
        target = manifests / path.relative_to(run)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def unevaluated_model(run: Path, manifest: Path) -> bool:
    """A trained arm (``models/<arm>-seed<N>``) whose evaluation is missing: its weights are not in the
    deliverables, so its manifest stays out too, or a later part restored from them would take it for done."""
    parts = manifest.relative_to(run).parts
    return (len(parts) == 3 and parts[0] == "models" and re.fullmatch(r".+-seed\d+", parts[1]) is not None
            and not (run / f"eval-{parts[1]}.summary.json").is_file())


def restore(results: Path, run: Path) -> int:
    """A run folder rebuilt from its deliverables (``collect``), so a later part of the run resumes from them
    on another machine: every manifest back in its place, every compressed JSONL decompressed, the gate,
    summaries and settings copied. Model weights are not in the deliverables: steps that need them run
    again. Files already in ``run`` are kept. Returns the number of files written."""
    import lzma

    if not (results / "manifests").is_dir():
        raise AliceError(f"{results}: not a fair test's deliverables (no manifests/)")
    written = 0

    def place(target: Path, write) -> None:
        nonlocal written
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        write(target)
        written += 1

    for manifest in (results / "manifests").rglob("*.json"):
        place(run / manifest.relative_to(results / "manifests"), lambda t, m=manifest: shutil.copyfile(m, t))
    for path in results.rglob("*"):
        relative = path.relative_to(results)
        if relative.parts[0] == "manifests" or not path.is_file():
            continue
        if path.name.endswith(".jsonl.xz"):
            def unpack(target: Path, source: Path = path) -> None:
                with lzma.open(source, "rb") as data, open(target, "wb") as out:
                    shutil.copyfileobj(data, out)
            place(run / relative.with_name(path.name.removesuffix(".xz")), unpack)
        elif path.name.endswith(".summary.json") or path.name in ("gate.json", "experiment.json", "evidence.json",
                                                                  "noise_floor.json", "steps.json"):
            place(run / relative, lambda t, s=path: shutil.copyfile(s, t))
    return written


def fair_report(run: Path) -> dict:
    """The report over both test sets (report.md, .csv, .png: one section each) and report.json in the
    fair test's schema: ``in_template`` and ``held_out_templates`` (each the report's group: methods with
    every seed, template-clustered intervals, paired comparisons), ``gate``, ``near_duplicates`` (test draws
    left out for having a train question's numbers and answer), ``hygiene`` (per arm) and ``setting``."""
    from .report import build_report

    report = build_report(run, exclude=("previous", "noise"))  # an earlier run kept beside it is not this run
    standard = json.loads((run / "report.json").read_text())
    groups = standard["groups"]
    by_folder = {Path(g["folder"]).resolve(): g for g in groups}
    info = read_json(run / "experiment.json") if (run / "experiment.json").is_file() else {}
    evidence_path = run / "evidence.json"
    description = info.get("setting", {}).get("data_description") or {}
    composite = {
        **standard,  # schema, command, git commit, versions and groups, as every report.json has them
        "in_template": by_folder.get(run.resolve()),
        "held_out_templates": by_folder.get((run / HELD_OUT).resolve()),
        "gate": read_json(run / "gate.json") if (run / "gate.json").is_file() else None,
        "near_duplicates": description.get("near_duplicates_left_out"),
        "hygiene": read_json(evidence_path).get("hygiene") if evidence_path.is_file() else None,
        "setting": info.get("setting"),
    }
    atomic_write_json(run / "report.json", composite)
    return report


def run_fair(config_path: str, run: Path, results: Path | None, gguf_dir: str | None, from_hub: bool,
             gpus: list[str], dry_run: bool = False, override_gate: bool = False,
             targets: list[str] | None = None) -> dict:
    """Build the table, run what is missing, then the gate's verdict, evidence, report and deliverables."""
    config = load_config(config_path)
    test = FairTest(config, run, gguf_dir, from_hub, gpus, override_gate, config_path=str(config_path))
    steps = test.build()
    wanted = test.targets(targets)
    capacity = float(config.get("gpu", {}).get("capacity", 0.9))
    executor = Executor(steps, gpus=gpus, log_dir=run / "logs", capacity=capacity,
                        cpu_slots=int(config.get("cpu_slots", 2)), status_path=run / "steps.json", dry_run=dry_run)
    if dry_run:
        executor.make(wanted)
        return {}
    run.mkdir(parents=True, exist_ok=True)
    started = time.time()
    note = ("The summarizer is the untrained student, not the paper's 70B model. Teacher and student are 4-bit "
            "GGUF checkpoints dequantized to bf16." if any(m.convert for m in (test.teacher, test.student)) else
            "The summarizer is the untrained student, not the paper's 70B model.")
    info = {"dataset": load_task(config["data"]).name, "teacher_label": test.teacher.label,
            "student_label": test.student.label, "note": note, "setting": setting(config, test)}
    atomic_write_json(run / "experiment.json", info)
    if config.get("held_out_eval"):
        atomic_write_json(run / HELD_OUT / "experiment.json",
                          {**info, "dataset": f"{info['dataset']} (held-out templates)",
                           "note": note + " Test set: templates absent from every training file."})
    status = executor.make(wanted)
    atomic_write_json(run / "evidence.json", evidence(run, config))
    report = fair_report(run)
    failed = {k: v for k, v in status.items() if v.get("status") != "done"}
    if results is not None:
        collect(run, results, config_path)
    print(report["text"])
    if failed:
        print("not produced: " + "; ".join(f"{k}: {v.get('error')}" for k, v in failed.items()))
    print(f"done in {time.time() - started:.0f} s -> {run}" + (f" (deliverables in {results})" if results else ""))
    return {"failed": failed, "report": report}


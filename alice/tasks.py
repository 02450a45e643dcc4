"""Tasks: where each dataset's splits come from, stable ids, the docs/METHOD.md splits, prompts,
answer extraction and scoring, declared once per task.

    task = load_task("arc_challenge")
    teacher_rows, student_rows = task.pools(split_seed=None)
    messages = task.messages(example)
    score = task.score(response, example)
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from .answers import DEFAULT_SCORING, SCORING_RULES, Score, answer_format, check_scoring, normalize_number
from .errors import AliceError
from .hub import hint
from .records import atomic_write_json, read_jsonl

REPO_ROOT = Path(__file__).resolve().parent.parent
ARC_FOLDER = REPO_ROOT / "arc_challenge_processed"


@dataclass
class Example:
    id: str
    question: str
    gold: str  # normalized gold answer: a label, a number, or the answer text
    aliases: list[str] = field(default_factory=list)
    rationale: str | None = None  # a worked solution when the dataset ships one (GSM8K)


class Task:
    """A dataset plus its answer format. Subclasses say where rows come from."""

    name: str
    answer_type: str
    train_split = "train"
    eval_split = "test"
    student_pool_fraction = 1.0  # share of the second half of train used as student pool
    student_part: tuple[int, int] | None = None  # (k, n): only part k of n of the student pool (cascades)
    scoring: str = DEFAULT_SCORING  # the rule behind ``correct`` (``--scoring``; answers.SCORING_RULES)

    def __init__(self) -> None:
        self.format = answer_format(self.answer_type)
        self._cache: dict[str, list[Example]] = {}

    @property
    def scoring_rules(self) -> tuple[str, ...]:
        """The rules this task reports: every rule for open answers (HotpotQA, TriviaQA, text .jsonl),
        where they can disagree; only the chosen one for choice and number answers, where they agree."""
        return tuple(SCORING_RULES) if self.format.rules_differ else (self.scoring,)

    def set_scoring(self, rule: str) -> None:
        self.scoring = check_scoring(rule)

    def describe(self) -> dict:
        """What a generated data set's rows are (options, counts), for summaries; {} for fixed data sets."""
        return {}

    def cluster_of(self, example_id: str) -> str:
        """The unit a question is independent by, for intervals and tests (a template, a document): here
        the question itself. Tasks whose questions come in groups say so (GsmSymbolic: its template)."""
        return example_id

    # --- data
    def _load_rows(self, split: str) -> list[dict]:
        """Raw rows with keys id, question, answer and optionally aliases, rationale."""
        raise NotImplementedError

    def load(self, split: str) -> list[Example]:
        if split not in self._cache:
            examples = []
            for row in self._load_rows(split):
                ref = f"{self.name} {split} row {row['id']}"
                question = str(row["question"])
                gold = self.format.gold(str(row["answer"]), question, ref)
                examples.append(Example(
                    id=str(row["id"]),
                    question=question,
                    gold=gold,
                    aliases=[str(a) for a in row.get("aliases") or []],
                    rationale=row.get("rationale"),
                ))
            if not examples:
                raise AliceError(f"{self.name}: split {split!r} has no rows")
            self._cache[split] = examples
        return self._cache[split]

    def pools(self, split_seed: int | None = None) -> tuple[list[Example], list[Example]]:
        """docs/METHOD.md: first half of train for the teacher, second half for the student pool
        (only its first ``student_pool_fraction`` for HotpotQA/TriviaQA). The paper's order by
        default; ``split_seed`` shuffles train first."""
        rows = list(self.load(self.train_split))
        if split_seed is not None:
            random.Random(split_seed).shuffle(rows)
        half = len(rows) // 2
        teacher, student = rows[:half], rows[half:]
        if self.student_pool_fraction < 1.0:
            student = student[: int(len(student) * self.student_pool_fraction)]
        return teacher, student

    def examples(self, pool: str, split_seed: int | None = None, limit: int | None = None) -> list[Example]:
        """pool: 'teacher' or 'student' (docs/METHOD.md halves of train), 'eval', or a split name."""
        if pool == "teacher":
            rows = self.pools(split_seed)[0]
        elif pool == "student":
            rows = pool_part(self.pools(split_seed)[1], self.student_part)
        elif pool == "eval":
            rows = self.load(self.eval_split)
        else:
            rows = self.load(pool)
        return rows[:limit] if limit else rows

    # --- prompts and scoring (one place for every stage)
    def prompt(self, example: Example) -> str:
        return f"{example.question}\n\n{self.format.instruction(example.question)}"

    def messages(self, example: Example) -> list[dict]:
        return [{"role": "user", "content": self.prompt(example)}]

    def score(self, response: str, example: Example) -> Score:
        return self.format.score(response, example.gold, example.question, example.aliases, self.scoring)

    def cluster_key(self, response: str, example: Example) -> str | None:
        return self.format.cluster_key(response, example.question)

    def ground_truth_response(self, example: Example, rationale: bool = True) -> str:
        """Target for ground-truth training: the shipped rationale (GSM8K) or the answer."""
        if rationale and example.rationale:
            return example.rationale
        return self.format.target(example.gold, example.question)


# ----------------------------------------------------------------------------- datasets


def _hub_dataset(path: str, name: str | None, split: str):
    try:
        from datasets import load_dataset

        return load_dataset(path, name, split=split)
    except Exception as err:  # noqa: BLE001 - the hub raises many kinds; one line is enough
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise AliceError(f"could not load {path} ({name}) split {split!r} from the hub: {first}{hint()}") from None


class ArcChallenge(Task):
    name = "arc_challenge"
    answer_type = "choice"

    def __init__(self, source: str | Path | None = None) -> None:
        super().__init__()
        self.source = Path(source) if source else ARC_FOLDER

    def _load_rows(self, split: str) -> list[dict]:
        if self.source.is_dir():
            from datasets import load_from_disk

            data = load_from_disk(str(self.source))
            if split not in data:
                raise AliceError(f"{self.source}: no split {split!r} (has {list(data)})")
            rows = data[split]
        else:
            rows = [preprocess_arc(r) for r in _hub_dataset("allenai/ai2_arc", "ARC-Challenge", split)]
        return [{"id": f"arc_challenge-{split}-{i:05d}", "question": r["question"], "answer": r["answer"]}
                for i, r in enumerate(rows)]


def preprocess_arc(row: dict) -> dict:
    """allenai/ai2_arc row -> the shipped format: stem plus 'A. ...' lines; answer 'C. text'."""
    labels, texts = row["choices"]["label"], row["choices"]["text"]
    lines = [f"{label}. {text}" for label, text in zip(labels, texts)]
    answer = next((line for label, line in zip(labels, lines) if label == row["answerKey"]), row["answerKey"])
    return {"question": row["question"] + "\n" + "\n".join(lines), "answer": answer}


def pool_part(rows: list, part: tuple[int, int] | None) -> list:
    """Part k of n (1-based) of a pool: contiguous slices, disjoint, sizes within one of each other.
    Contiguous in the pool's order, which ``--split-seed`` shuffles."""
    if part is None:
        return rows
    k, n = part
    return rows[(k - 1) * len(rows) // n: k * len(rows) // n]


def parse_pool_part(text: str | None) -> tuple[int, int] | None:
    """'2/3' -> (2, 3); None stays None."""
    if not text:
        return None
    try:
        k, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise AliceError(f"--pool-part {text!r}: expected K/N, e.g. 1/2") from None
    if not 1 <= k <= n:
        raise AliceError(f"--pool-part {text!r}: K must be between 1 and N")
    return k, n


class Gsm8k(Task):
    name = "gsm8k"
    answer_type = "number"

    def _load_rows(self, split: str) -> list[dict]:
        rows = _hub_dataset("openai/gsm8k", "main", split)
        return [{"id": f"gsm8k-{split}-{i:05d}", "question": r["question"], "answer": r["answer"],
                 "rationale": r["answer"]} for i, r in enumerate(rows)]


GSM_SYMBOLIC_VERSION = "0.1.25"  # the reasoning-gym release whose templates make the rows (pinned)


class GsmSymbolic(Task):
    """GSM8K-style math generated offline by ``reasoning-gym``'s ``gsm_symbolic`` templates (the
    GSM-Symbolic templates of GSM8K questions; Apache-2.0): worked rationales ending in ``#### N``,
    scored like GSM8K. No hub needed, so it runs on an offline GPU machine.

    ``--data gsm_symbolic[:key=value,...]``:
      split=instance        every template in train and test, test questions are new instances (new
                            names and numbers) of the same templates, as GSM-Symbolic evaluates; or
      split=template        test templates never appear in train (unseen problem types);
      train=N, test=N       distinct instances per template in train / test (defaults: 24 and 4 for
                            the instance split, 30 and 20 for the template split);
      test_templates=N      templates held out for test with split=template (default 17 of 85);
      held_out=N            with split=instance: N templates left out of train altogether, whose
                            ``test`` instances each make a second test set (split ``held_out``);
      eval=in_template|held_out   which test set ``eval.py`` scores (default in_template: ``test``);
      seed=N                draws the instances and the held-out templates.

    A test question with the same numbers (in order) and the same answer as a train question differs
    from it only in names: it is not drawn (another instance of its template is), and the count of
    such near-duplicates left out is kept (``near_duplicates``). Questions are grouped by template for
    intervals (``cluster_of``).

    The defaults give 2040 train rows (teacher half and student pool: 12 instances of each of the 85
    templates each) and 340 test rows. Train rows are ordered instance by instance, so each half of
    train holds the same templates.
    """

    name = "gsm_symbolic"
    answer_type = "number"
    DEFAULTS: ClassVar[dict[str, dict[str, int]]] = {"instance": {"train": 24, "test": 4},
                                                     "template": {"train": 30, "test": 20}}
    EVAL_SETS: ClassVar[dict[str, str]] = {"in_template": "test", "held_out": "held_out"}

    def __init__(self, options: dict[str, str] | None = None) -> None:
        super().__init__()
        options = dict(options or {})
        known = {"split", "train", "test", "test_templates", "held_out", "eval", "seed"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise AliceError(f"--data gsm_symbolic: unknown option(s) {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(known))})")
        self.split_by = options.pop("split", "instance")
        if self.split_by not in self.DEFAULTS:
            raise AliceError(f"--data gsm_symbolic: split={self.split_by} (use instance or template)")
        eval_set = options.pop("eval", "in_template")
        if eval_set not in self.EVAL_SETS:
            raise AliceError(f"--data gsm_symbolic: eval={eval_set} (use {' or '.join(self.EVAL_SETS)})")
        try:
            values = {k: int(v) for k, v in options.items()}
        except ValueError:
            raise AliceError(f"--data gsm_symbolic: options {options} must be whole numbers") from None
        defaults = self.DEFAULTS[self.split_by]
        self.train_per_template = values.get("train", defaults["train"])
        self.test_per_template = values.get("test", defaults["test"])
        self.test_templates = values.get("test_templates", 17)
        self.held_out = values.get("held_out", 0)
        self.seed = values.get("seed", 0)
        if min(self.train_per_template, self.test_per_template) < 1:
            raise AliceError("--data gsm_symbolic: train and test must be at least 1 per template")
        if self.held_out and self.split_by != "instance":
            raise AliceError("--data gsm_symbolic: held_out=N goes with split=instance (split=template holds out "
                             "test_templates)")
        if eval_set == "held_out" and not self.held_out:
            raise AliceError("--data gsm_symbolic: eval=held_out needs held_out=N templates")
        self.eval_set = eval_set
        self.eval_split = self.EVAL_SETS[eval_set]
        self._rows: dict[str, list[dict]] | None = None

    def cluster_of(self, example_id: str) -> str:
        match = re.search(r"-t(\d+)-", example_id)
        return f"template {int(match.group(1))}" if match else example_id

    def _generate(self) -> dict[str, list[dict]]:
        try:
            from reasoning_gym.arithmetic.gsm_symbolic.gsm_symbolic import (
                GSMSymbolicDataset,
                GSMSymbolicDatasetConfig,
                tasks_ok,
            )
        except ImportError:
            raise AliceError("--data gsm_symbolic needs the reasoning-gym package: pip install -e \".[gsm]\" "
                             f"(or reasoning-gym=={GSM_SYMBOLIC_VERSION})") from None
        from importlib.metadata import version

        if version("reasoning-gym") != GSM_SYMBOLIC_VERSION:
            raise AliceError(f"--data gsm_symbolic: reasoning-gym {version('reasoning-gym')} is installed; the rows "
                             f"are defined by {GSM_SYMBOLIC_VERSION} (pip install reasoning-gym=={GSM_SYMBOLIC_VERSION})")
        generators = GSMSymbolicDataset(GSMSymbolicDatasetConfig(size=1, seed=self.seed)).generators
        templates = sorted(tasks_ok)
        if self.split_by == "template":
            if not 0 < self.test_templates < len(templates):
                raise AliceError(f"--data gsm_symbolic: test_templates must be between 1 and {len(templates) - 1}")
            held_out = set(random.Random(f"gsm_symbolic:{self.seed}:templates").sample(templates,
                                                                                       self.test_templates))
            wanted = {t: ({"test": self.test_per_template} if t in held_out else {"train": self.train_per_template})
                      for t in templates}
        else:
            if not 0 <= self.held_out < len(templates):
                raise AliceError(f"--data gsm_symbolic: held_out must be between 0 and {len(templates) - 1}")
            held_out = set(random.Random(f"gsm_symbolic:{self.seed}:held_out").sample(templates, self.held_out))
            wanted = {t: ({"held_out": self.test_per_template} if t in held_out else
                          {"train": self.train_per_template, "test": self.test_per_template}) for t in templates}
        per_split: dict[str, dict[int, list[dict]]] = {"train": {}, "test": {}, "held_out": {}}
        seen: dict[int, set[str]] = {t: set() for t in templates}  # distinct questions, none shared by two splits
        train_keys: set[tuple] = set()
        near_duplicates = {"test": 0, "held_out": 0}
        for split in ("train", "test", "held_out"):  # every train row first: test rows are checked against all
            for template in templates:
                count = wanted[template].get(split)
                if not count:
                    continue
                made: list[dict] = []
                attempt = 0
                while len(made) < count:
                    if attempt >= 20 * count + 100:
                        raise AliceError(f"gsm_symbolic template {template}: only {len(made)} distinct "
                                         f"{split} instances (asked for {count})")
                    # A string seed is hashed (sha512) by random: the same rows on every machine.
                    rng = random.Random(f"gsm_symbolic:{self.seed}:{template}:{split}:{attempt}")
                    attempt += 1
                    example = generators[template](rng, 1.0)
                    if example["question"] in seen[template]:
                        continue
                    key = (tuple(numbers_in(example["question"])), normalize_number(str(example["answer"])))
                    if split != "train" and key in train_keys:
                        near_duplicates[split] += 1  # a train question with other names: not a test
                        continue
                    seen[template].add(example["question"])
                    if split == "train":
                        train_keys.add(key)
                    made.append({"id": f"gsm_symbolic-t{template:02d}-{split}-{len(made):02d}",
                                 "question": example["question"], "answer": str(example["answer"]),
                                 "rationale": example["metadata"]["answer_cot"]})
                per_split[split][template] = made
        rows: dict = {}
        for split, by_template in per_split.items():
            # Instance by instance over the templates, so both halves of train cover every template.
            depth = max((len(v) for v in by_template.values()), default=0)
            rows[split] = [by_template[t][i] for i in range(depth) for t in sorted(by_template)
                           if i < len(by_template[t])]
        rows["meta"] = {"near_duplicates_left_out": near_duplicates, "held_out_templates": sorted(held_out)}
        return rows

    @property
    def near_duplicates(self) -> dict[str, int]:
        """Test draws left out because a train question had the same numbers and answer, per test set."""
        self._load_rows("train")
        return dict(self._rows.get("meta", {}).get("near_duplicates_left_out", {}))

    def describe(self) -> dict:
        """What the rows are, for manifests and reports."""
        self._load_rows("train")
        meta = self._rows.get("meta", {})
        return {"split": self.split_by, "train_per_template": self.train_per_template,
                "test_per_template": self.test_per_template, "held_out_templates": meta.get("held_out_templates"),
                "eval_set": self.eval_set, "near_duplicates_left_out": meta.get("near_duplicates_left_out"),
                "rows": {s: len(r) for s, r in self._rows.items() if s != "meta"}}

    def cache_path(self) -> Path:
        from .models import cache_dir

        held = self.test_templates if self.split_by == "template" else self.held_out
        key = (f"{self.split_by}-train{self.train_per_template}-test{self.test_per_template}"
               f"-held{held}-seed{self.seed}-dedup")
        return cache_dir() / "gsm_symbolic" / f"reasoning-gym-{GSM_SYMBOLIC_VERSION}-{key}.json"

    def _load_rows(self, split: str) -> list[dict]:
        if self._rows is None:
            # Generated once per machine: reasoning-gym imports all of its ~100 generators (seconds), and
            # a machine without it (or without its compiled dependencies) can still run from a copy.
            path = self.cache_path()
            if path.is_file():
                self._rows = json.loads(path.read_text(encoding="utf-8"))
            else:
                self._rows = self._generate()
                atomic_write_json(path, self._rows)
        if split == "meta" or split not in self._rows or (split == "held_out" and not self._rows[split]):
            sets = "train, test" + (" and held_out" if self._rows.get("held_out") else "")
            raise AliceError(f"gsm_symbolic has splits {sets}, not {split!r}")
        return self._rows[split]


def numbers_in(text: str) -> list[str]:
    """The numbers of a question in order, normalized ('1,200' -> '1200')."""
    return [n for n in (normalize_number(m) for m in re.findall(r"\d[\d,]*(?:\.\d+)?", text)) if n is not None]


class HotpotQA(Task):
    name = "hotpotqa"
    answer_type = "text"
    eval_split = "validation"
    student_pool_fraction = 0.2

    def _load_rows(self, split: str) -> list[dict]:
        rows = _hub_dataset("hotpotqa/hotpot_qa", "fullwiki", split)
        return [{"id": r["id"], "question": r["question"], "answer": r["answer"]} for r in rows]


class TriviaQA(Task):
    name = "triviaqa"
    answer_type = "text"
    eval_split = "validation"
    student_pool_fraction = 0.2

    def _load_rows(self, split: str) -> list[dict]:
        rows = _hub_dataset("mandarjoshi/trivia_qa", "rc", split)
        return [{"id": r["question_id"], "question": r["question"], "answer": r["answer"]["value"],
                 "aliases": r["answer"]["aliases"]} for r in rows]


class CustomJsonl(Task):
    """--data path/to/file.jsonl: rows with id, question, answer, and optional aliases,
    rationale and split (train/test/validation; default train). The answer type comes from
    --answer-type or an ``answer_type`` field that all rows share."""

    def __init__(self, path: str | Path, answer_type: str | None = None) -> None:
        self.path = Path(path)
        self.name = self.path.stem
        self.rows = read_jsonl(self.path, required=("id", "question", "answer"))
        declared = {r.get("answer_type") for r in self.rows} - {None}
        if len(declared) > 1:
            raise AliceError(f"{self.path}: rows declare several answer types {sorted(declared)}")
        self.answer_type = answer_type or (declared.pop() if declared else None)
        if self.answer_type is None:
            raise AliceError(f"{self.path}: declare the answer type with --answer-type number|choice|text")
        super().__init__()
        splits = {r.get("split", "train") for r in self.rows}
        self.eval_split = "test" if "test" in splits else "validation" if "validation" in splits else "train"

    def _load_rows(self, split: str) -> list[dict]:
        return [r for r in self.rows if r.get("split", "train") == split]


TASKS = {"arc_challenge": ArcChallenge, "gsm8k": Gsm8k, "hotpotqa": HotpotQA, "triviaqa": TriviaQA,
         "gsm_symbolic": GsmSymbolic}
ALIASES = {"arc": "arc_challenge", "hotpot_qa": "hotpotqa", "trivia_qa": "triviaqa"}


def load_task(data: str, answer_type: str | None = None) -> Task:
    """A task by name (``arc_challenge``, ``gsm8k``, ``hotpotqa``, ``triviaqa``), a folder
    saved like the shipped ARC split, or a custom ``.jsonl`` file."""
    key = ALIASES.get(data.lower(), data.lower())
    if key.startswith("gsm_symbolic:"):
        return GsmSymbolic(parse_data_options(data.split(":", 1)[1], data))
    if key in TASKS:
        return TASKS[key]()
    path = Path(data)
    if path.suffix == ".jsonl":
        if not path.is_file():
            raise AliceError(f"{path}: file not found")
        return CustomJsonl(path, answer_type)
    if path.is_dir() and (path / "dataset_dict.json").exists():
        return ArcChallenge(path)
    raise AliceError(
        f"unknown dataset {data!r}: use one of {', '.join(TASKS)} (gsm_symbolic:split=template,...), "
        "a .jsonl file, or a saved ARC folder"
    )


def parse_data_options(text: str, data: str) -> dict[str, str]:
    """'split=template,seed=1' -> {'split': 'template', 'seed': '1'}."""
    options = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise AliceError(f"--data {data}: expected key=value options separated by commas, got {part!r}")
        options[key.strip()] = value.strip()
    return options

"""Tasks: where each dataset's splits come from, stable ids, the METHOD.md splits, prompts,
answer extraction and scoring, declared once per task.

    task = load_task("arc_challenge")
    teacher_rows, student_rows = task.pools(split_seed=None)
    messages = task.messages(example)
    score = task.score(response, example)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from .answers import Score, answer_format
from .errors import AliceError
from .records import read_jsonl

REPO_ROOT = Path(__file__).resolve().parent.parent
ARC_FOLDER = REPO_ROOT / "arc_challenge_processed"


@dataclass
class Example:
    id: str
    question: str
    gold: str  # normalized gold answer: a label, a number, or the answer text
    aliases: list[str] = field(default_factory=list)
    rationale: str | None = None  # a worked solution when the dataset ships one (GSM8K)

    def to_row(self) -> dict:
        return {"id": self.id, "question": self.question, "gold": self.gold}


class Task:
    """A dataset plus its answer format. Subclasses say where rows come from."""

    name: str
    answer_type: str
    train_split = "train"
    eval_split = "test"
    student_pool_fraction = 1.0  # share of the second half of train used as student pool
    student_part: tuple[int, int] | None = None  # (k, n): only part k of n of the student pool (cascades)

    def __init__(self) -> None:
        self.format = answer_format(self.answer_type)
        self._cache: dict[str, list[Example]] = {}

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
        """METHOD.md: first half of train for the teacher, second half for the student pool
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
        """pool: 'teacher' or 'student' (METHOD.md halves of train), 'eval', or a split name."""
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
        return self.format.score(response, example.gold, example.question, example.aliases)

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
        raise AliceError(f"could not load {path} ({name}) split {split!r} from the hub: {err}") from None


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


TASKS = {"arc_challenge": ArcChallenge, "gsm8k": Gsm8k, "hotpotqa": HotpotQA, "triviaqa": TriviaQA}
ALIASES = {"arc": "arc_challenge", "hotpot_qa": "hotpotqa", "trivia_qa": "triviaqa"}


def load_task(data: str, answer_type: str | None = None) -> Task:
    """A task by name (``arc_challenge``, ``gsm8k``, ``hotpotqa``, ``triviaqa``), a folder
    saved like the shipped ARC split, or a custom ``.jsonl`` file."""
    key = ALIASES.get(data.lower(), data.lower())
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
        f"unknown dataset {data!r}: use one of {', '.join(TASKS)}, a .jsonl file, or a saved ARC folder"
    )

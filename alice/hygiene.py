"""Checks on what a small model writes before it becomes training data (docs/METHOD.md, "Checked
targets and statements": a deviation from the reference code, which trains on whatever came back).

A **target** (a proactive answer, a self-training or W2S label, the teacher's answer on a certain
question) is malformed when, by the first rule that applies:
- ``truncated``: generation stopped at the token limit;
- ``no_final_answer``: the task's answer extraction finds no final answer in it;
- ``several_final_answers``: it states two final answers that differ (a ``####`` one and a
  ``\\boxed{}`` one, or two ``####`` lines);
- ``echoes_prompt``: it reproduces a section header of its prompt ("The tutor's answer:"), names what
  the prompt told it not to mention (the tutor, its first answer), or copies a run of
  ``INSTRUCTION_RUN`` words of the prompt's instructions;
- ``copies_statement``: it copies a run of ``STATEMENT_RUN`` words of the uncertainty statement that
  appears nowhere else in its prompt (not in the question, nor in either answer shown).

An **uncertainty statement** fails when it (by the first rule that applies):
- ``empty``;
- ``mentions_answers``: talks about answers, responses, attempts or samples (the method's statements
  never mention them: they speak of the teacher's own doubts);
- ``numbered_alternative``: names an alternative by number or position ("Answer 2", "the first one");
- ``verdict``: says which alternative is right or wrong (outside a hedge such as "whether");
- ``denies_disagreement``: says the alternatives do not disagree (they do: that is why it is asked);
- ``not_first_person``: never says I, me or my.
"N/A" passes (the method allows it) and is counted apart.

Words are compared lower-cased, as runs of letters and digits, so spacing and punctuation do not hide
a copy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

TARGET_REASONS = {
    "truncated": "stopped at the token limit",
    "no_final_answer": "no final answer the task's extraction finds",
    "several_final_answers": "two final answers that differ",
    "echoes_prompt": "reproduces a section header of its prompt, names the tutor or its first answer, or copies "
                     "a run of the prompt's instructions",
    "copies_statement": "copies a run of the uncertainty statement found nowhere else in the prompt",
}
STATEMENT_REASONS = {
    "empty": "nothing said",
    "mentions_answers": "talks about answers, responses, attempts or samples",
    "numbered_alternative": "names an alternative by number or position",
    "verdict": "says which alternative is right or wrong",
    "denies_disagreement": "says the alternatives do not disagree",
    "not_first_person": "not in the first person",
}
INSTRUCTION_RUN = 10  # words of the prompt's instructions in a row that make an echo
STATEMENT_RUN = 8  # words of the statement in a row (found nowhere else in the prompt) that make a copy

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def runs(text: str, n: int) -> set[tuple[str, ...]]:
    """Every run of ``n`` consecutive words of ``text``."""
    w = words(text)
    return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}


def shares_run(text: str, source: str, n: int, exclude: Iterable[str] = ()) -> bool:
    """``text`` contains a run of ``n`` words of ``source`` that none of ``exclude`` contains."""
    wanted = runs(source, n)
    for other in exclude:
        wanted -= runs(other, n)
    return bool(wanted & runs(text, n))


def check_target(text: str, final_answers: Sequence[str], *, truncated: bool = False, question: str = "",
                 shown: Sequence[str] = (), headers: Sequence[str] = (), forbidden: Sequence[str] = (),
                 instructions: str = "", statement: str | None = None) -> str | None:
    """Why a generated target is malformed (a ``TARGET_REASONS`` key), or None when it is clean.

    final_answers: the distinct final answers the task's extraction finds in ``text``; question and
    shown: the question and the other texts its prompt showed (the model's first answer, the teacher's),
    whose words a target may repeat; headers: the prompt's section headers; forbidden: what the prompt
    told the model not to mention (a phrase the question itself uses is allowed); instructions: the
    prompt's instruction text; statement: the uncertainty statement shown."""
    if truncated:
        return "truncated"
    if not final_answers:
        return "no_final_answer"
    if len(set(final_answers)) > 1:
        return "several_final_answers"
    said, asked = f" {' '.join(words(text))} ", f" {' '.join(words(question))} "
    for phrase in (*headers, *forbidden):
        phrase = f" {' '.join(words(phrase))} "
        if phrase in said and phrase not in asked:
            return "echoes_prompt"
    context = (question, *shown)
    if instructions and shares_run(text, instructions, INSTRUCTION_RUN, exclude=context):
        return "echoes_prompt"
    if statement and shares_run(text, statement, STATEMENT_RUN, exclude=context):
        return "copies_statement"
    return None


def answer_check(task) -> Callable[[object, str], str | None]:
    """The check of a plain answer to the task's own prompt (W2S labels, self-training, a zero-shot answer,
    the teacher's answer to a certain question): ``check(example, text)``."""
    def check(example, text: str) -> str | None:
        return check_target(text, task.format.final_answers(text, example.question), truncated=is_truncated(text),
                            question=example.question, instructions=task.format.instruction(example.question))
    return check


def is_truncated(text: str) -> bool:
    """Whether a completion stopped at the token limit (``backends.Completion``; a plain string: no)."""
    return bool(getattr(text, "truncated", False))


_REFERENCE_PLURAL = re.compile(r"\b(answers|responses|attempts|samples)\b", re.IGNORECASE)
_REFERENCE_SINGULAR = re.compile(r"\b(response|attempt|sample)\b", re.IGNORECASE)
_ORDINAL = r"(first|second|third|fourth|fifth|sixth|last|other|1st|2nd|3rd|4th|5th)"
_ALTERNATIVE = r"(answer|option|response|attempt|sample|solution|alternative|approach|way|path|one|method)"
_NUMBERED = re.compile(rf"\b{_ALTERNATIVE}\s*#?\s*\(?\d+\b|\b(the|an?)\s+{_ORDINAL}\s+"
                       rf"{_ALTERNATIVE}\b|\b(each|both|one|either|neither)\s+(of\s+the\s+)?(answer|answers|option|"
                       r"options|response|responses)\b", re.IGNORECASE)
_VERDICT = re.compile(r"\b(correctly|incorrectly|is\s+(the\s+)?(correct|right|wrong|incorrect)|(correct|right|wrong)"
                      r"\s+answer|is\s+a\s+mistake|made\s+a\s+mistake|should\s+be)\b", re.IGNORECASE)
_HEDGE = re.compile(r"\b(whether|which|if|unsure|not\s+sure|uncertain|don'?t\s+know|can'?t\s+tell|torn|wonder)\b",
                    re.IGNORECASE)
_DENIAL = re.compile(r"\b((do|does|did)\s*(not|n't)\s+(actually\s+|really\s+)?disagree|no\s+(real\s+|actual\s+)?"
                     r"disagreement|(all|both)\s+agree|agree\s+on\s+(everything|all))\b", re.IGNORECASE)
_FIRST_PERSON = re.compile(r"\bI\b|\b(?i:me|my|myself|mine)\b")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def check_statement(text: str) -> str | None:
    """Why an uncertainty statement breaks the method's rules (a ``STATEMENT_REASONS`` key), or None."""
    text = (text or "").strip()
    if not text:
        return "empty"
    if _REFERENCE_PLURAL.search(text) or _REFERENCE_SINGULAR.search(text):
        return "mentions_answers"
    if _NUMBERED.search(text):
        return "numbered_alternative"
    if any(_VERDICT.search(s) and not _HEDGE.search(s) for s in _SENTENCE.split(text)):
        return "verdict"
    if _DENIAL.search(text):
        return "denies_disagreement"
    if not _FIRST_PERSON.search(text):
        return "not_first_person"
    return None


def share_words(share: float) -> str:
    """How often, in words a reader takes in at once."""
    for limit, text in ((0.9, "almost every time"), (0.7, "most of the time"), (0.55, "more than half the time"),
                        (0.45, "about half the time"), (0.28, "about a third of the time"),
                        (0.2, "about a quarter of the time"), (0.12, "now and then"), (0.0, "rarely")):
        if share >= limit:
            return text
    return "rarely"


def structured_statement(keys: Sequence[str], sizes: Sequence[int], total: int | None = None) -> str:
    """The teacher's uncertainty written by rule from its clusters alone, in the first person: the answer
    it reached most often and how often the others came up. ``keys``: each cluster's final answer,
    largest cluster first; ``total``: samples the shares are of (default: the clustered ones)."""
    total = total or sum(sizes) or 1
    if not keys:
        return "I could not reach an answer I trust."
    first = f"I reached {keys[0]} most often ({share_words(sizes[0] / total)})"
    if len(keys) == 1:
        return first + "."
    others = list(zip(keys[1:], sizes[1:]))
    shown = others[:3]
    parts = []
    for key, size in shown:
        parts.append(f"{key} {share_words(size / total)}")
    rest = others[3:]
    tail = f", and {len(rest)} other result{'s' if len(rest) > 1 else ''} less often" if rest else ""
    return f"{first}, but I also got " + "; ".join(parts) + tail + "."


def structured_from_row(row: dict, task, example) -> str:
    """The structured statement of an uncertainty row: each cluster's answer (its key, or what the task's
    extraction reads off its representative) and how often it came up among the K samples."""
    clusters = row.get("clusters") or []
    keys = [str(c.get("key") or task.score(c.get("representative") or "", example).prediction or "another result")
            for c in clusters]
    return structured_statement(keys, [c["size"] for c in clusters], row.get("n_samples"))


def audit_rows(task, rows: Sequence[dict], statements: dict[str, str] | None = None) -> dict:
    """A training file judged again by the target checks, row by row: what a model trained on it saw.
    Rows labelled ``new`` (proactive answers) get the proactive prompt's checks, with the statement they
    carry (or ``statements[id]``); every other row is a plain answer. Truncation cannot be seen in a
    file and is not counted. Returns rows, clean rows and malformed rows by reason."""
    from collections import Counter

    from .prompts import PROACTIVE_FORBIDDEN, PROACTIVE_HEADERS, proactive_instructions
    from .tasks import Example

    reasons: Counter = Counter()
    plain = answer_check(task)
    for row in rows:
        text = row.get("response") or ""
        example = Example(id=str(row["id"]), question=row.get("question", ""), gold="0")
        if row.get("label") == "new":
            statement = row.get("statement", (statements or {}).get(str(row["id"])))
            why = check_target(text, task.format.final_answers(text, example.question), question=example.question,
                               shown=(row.get("zero_shot") or "", row.get("teacher_answer") or ""),
                               headers=PROACTIVE_HEADERS, forbidden=PROACTIVE_FORBIDDEN,
                               instructions=proactive_instructions(task, example, statement is not None),
                               statement=statement)
        else:
            why = plain(example, text)
        reasons[why or "clean"] += 1
    clean = reasons.pop("clean", 0)
    return {"rows": len(rows), "clean": clean, "malformed": sum(reasons.values()),
            "malformed_by_reason": dict(sorted(reasons.items()))}


def audit_statements(rows: Sequence[dict]) -> dict:
    """The uncertain rows' statements judged by the statement checks (N/A counted apart)."""
    from collections import Counter

    reasons: Counter = Counter()
    for row in rows:
        if row.get("status") != "uncertain":
            continue
        text = (row.get("statement") or "").strip()
        if text.upper().startswith("N/A"):
            reasons["not_applicable"] += 1
            continue
        reasons[check_statement(text) or "clean"] += 1
    clean, na = reasons.pop("clean", 0), reasons.pop("not_applicable", 0)
    return {"statements": clean + na + sum(reasons.values()), "clean": clean, "not_applicable": na,
            "structured_fallback": sum(r.get("status") == "uncertain" and r.get("source") == "fallback" for r in rows),
            "failing": sum(reasons.values()), "failing_by_reason": dict(sorted(reasons.items()))}

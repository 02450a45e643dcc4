"""Answer formats: how to ask for, extract, normalize and score each kind of answer.

Three kinds cover the paper's datasets and custom data:
- ``choice``: multiple choice with letter (A-E) or numeric (1-5) labels (ARC);
- ``number``: a final number (GSM8K);
- ``text``: a short free-text answer with aliases (HotpotQA, TriviaQA).

Unparsable responses are wrong and counted: ``Score.parsed`` is False.

Scoring rules (``--scoring``): choice and number answers are judged by their extracted label or
number under either rule; for text answers the rules differ (``SCORING_RULES``).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .errors import AliceError

# The open-QA scoring rules, declared once: name -> help (used by --scoring, manifests and reports).
SCORING_RULES = {
    "paper": "the paper's rule: correct when a normalized gold answer or alias occurs, as whole words, "
             "anywhere in the reply",
    "strict": "exact match: correct when the extracted answer (after 'The answer is') equals a gold answer or "
              "alias, both normalized as lm-evaluation-harness does (lower case, no punctuation, no "
              "articles a/an/the, single spaces)",
}
DEFAULT_SCORING = "paper"


def check_scoring(rule: str) -> str:
    if rule not in SCORING_RULES:
        raise AliceError(f"unknown scoring rule {rule!r} (choose from {', '.join(SCORING_RULES)})")
    return rule


@dataclass(frozen=True)
class Score:
    prediction: str | None  # the normalized extracted answer, None when unparsable
    parsed: bool
    correct: bool  # under the rule asked for
    by_rule: dict[str, bool] | None = None  # every rule's verdict, where the rules can differ (text answers)


# ----------------------------------------------------------------------------- final answers


def _final_values(response: str, patterns: list[re.Pattern], strong: int, value, allowed: set[str] | None = None
                  ) -> list[str]:
    """Distinct values of every match of the first ``strong`` patterns (the explicit final-answer marks),
    or of the later ones when those find nothing; in order of appearance."""
    if not response:
        return []
    for group in (patterns[:strong], patterns[strong:]):
        matches = sorted((m for pattern in group for m in pattern.finditer(response)), key=lambda m: m.start())
        values = [v for v in (value(m) for m in matches) if v is not None and (allowed is None or v in allowed)]
        if values:
            return list(dict.fromkeys(values))
    return []


# ----------------------------------------------------------------------------- choice

OPTION_LINE = re.compile(r"^\s*\(?([A-Ea-e]|[1-5])[.)]\s+(.+?)\s*$", re.MULTILINE)
_LABEL = r"\(?\s*\**\s*([A-Ea-e1-5])\s*\**\s*\)?"
_END = r"(?=\s*(?:$|[.,;:!)\]*]|\s+(?:is|because|as|since|and|-)\b|\n))"
_CHOICE_PATTERNS = [
    re.compile(r"my\s+(?:final\s+)?choice\s+is\s*:?\s*" + _LABEL + _END, re.IGNORECASE),
    re.compile(r"\\boxed\s*\{\s*(?:\\text\s*\{)?\s*\(?([A-Ea-e1-5])\)?", re.IGNORECASE),
    re.compile(r"(?:final\s+)?answer\s*(?:is|:)\s*(?:option\s+)?:?\s*" + _LABEL + _END, re.IGNORECASE),
    re.compile(r"(?:correct|best)\s+(?:option|choice|answer)\s+is\s*:?\s*" + _LABEL + _END, re.IGNORECASE),
]


def parse_options(question: str) -> dict[str, str]:
    """Labels and texts of the option lines ('A. text' or '1. text') at the end of a question."""
    return {m.group(1).upper(): m.group(2) for m in OPTION_LINE.finditer(question)}


def extract_choice(response: str, labels: list[str]) -> str | None:
    """The option label a response commits to, or None.

    Accepts 'My choice is B.', '(b)', 'b', '4.', '\\boxed{C}', 'The answer is (D)'; the last
    statement wins. A lower-case letter must stand alone (so 'answer is a dry palm' is not A).
    A label that is not one of the question's options is unparsable.
    """
    if not response:
        return None
    for pattern in _CHOICE_PATTERNS:
        matches = list(pattern.finditer(response))
        if matches:
            label = matches[-1].group(1).upper()
            return label if label in labels else None
    # A bare reply that is only a label, e.g. "B" or "(c)."
    bare = re.fullmatch(r"\s*\(?([A-Ea-e1-5])\)?[.)]?\s*", response)
    if bare and bare.group(1).upper() in labels:
        return bare.group(1).upper()
    return None


class ChoiceAnswer:
    kind = "choice"
    rules_differ = False

    def instruction(self, question: str) -> str:
        labels = ", ".join(parse_options(question)) or "A, B, C, D"
        return (
            "Think it through step by step, then end your reply with the sentence "
            f'"My choice is" followed by the label of the option you pick (one of {labels}).'
        )

    def gold(self, answer: str, question: str, row_ref: str) -> str:
        """The gold label from an answer such as 'C. Planetary days ...' or 'C'."""
        options = parse_options(question)
        match = re.match(r"\s*\(?([A-Ea-e]|[1-5])\)?(?:[.)]|\s|$)", answer)
        if not match:
            raise AliceError(f"{row_ref}: answer {answer!r} does not start with an option label")
        label = match.group(1).upper()
        if label not in options:
            raise AliceError(
                f"{row_ref}: answer label {label!r} is not among the options {sorted(options)}"
            )
        return label

    def score(self, response: str, gold: str, question: str, aliases: list[str],
              rule: str = DEFAULT_SCORING) -> Score:
        """The extracted label against the gold label: the same under every rule."""
        prediction = extract_choice(response, list(parse_options(question)))
        return Score(prediction, prediction is not None, prediction == gold)

    def target(self, gold: str, question: str) -> str:
        return f"My choice is {gold}."

    def final_answers(self, response: str, question: str) -> list[str]:
        """Every distinct label the reply commits to ("My choice is", \\boxed{}), else what the weaker
        patterns find; for the check that a training target has exactly one final answer."""
        return _final_values(response, _CHOICE_PATTERNS, 2, lambda m: m.group(1).upper(),
                             allowed=set(parse_options(question))) or \
            ([label] if (label := extract_choice(response, list(parse_options(question)))) else [])

    def cluster_key(self, response: str, question: str) -> str | None:
        return extract_choice(response, list(parse_options(question)))


# ----------------------------------------------------------------------------- number

_NUMBER = r"(-?\s*\$?\s*-?\d[\d,]*(?:\.\d+)?|-?\s*\$?\s*\.\d+)"
_NUMBER_PATTERNS = [
    re.compile(r"####\s*" + _NUMBER),
    re.compile(r"\\boxed\s*\{\s*" + _NUMBER),
    re.compile(r"(?:final\s+)?answer\s*(?:is|:)\s*:?\s*\**\s*" + _NUMBER, re.IGNORECASE),
]


def normalize_number(text: str) -> str | None:
    """'$1,234.50' -> '1234.5'; '-7' -> '-7'; None when it is not a number."""
    cleaned = re.sub(r"[\s$,]", "", text).rstrip(".")
    if cleaned.count("-") > 1:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


def extract_number(response: str) -> str | None:
    if not response:
        return None
    for pattern in _NUMBER_PATTERNS:
        matches = list(pattern.finditer(response))
        if matches:
            return normalize_number(matches[-1].group(1))
    return None


class NumberAnswer:
    kind = "number"
    rules_differ = False

    def instruction(self, question: str) -> str:
        return (
            "Solve the problem step by step. On the last line write #### and then the final "
            "number alone, with no units."
        )

    def gold(self, answer: str, question: str, row_ref: str) -> str:
        text = answer.split("####")[-1] if "####" in answer else answer
        number = normalize_number(text.strip())
        if number is None:
            raise AliceError(f"{row_ref}: gold answer {text.strip()!r} is not a number")
        return number

    def score(self, response: str, gold: str, question: str, aliases: list[str],
              rule: str = DEFAULT_SCORING) -> Score:
        """The extracted number against the gold number: the same under every rule."""
        prediction = extract_number(response)
        correct = prediction is not None and Decimal(prediction) == Decimal(gold)
        return Score(prediction, prediction is not None, correct)

    def target(self, gold: str, question: str) -> str:
        return f"#### {gold}"

    def final_answers(self, response: str, question: str) -> list[str]:
        """Every distinct number after ``####`` or in ``\\boxed{}``, else after "the answer is"; for the
        check that a training target has exactly one final answer."""
        return _final_values(response, _NUMBER_PATTERNS, 2, lambda m: normalize_number(m.group(1)))

    def cluster_key(self, response: str, question: str) -> str | None:
        return extract_number(response)


# ----------------------------------------------------------------------------- text


def normalize_text(text: str) -> str:
    """SQuAD/TriviaQA normalization: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation) | {"‘", "’", "“", "”"})
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_TEXT_FINAL = re.compile(r"(?:final\s+answer|the\s+answer\s+is|answer\s*:)\s*:?\s*(.+)", re.IGNORECASE)


def extract_text(response: str) -> str | None:
    """The short answer after 'The answer is' / 'Answer:', else the whole reply; None if empty."""
    if not response or not response.strip():
        return None
    matches = list(_TEXT_FINAL.finditer(response))
    text = matches[-1].group(1) if matches else response
    text = text.strip().split("\n")[0].strip().rstrip(".").strip()
    return text or None


class TextAnswer:
    kind = "text"
    rules_differ = True  # the paper's substring rule and strict exact match can disagree

    def instruction(self, question: str) -> str:
        return (
            "Answer in one to three sentences, reasoning briefly if needed, and end with "
            '"The answer is" followed by the short answer.'
        )

    def gold(self, answer: str, question: str, row_ref: str) -> str:
        if not str(answer).strip():
            raise AliceError(f"{row_ref}: empty gold answer")
        return str(answer).strip()

    def score(self, response: str, gold: str, question: str, aliases: list[str],
              rule: str = DEFAULT_SCORING) -> Score:
        """``paper``: a normalized gold answer or alias occurs, as whole words, in the reply;
        ``strict``: the normalized extracted answer equals one of them. ``by_rule`` holds both."""
        check_scoring(rule)
        prediction = extract_text(response)
        if prediction is None:
            return Score(None, False, False, {name: False for name in SCORING_RULES})
        normalized = normalize_text(prediction)
        haystack = f" {normalize_text(response)} "
        candidates = {normalize_text(a) for a in [gold, *aliases]} - {""}
        by_rule = {"paper": any(f" {c} " in haystack for c in candidates), "strict": normalized in candidates}
        return Score(normalized, True, by_rule[rule], by_rule)

    def target(self, gold: str, question: str) -> str:
        return f"The answer is {gold}."

    def final_answers(self, response: str, question: str) -> list[str]:
        """Every distinct answer after "The answer is"; a reply without one is its own answer (the
        paper's rule reads the whole reply)."""
        found = list(dict.fromkeys(normalize_text(m.group(1).split("\n")[0]) for m in _TEXT_FINAL.finditer(response or "")))
        found = [f for f in found if f]
        if found:
            return found
        return [normalize_text(response)] if response and normalize_text(response) else []

    def cluster_key(self, response: str, question: str) -> str | None:
        return None  # open answers cluster by meaning, not by string


ANSWER_FORMATS = {"choice": ChoiceAnswer, "number": NumberAnswer, "text": TextAnswer}


def answer_format(kind: str) -> ChoiceAnswer | NumberAnswer | TextAnswer:
    if kind not in ANSWER_FORMATS:
        raise AliceError(f"unknown answer type {kind!r} (choose from {', '.join(ANSWER_FORMATS)})")
    return ANSWER_FORMATS[kind]()

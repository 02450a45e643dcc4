"""The Alice prompts (docs/METHOD.md stages 3 and 5), written in this project's own words.

- ``summarizer_messages``: a summarizer LLM reads the distinct answers a teacher gave to one
  question and states, in the teacher's voice, what it is unsure about (1-3 sentences) or N/A.
- ``proactive_messages``: the student sees the question, its own first answer, the teacher's
  answer and the teacher's uncertainty, and writes its own final answer in the task's format.

The per-question answer prompt (zero-shot, probing, evaluation) is ``Task.messages``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .tasks import Example, Task

NOT_APPLICABLE = "N/A"

SUMMARIZER_INSTRUCTIONS = """\
Below is a question, followed by the different ways you worked it out when you tried it several \
times, the one you reached most often first. They end in different results.

In one to three sentences, written in the first person ("I"), say what you are unsure about: the \
step where your ways of working it out part, and the results you are torn between (name the \
numbers or facts themselves). Speak only of your own doubts: do not mention answers, responses, \
attempts or samples, do not number or order them ("the first one"), and do not say which one is \
right.
If they do not actually differ on anything that matters, reply with exactly: N/A"""

HOW_OFTEN = ((0.5, "most of the time"), (0.25, "often"), (0.1, "sometimes"), (0.0, "rarely"))


def how_often(share: float) -> str:
    return next(text for limit, text in HOW_OFTEN if share >= limit)


def summarizer_messages(question: str, representatives: Sequence[str], sizes: Sequence[int]) -> list[dict]:
    """One conversation per uncertain question; the representatives are shown largest cluster first,
    each with how often it came up in words, and without a number or label the statement could cite."""
    total = sum(sizes) or 1
    blocks = [f"--- A way you worked it out ({how_often(size / total)}):\n{text.strip()}"
              for text, size in zip(representatives, sizes)]
    content = f"{SUMMARIZER_INSTRUCTIONS}\n\nQuestion:\n{question.strip()}\n\n" + "\n\n".join(blocks) + \
        "\n\n---\nWhat you are unsure about, in the first person:"
    return [{"role": "user", "content": content}]


def clean_statement(text: str) -> str:
    """The summarizer's reply as a statement: N/A when it says so (or says nothing)."""
    text = text.strip().strip('"').strip()
    if not text or re.match(r"^\W*n\s*/\s*a\b", text, re.IGNORECASE):
        return NOT_APPLICABLE
    return text


PROACTIVE_INSTRUCTIONS = """\
You are answering a question for the second time. Before, you wrote a first answer on your own. \
A tutor also answered it{told}. The tutor can be wrong, and so can \
you: weigh both, check the reasoning yourself, and keep whatever is right from either."""
# The prompt's section headers and the names of what it shows: a training target that repeats them
# echoes its prompt (alice/hygiene.py).
PROACTIVE_HEADERS = ("Your first answer:", "The tutor's answer:", "What the tutor was unsure about:")
PROACTIVE_FORBIDDEN = ("tutor", "first answer")


def proactive_instructions(task: Task, example: Example, with_statement: bool = True) -> str:
    """The proactive prompt's instruction text (its opening and its closing request)."""
    return _opening(with_statement) + "\n\n" + _closing(task, example, with_statement)


def _opening(with_statement: bool) -> str:
    return PROACTIVE_INSTRUCTIONS.format(told=", and told you where it was unsure" if with_statement else "")


def _closing(task: Task, example: Example, with_statement: bool) -> str:
    mention = "your first answer, the tutor or its doubts" if with_statement else "your first answer or the tutor"
    return (f"Now write your own solution to the question, from scratch and self-contained, as if you were "
            f"answering it for the first time: do not mention {mention}, and do not repeat the material above. "
            f"{task.format.instruction(example.question)}")


def proactive_messages(task: Task, example: Example, own_answer: str, teacher_answer: str,
                       statement: str | None, with_statement: bool = True) -> list[dict]:
    """Question + own zero-shot answer + teacher's answer + teacher's uncertainty -> final answer,
    in the task's answer format (its instruction closes the prompt). ``with_statement=False`` is the
    control without the uncertainty statement: the same prompt with no word of the tutor's doubts."""
    doubt = ""
    if with_statement:
        text = statement if statement and statement != NOT_APPLICABLE else \
            "The tutor did not say what it was unsure about."
        doubt = f"{PROACTIVE_HEADERS[2]}\n{text}\n\n"
    content = (
        f"{_opening(with_statement)}\n\n"
        f"Question:\n{example.question.strip()}\n\n"
        f"{PROACTIVE_HEADERS[0]}\n{own_answer.strip() or '(empty)'}\n\n"
        f"{PROACTIVE_HEADERS[1]}\n{teacher_answer.strip()}\n\n"
        f"{doubt}"
        f"{_closing(task, example, with_statement)}"
    )
    return [{"role": "user", "content": content}]

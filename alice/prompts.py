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
Below is a question, followed by several different answers that one person came up with when \
asked it repeatedly. Each answer is one line of reasoning that person found plausible.

Speak as that person. In one to three sentences, written in the first person ("I"), say what you \
are unsure about: which points or steps the answers disagree on, and between which alternatives \
you are torn. Talk about your own doubts; do not refer to "answers", "responses", "attempts" or \
"samples", and do not decide which answer is correct.
If the answers do not actually disagree on anything that matters, reply with exactly: N/A"""


def summarizer_messages(question: str, representatives: Sequence[str], sizes: Sequence[int]) -> list[dict]:
    """One conversation per uncertain question; the representatives are shown largest cluster first."""
    total = sum(sizes) or 1
    blocks = [
        f"Answer {i} (given {size} of {total} times):\n{text.strip()}"
        for i, (text, size) in enumerate(zip(representatives, sizes), start=1)
    ]
    content = f"{SUMMARIZER_INSTRUCTIONS}\n\nQuestion:\n{question.strip()}\n\n" + "\n\n".join(blocks) + \
        "\n\nYour uncertainty, in the first person:"
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
you: weigh both, check the reasoning yourself, and keep whatever is right from either.

Now write your own final answer from scratch. Write it as a self-contained solution, as if you \
were answering for the first time: do not mention {mention}."""


def proactive_messages(task: Task, example: Example, own_answer: str, teacher_answer: str,
                       statement: str | None, with_statement: bool = True) -> list[dict]:
    """Question + own zero-shot answer + teacher's answer + teacher's uncertainty -> final answer,
    in the task's answer format (its instruction closes the prompt). ``with_statement=False`` is the
    control without the uncertainty statement: the same prompt with no word of the tutor's doubts."""
    instructions = PROACTIVE_INSTRUCTIONS.format(
        told=", and told you where it was unsure" if with_statement else "",
        mention="your first answer, the tutor, or its doubts" if with_statement else "your first answer or the tutor")
    doubt = ""
    if with_statement:
        text = statement if statement and statement != NOT_APPLICABLE else \
            "The tutor did not say what it was unsure about."
        doubt = f"What the tutor was unsure about:\n{text}\n\n"
    content = (
        f"{instructions}\n\n"
        f"Question:\n{example.question.strip()}\n\n"
        f"Your first answer:\n{own_answer.strip() or '(empty)'}\n\n"
        f"The tutor's answer:\n{teacher_answer.strip()}\n\n"
        f"{doubt}"
        f"Your final answer. {task.format.instruction(example.question)}"
    )
    return [{"role": "user", "content": content}]

"""The checks on generated training targets and uncertainty statements (alice/hygiene.py), on
hand-written outputs of the kinds a small model writes."""

from __future__ import annotations

import pytest

from alice.backends import Completion
from alice.hygiene import answer_check, check_statement, check_target, structured_statement
from alice.prompts import PROACTIVE_FORBIDDEN, PROACTIVE_HEADERS, proactive_instructions, proactive_messages
from alice.tasks import Example, load_task

TASK = load_task("gsm_symbolic")
QUESTION = ("Olivia bought a jersey for $16 and sweatpants for $5 more than the jersey. How much did she spend "
            "on the two?")
EXAMPLE = Example(id="q1", question=QUESTION, gold="37")
OWN = "The sweatpants cost 16 + 5 = 21. In all 16 + 21 = 37.\n#### 37"
TEACHER = "Sweatpants: 16 + 5 = 21 dollars. Total: 16 + 21 = 38 dollars.\n#### 38"
STATEMENT = "I am unsure whether the sweatpants add five dollars to the jersey price or replace it entirely."


def proactive(text: str, statement: str | None = STATEMENT) -> str | None:
    return check_target(text, TASK.format.final_answers(text, QUESTION), truncated=getattr(text, "truncated", False),
                        question=QUESTION, shown=(OWN, TEACHER), headers=PROACTIVE_HEADERS,
                        forbidden=PROACTIVE_FORBIDDEN, instructions=proactive_instructions(TASK, EXAMPLE),
                        statement=statement)


CLEAN = "The sweatpants cost 16 + 5 = 21 dollars.\nTogether: 16 + 21 = 37 dollars.\n#### 37"


@pytest.mark.parametrize(("text", "reason"), [
    (CLEAN, None),
    (CLEAN.replace("#### 37", "The total is \\boxed{37}."), None),  # one \boxed{} answer is a final answer
    (CLEAN + "\nSo the answer is \\boxed{37}.", None),  # the same answer twice is one answer
    (Completion(CLEAN, truncated=True), "truncated"),
    ("The sweatpants cost 21 dollars, so together they cost a lot.", "no_final_answer"),
    (CLEAN + "\n\nThe total is \\boxed{38}.", "several_final_answers"),
    (CLEAN + "\n#### 38", "several_final_answers"),
    (CLEAN + "\n\nThe tutor's answer:\n" + TEACHER.replace("#### 38", ""), "echoes_prompt"),
    ("What the tutor was unsure about: nothing.\n" + CLEAN, "echoes_prompt"),
    (CLEAN.replace("#### 37", "The tutor was wrong about this.\n#### 37"), "echoes_prompt"),
    ("Unlike my first answer, " + CLEAN, "echoes_prompt"),
    ("Do not mention your first answer, the tutor or its doubts, and do not repeat the material above.\n" + CLEAN,
     "echoes_prompt"),
    (STATEMENT + "\n" + CLEAN, "copies_statement"),
])
def test_proactive_targets(text, reason):
    assert proactive(text) == reason


def test_words_the_prompt_shows_may_be_repeated():
    # Runs of words that the question or the answers shown contain are not copies of the statement, and a
    # forbidden word the question itself uses is fair: a problem about a tutor may say "tutor".
    statement = "I am unsure how much Olivia spend on the two items, sweatpants or jersey first."
    text = "Olivia bought a jersey for $16 and sweatpants for $5 more than the jersey. 16 + 21 = 37\n#### 37"
    assert proactive(text, statement) is None
    question = "A tutor charges $20 an hour. How much do 3 hours cost?"
    example = Example(id="t", question=question, gold="60")
    reply = "The tutor charges 20 * 3 = 60 dollars.\n#### 60"
    assert check_target(reply, ["60"], question=question, forbidden=PROACTIVE_FORBIDDEN) is None
    assert check_target(reply, ["60"], question="How much do 3 hours cost?", forbidden=PROACTIVE_FORBIDDEN) \
        == "echoes_prompt"
    assert answer_check(TASK)(example, reply) is None


def test_the_prompt_and_the_check_name_the_same_headers():
    text = proactive_messages(TASK, EXAMPLE, OWN, TEACHER, STATEMENT)[0]["content"]
    assert all(header in text for header in PROACTIVE_HEADERS)
    assert proactive_instructions(TASK, EXAMPLE).split("\n\n")[-1] in text


def test_plain_answers_and_choice_answers():
    check = answer_check(TASK)
    assert check(EXAMPLE, CLEAN) is None
    assert check(EXAMPLE, "Solve the problem step by step. On the last line write #### and then the final number "
                          "alone.\n" + CLEAN) == "echoes_prompt"
    arc = load_task("arc_challenge")
    ex = arc.examples("student", limit=1)[0]
    arc_check = answer_check(arc)
    assert arc_check(ex, "Because of the heat.\nMy choice is B.") is None
    assert arc_check(ex, "My choice is B. On second thought, my choice is C.") == "several_final_answers"
    assert arc_check(ex, "It could be either one.") == "no_final_answer"


@pytest.mark.parametrize(("statement", "reason"), [
    ("I am unsure whether the sweatpants cost 21 or 22 dollars: I keep adding the 5 dollars in two ways.", None),
    ("I'm torn between 37 and 38; I am not sure which is correct.", None),  # a hedge, not a verdict
    ("", "empty"),
    ("I am unsure about the answers that disagree on the total.", "mentions_answers"),
    ("The responses differ on the price of the sweatpants.", "mentions_answers"),
    ("I am unsure: Answer 2 adds the price twice.", "numbered_alternative"),
    ("I doubt the first one, which adds 5 twice.", "numbered_alternative"),
    ("I think 37 is correct, since 16 + 21 = 37.", "verdict"),
    ("My calculation correctly gives 37.", "verdict"),
    ("The two do not actually disagree on anything that matters; I am fine.", "denies_disagreement"),
    ("The sweatpants cost 21 or 22 dollars.", "not_first_person"),
])
def test_statements(statement, reason):
    assert check_statement(statement) == reason


def test_structured_statement_is_first_person_and_passes_the_checks():
    text = structured_statement(["34", "32", "38"], [40, 30, 25], 100)
    assert text.startswith("I reached 34 most often") and "32" in text and "38" in text
    assert "about a third of the time" in text and "about a quarter of the time" in text
    assert check_statement(text) is None
    many = structured_statement(["1", "2", "3", "4", "5", "6"], [30, 20, 15, 10, 5, 2], 100)
    assert "2 other results less often" in many and check_statement(many) is None
    assert check_statement(structured_statement(["7"], [100], 100)) is None

"""Answer extraction and scoring on hand-written responses, edge cases included."""

import pytest

from alice.answers import extract_choice, extract_number, extract_text, normalize_number, normalize_text
from alice.errors import AliceError
from alice.tasks import Example, load_task

ABCD = ["A", "B", "C", "D"]
NUMERIC = ["1", "2", "3", "4"]


@pytest.mark.parametrize("response, expected", [
    ("Reasoning... My choice is B.", "B"),
    ("my choice is c", "C"),
    ("My choice is (D).", "D"),
    ("My choice is: **A**", "A"),
    ("The answer is (B)", "B"),
    ("The answer is \\boxed{C}.", "C"),
    ("Final answer: b.", "B"),
    ("The correct answer is:\nC. Chlorophyll captures light.", "C"),
    ("First I thought A. My choice is A. Wait, no. My choice is D.", "D"),
    ("(b)", "B"),
    ("c.", "C"),
    ("The answer is a dry palm because it is dry", None),  # the article 'a', not option A
    ("My choice is E.", None),  # not among the options
    ("I am not sure.", None),
    ("", None),
])
def test_extract_choice_letters(response, expected):
    assert extract_choice(response, ABCD) == expected


@pytest.mark.parametrize("response, expected", [
    ("My choice is 4.", "4"),
    ("The answer is 2", "2"),
    ("My choice is B.", None),  # letters are not labels of a numeric-option question
    ("My choice is 7.", None),
])
def test_extract_choice_numeric_labels(response, expected):
    assert extract_choice(response, NUMERIC) == expected


@pytest.mark.parametrize("response, expected", [
    ("She has 3 + 4 = 7 apples.\n#### 7", "7"),
    ("#### 1,234", "1234"),
    ("#### $1,234.50", "1234.5"),
    ("#### -12", "-12"),
    ("#### 3.0", "3"),
    ("#### .5", "0.5"),
    ("So the total is 10.\n#### 10.", "10"),
    ("The answer is $42.", "42"),
    ("Final answer: \\boxed{18}", "18"),
    ("#### 5\nLater: #### 6", "6"),
    ("I think it is twelve.", None),
    ("", None),
])
def test_extract_number(response, expected):
    assert extract_number(response) == expected


def test_normalize_number_rejects_words():
    assert normalize_number("twelve") is None
    assert normalize_number("1-2") is None


def test_normalize_text_squad_style():
    assert normalize_text("The  Eiffel Tower!") == "eiffel tower"
    assert normalize_text("An apple, a day") == "apple day"


def test_extract_text_prefers_final_answer():
    assert extract_text("It was built in Paris. The answer is the Eiffel Tower.") == "the Eiffel Tower"
    assert extract_text("Paris") == "Paris"
    assert extract_text("   ") is None


def test_arc_scoring_counts_unparsable_as_wrong():
    task = load_task("arc_challenge")
    ex = task.load("train")[0]
    assert ex.gold == "A"
    assert task.score("My choice is a.", ex).correct
    wrong = task.score("My choice is B.", ex)
    assert wrong.parsed and not wrong.correct
    unparsable = task.score("no idea", ex)
    assert not unparsable.parsed and not unparsable.correct


def test_text_scoring_uses_aliases_and_whole_words(tmp_path):
    data = tmp_path / "qa.jsonl"
    data.write_text('{"id": "q1", "question": "Capital of France?", "answer": "Paris", '
                    '"aliases": ["City of Light"], "split": "test"}\n'
                    '{"id": "q2", "question": "How many legs has a spider?", "answer": "8", "split": "test"}\n')
    task = load_task(str(data), "text")
    paris, legs = task.load("test")
    assert task.score("I believe the answer is the City of Light.", paris).correct
    assert task.score("The answer is PARIS.", paris).correct
    assert not task.score("The answer is Lyon.", paris).correct
    assert not task.score("The answer is 18.", legs).correct  # '8' inside '18' is not a match
    assert task.score("Spiders have 8 legs.", legs).correct


def test_gsm8k_style_gold_must_be_numeric(tmp_path):
    data = tmp_path / "math.jsonl"
    data.write_text('{"id": "m1", "question": "2+2?", "answer": "Add them. #### four"}\n')
    task = load_task(str(data), "number")
    with pytest.raises(AliceError, match="not a number"):
        task.load("train")


def test_choice_gold_label_must_be_an_option(tmp_path):
    data = tmp_path / "mc.jsonl"
    data.write_text('{"id": "c1", "question": "Pick one\\nA. x\\nB. y", "answer": "C. z"}\n')
    task = load_task(str(data), "choice")
    with pytest.raises(AliceError, match="not among the options"):
        task.load("train")


def test_ground_truth_targets_follow_the_task():
    task = load_task("arc_challenge")
    ex = task.load("train")[1]
    assert task.ground_truth_response(ex) == "My choice is B."
    number = load_task("gsm8k")
    worked = Example("g", "q", "72", rationale="48/2 = 24\n48 + 24 = 72\n#### 72")
    assert number.ground_truth_response(worked).endswith("#### 72")
    assert number.ground_truth_response(worked, rationale=False) == "#### 72"


def test_strict_scoring_against_the_papers_rule(tmp_path):
    """--scoring strict: exact match of the extracted answer after lm-evaluation-harness's normalization;
    the paper's rule: the gold answer anywhere in the reply, as whole words."""
    data = tmp_path / "qa.jsonl"
    data.write_text('{"id": "q1", "question": "Capital of France?", "answer": "Paris", '
                    '"aliases": ["City of Light"], "split": "test"}\n')
    task = load_task(str(data), "text")
    (paris,) = task.load("test")
    cases = [  # reply, correct under paper, correct under strict
        ("It could be Paris, but the answer is Lyon.", True, False),
        ("The answer is the Paris.", True, True),
        ("The answer is PARIS!", True, True),
        ("Answer: the City of Light.", True, True),
        ("The answer is Paris, France.", True, False),
        ("Paris", True, True),
        ("The answer is Lyon.", False, False),
        ("", False, False),
    ]
    for reply, paper, strict in cases:
        task.set_scoring("paper")
        scored = task.score(reply, paris)
        assert scored.correct == paper, reply
        assert scored.by_rule == ({"paper": paper, "strict": strict} if reply else {"paper": False, "strict": False})
        task.set_scoring("strict")
        assert task.score(reply, paris).correct == strict, reply
    with pytest.raises(AliceError, match="unknown scoring rule"):
        task.set_scoring("loose")


def test_open_qa_tasks_report_both_rules_choice_and_number_one():
    for name in ("hotpotqa", "triviaqa"):
        assert load_task(name).scoring_rules == ("paper", "strict")
    arc = load_task("arc_challenge")
    arc.set_scoring("strict")
    assert arc.scoring_rules == ("strict",)
    ex = arc.load("train")[1]
    assert arc.score("My choice is B.", ex).correct and arc.score("My choice is B.", ex).by_rule is None

"""Splits, dataset loading and the JSONL/manifest layer every stage uses."""

import json

import pytest

from alice.errors import AliceError
from alice.records import JsonlAppender, Manifest, read_jsonl
from alice.tasks import load_task, preprocess_arc


def test_arc_split_sizes_and_disjoint_pools():
    task = load_task("arc_challenge")
    assert [len(task.load(s)) for s in ("train", "validation", "test")] == [1119, 299, 1172]
    teacher, student = task.pools()
    assert (len(teacher), len(student)) == (559, 560)
    teacher_ids, student_ids = {e.id for e in teacher}, {e.id for e in student}
    assert not teacher_ids & student_ids
    assert teacher_ids | student_ids == {e.id for e in task.load("train")}
    # The paper's order by default: the teacher gets the first half.
    assert teacher[0].id == task.load("train")[0].id
    assert len({e.id for e in task.load("test")}) == 1172  # ids are unique


def test_split_seed_shuffles_deterministically():
    task = load_task("arc_challenge")
    a_teacher, a_student = task.pools(split_seed=1)
    b_teacher, _ = task.pools(split_seed=1)
    assert [e.id for e in a_teacher] == [e.id for e in b_teacher]
    assert [e.id for e in a_teacher] != [e.id for e in task.pools()[0]]
    assert not {e.id for e in a_teacher} & {e.id for e in a_student}


def test_hub_rows_preprocess_like_the_shipped_split():
    row = {"question": "Which is a metal?", "answerKey": "2",
           "choices": {"label": ["1", "2", "3"], "text": ["wood", "iron", "glass"]}}
    assert preprocess_arc(row) == {"question": "Which is a metal?\n1. wood\n2. iron\n3. glass",
                                   "answer": "2. iron"}


def test_unknown_dataset_is_one_clear_error():
    with pytest.raises(AliceError, match="unknown dataset 'mmlu'"):
        load_task("mmlu")


def test_custom_jsonl_needs_an_answer_type(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": "1", "question": "q", "answer": "a"}\n')
    with pytest.raises(AliceError, match="answer type"):
        load_task(str(data))


def test_read_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"\n')
    with pytest.raises(AliceError, match=r"rows.jsonl:2: malformed JSON"):
        read_jsonl(path)
    path.write_text('{"id": "a"}\n{"id": "a"}\n')
    with pytest.raises(AliceError, match="duplicate id 'a'"):
        read_jsonl(path)
    path.write_text('{"id": "a"}\n{"question": "no id"}\n')
    with pytest.raises(AliceError, match=r":2: row has no 'id'"):
        read_jsonl(path)
    path.write_text("")
    with pytest.raises(AliceError, match="empty"):
        read_jsonl(path)
    with pytest.raises(AliceError, match="not found"):
        read_jsonl(tmp_path / "missing.jsonl")


def test_appender_drops_torn_line_and_resumes_without_duplicates(tmp_path):
    path = tmp_path / "out.jsonl"
    with JsonlAppender(path) as out:
        out.write_many([{"id": "1", "v": 1}, {"id": "2", "v": 2}])
    with open(path, "a") as handle:  # a kill in the middle of writing row 3
        handle.write('{"id": "3", "v":')
    with JsonlAppender(path) as out:
        assert set(out.done) == {"1", "2"}
        out.write_many([{"id": "2", "v": 99}, {"id": "3", "v": 3}])
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert rows[1]["v"] == 2  # the first answer for an id stands


def test_manifest_refuses_another_runs_output(tmp_path):
    out = tmp_path / "x.jsonl"
    first = Manifest(out, "eval", {"model": "a"}, {"model": "a"})
    first.claim([out], overwrite=False)
    out.write_text('{"id": "1"}\n')
    first.complete({"n": 1})
    same = Manifest(out, "eval", {"model": "a"}, {"model": "a"})
    same.claim([out], overwrite=False)  # same settings: resume is fine
    other = Manifest(out, "eval", {"model": "b"}, {"model": "b"})
    with pytest.raises(AliceError, match="different run"):
        other.claim([out], overwrite=False)
    assert out.read_text() == '{"id": "1"}\n'  # untouched
    other.claim([out], overwrite=True)
    assert not out.exists()


def test_manifest_hides_secrets(tmp_path):
    out = tmp_path / "y.jsonl"
    m = Manifest(out, "eval", {"hf_token": "hf_abc", "max_new_tokens": 5}, {})
    m.complete({})
    text = m.path.read_text()
    assert "hf_abc" not in text and '"max_new_tokens": 5' in text


def test_gsm_symbolic_instance_split_covers_every_template_in_both_halves():
    from collections import Counter

    task = load_task("gsm_symbolic")
    train, test = task.load("train"), task.load("test")
    assert (len(train), len(test)) == (2040, 340)  # 85 templates x 24 and x 4
    teacher, pool = task.pools()

    def template(ex):
        return ex.id.split("-")[1]

    assert set(Counter(map(template, teacher)).values()) == {12} and set(Counter(map(template, pool)).values()) == {12}
    assert not {ex.question for ex in train} & {ex.question for ex in test}  # new instances at test
    ex = test[0]
    assert ex.rationale.rstrip().endswith(f"#### {ex.gold}") and task.score(ex.rationale, ex).correct
    assert task.answer_type == "number" and "####" in task.prompt(ex)
    # Generated once, then read back: the same rows in a new task object.
    assert task.cache_path().is_file()
    assert [e.question for e in load_task("gsm_symbolic").load("test")] == [e.question for e in test]


def test_gsm_symbolic_template_split_holds_out_templates(tmp_path, monkeypatch):
    monkeypatch.setenv("ALICE_CACHE", str(tmp_path))  # generated here, not read from a cache
    task = load_task("gsm_symbolic:split=template,train=4,test=2,test_templates=5,seed=3")
    train, test = task.load("train"), task.load("test")

    def templates(rows):
        return {ex.id.split("-")[1] for ex in rows}

    assert len(templates(test)) == 5 and not templates(train) & templates(test)
    assert (len(train), len(test)) == (80 * 4, 5 * 2)
    other = load_task("gsm_symbolic:split=template,train=4,test=2,test_templates=5,seed=4")
    assert templates(other.load("test")) != templates(test)  # the seed picks the held-out templates


def test_gsm_symbolic_held_out_templates_and_near_duplicates(tmp_path, monkeypatch):
    from alice.tasks import numbers_in

    monkeypatch.setenv("ALICE_CACHE", str(tmp_path))
    spec = "gsm_symbolic:held_out=5,train=6,test=3,seed=2"
    task = load_task(spec)
    train, test, held = task.load("train"), task.load("test"), task.load("held_out")

    def templates(rows):
        return {task.cluster_of(ex.id) for ex in rows}

    assert (len(templates(train)), len(templates(held))) == (80, 5)
    assert templates(test) == templates(train) and not templates(held) & templates(train)
    assert (len(train), len(test), len(held)) == (80 * 6, 80 * 3, 5 * 3)
    # No test question has a train question's numbers and answer (the same problem with other names);
    # the draws left out for that are counted.
    seen = {(tuple(numbers_in(ex.question)), ex.gold) for ex in train}
    assert not [ex for ex in test + held if (tuple(numbers_in(ex.question)), ex.gold) in seen]
    assert task.near_duplicates["test"] > 0 and task.describe()["held_out_templates"]
    # eval=held_out scores the held-out templates; the train rows are the same.
    other = load_task(spec + ",eval=held_out")
    assert other.eval_split == "held_out" and [e.id for e in other.examples("eval")] == [e.id for e in held]
    assert [e.id for e in other.load("train")] == [e.id for e in train]
    assert task.examples("eval") == test and task.cluster_of(test[0].id) == f"template {int(test[0].id[14:16])}"
    with pytest.raises(AliceError, match="eval=held_out needs held_out"):
        load_task("gsm_symbolic:eval=held_out")

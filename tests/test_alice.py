"""uncertainty.py and student_generate.py for real: the small model as teacher, summarizer and
student on a few ARC questions, through transformers and vLLM (each one backend shared by the session)."""

from __future__ import annotations

import json

from conftest import run_script

from alice.hygiene import check_statement
from alice.prompts import (
    NOT_APPLICABLE,
    clean_statement,
    proactive_messages,
    summarizer_messages,
)
from alice.tasks import load_task

ARC = ["--data", "arc_challenge", "--max-new-tokens", "32", "--batch-size", "32"]


def read_rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_uncertainty_rows(rows: list[dict], k: int, pool_ids: list[str]) -> None:
    assert sorted(r["id"] for r in rows) == sorted(pool_ids)  # one row per question, keyed by id, none twice
    for r in rows:
        assert r["n_samples"] == k
        sizes = [c["size"] for c in r["clusters"]]
        assert sizes == sorted(sizes, reverse=True)
        assert sum(sizes) + r["unparsable"] <= k
        assert r["status"] == {0: "no_answer", 1: "certain"}.get(len(sizes), "uncertain")
        assert r["certain"] == (r["status"] == "certain")
        if r["clusters"]:
            assert r["teacher_answer"] == r["clusters"][0]["representative"]
            assert r["teacher_prediction"] == r["clusters"][0]["key"]  # exact mode on ARC
        else:
            assert r["teacher_answer"] is None
        assert (r["statement"] is not None) == (r["status"] == "uncertain")
        if r["status"] == "uncertain":  # checked: the summarizer's, within the method's rules, or the structured one
            assert r["source"] in ("generated", "fallback") and 1 <= r["tries"] <= 4
            if r["source"] == "generated":
                assert r["statement"] == NOT_APPLICABLE or check_statement(r["statement"]) is None
            else:
                assert r["statement"].startswith("I reached ")


def test_both_scripts_with_transformers_and_resume(tmp_path, small_model, hf_backend, capfd):
    """In this process, on the session's model (tests/test_interruptions.py runs both as scripts)."""
    import student_generate
    import uncertainty

    unc = tmp_path / "unc.jsonl"
    pool_ids = [ex.id for ex in load_task("arc_challenge").examples("student", limit=3)]
    args = [*ARC, "--teacher", small_model, "--backend", "hf", "--k", "4", "--limit", "3",
            "--keep-singletons", "--summarizer-max-new-tokens", "32", "--output", str(unc)]
    uncertainty.main(args, backend=hf_backend(32))
    rows = read_rows(unc)
    check_uncertainty_rows(rows, 4, pool_ids)
    manifest = json.loads((tmp_path / "unc.manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["counts"]["written"] == 3
    assert manifest["counts"]["certain"] == sum(r["status"] == "certain" for r in rows)
    checks = manifest["counts"]["statement_checks"]
    uncertain = [r for r in rows if r["status"] == "uncertain"]
    assert checks["clean_first_try"] + checks["clean_after_retry"] + checks["fallback"] == len(uncertain)
    assert checks["fallback"] == sum(r["source"] == "fallback" for r in uncertain)
    assert not (tmp_path / "unc.samples.jsonl").exists()  # no --save-samples: removed when complete

    # A rerun (no backend given: it would load one) resumes: nothing is generated again or written twice.
    capfd.readouterr()
    uncertainty.main(args)
    assert "loading" not in capfd.readouterr().err and read_rows(unc) == rows
    assert json.loads((tmp_path / "unc.manifest.json").read_text())["attempts"] == 2

    out = tmp_path / "student.jsonl"
    s_args = [*ARC, "--student", small_model, "--backend", "hf", "--uncertainty", str(unc), "--output", str(out)]
    student_generate.main(s_args, backend=hf_backend(32))
    train = read_rows(out)
    by_id = {r["id"]: r for r in rows}
    # A question whose every try was malformed (32 tokens cut most replies short) is dropped and logged; a
    # certain question whose teacher answer is malformed is dropped and counted.
    counts = json.loads((tmp_path / "student.manifest.json").read_text())["counts"]
    rejected = read_rows(tmp_path / "student.rejected.jsonl") if (tmp_path / "student.rejected.jsonl").exists() else []
    dropped = {r["id"] for r in rejected if r["try"] is None}
    answered = {r["id"] for r in rows if r["status"] != "no_answer"}
    assert {r["id"] for r in train} | dropped <= answered
    assert len(train) + len(dropped) + counts["original_malformed"] == len(answered)
    assert counts["checks"]["dropped"] == len(dropped)
    for r in train:
        assert set(r) >= {"id", "question", "response", "label"}
        expected = "original" if by_id[r["id"]]["status"] == "certain" else "new"
        assert r["label"] == expected
        if expected == "original":
            assert r["response"] == by_id[r["id"]]["teacher_answer"]
    counts = json.loads((tmp_path / "student.manifest.json").read_text())["counts"]
    assert counts["new"] == sum(r["label"] == "new" for r in train)
    capfd.readouterr()
    student_generate.main(s_args)
    assert "loading" not in capfd.readouterr().err and read_rows(out) == train


def test_student_on_a_hand_written_uncertainty_file(tmp_path, small_model, hf_backend):
    """Every branch regardless of what the small teacher happens to say: certain (clean and malformed),
    uncertain, none; every malformed target tried again, then the fallback or a drop, all counted."""
    from student_generate import main
    task = load_task("arc_challenge")
    first, second, third, fourth, fifth = task.examples("student", limit=5)
    unc = tmp_path / "unc.jsonl"
    teacher = {"certain": "Dew forms on cold surfaces.\nMy choice is C.", "uncertain": "My choice is A.",
               "malformed": "My choice is A. No, my choice is C."}
    clusters = [{"size": 6, "key": "A", "representative": "My choice is A."},
                {"size": 3, "key": "B", "representative": "My choice is B."}]
    rows = [
        {"id": first.id, "status": "certain", "teacher_answer": teacher["certain"], "statement": None},
        {"id": second.id, "status": "uncertain", "teacher_answer": teacher["uncertain"],
         "statement": "I am torn between two of the options.", "clusters": clusters, "n_samples": 10},
        {"id": third.id, "status": "no_answer", "teacher_answer": None, "statement": None},
        {"id": fourth.id, "status": "certain", "teacher_answer": teacher["malformed"], "statement": None},
        {"id": fifth.id, "status": "uncertain", "teacher_answer": teacher["uncertain"],
         "statement": "I am torn between two of the options.", "clusters": clusters, "n_samples": 10},
    ]
    unc.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "student.jsonl"
    # 4 new tokens cut every reply short: each proactive try is malformed ("truncated").
    args = ["--data", "arc_challenge", "--max-new-tokens", "4", "--student", small_model, "--backend", "hf",
            "--uncertainty", str(unc), "--output", str(out), "--max-tries", "2"]
    main(args, backend=hf_backend())  # the default --batch-size
    zero_path = tmp_path / "student.zeroshot.jsonl"
    zero = read_rows(zero_path)
    assert [r["id"] for r in zero] == [second.id, fifth.id]  # zero-shot only where the teacher was uncertain
    assert all(r["truncated"] for r in zero)
    # Both uncertain questions: two rejected tries each, new samples on the second, then no clean zero-shot
    # answer to fall back on: dropped.
    log = read_rows(tmp_path / "student.rejected.jsonl")
    tries = [r for r in log if r["try"] is not None]
    assert sorted((r["id"], r["try"]) for r in tries) == sorted((q, t) for q in (second.id, fifth.id) for t in (1, 2))
    assert all(r["reason"] == "truncated" and r["response"] for r in tries)
    by_try = {(r["id"], r["try"]): r["response"] for r in tries}
    assert any(by_try[(q, 1)] != by_try[(q, 2)] for q in (second.id, fifth.id))  # another seed, another sample
    assert {r["id"] for r in log if r["try"] is None} == {second.id, fifth.id}
    train = {r["id"]: r for r in read_rows(out)}
    assert set(train) == {first.id}  # the malformed certain answer (two choices) is no target
    assert train[first.id]["label"] == "original" and train[first.id]["response"] == teacher["certain"]
    counts = json.loads((tmp_path / "student.manifest.json").read_text())["counts"]
    assert (counts["certain"], counts["uncertain"], counts["no_teacher_answer"], counts["new"]) == (2, 2, 1, 0)
    assert counts["original_malformed_by_reason"] == {"several_final_answers": 1}
    assert counts["checks"]["dropped"] == 2 and counts["checks"]["rejected_by_reason"] == {"truncated": 4}
    assert counts["checks"]["first_try_malformed_by_reason"] == {"truncated": 2}

    # A clean zero-shot answer is the fallback: give the second question one, and run the proactive step again.
    zero[0].update(response="Frost forms on cold nights.\nMy choice is B.", truncated=False)
    zero_path.write_text("".join(json.dumps(r) + "\n" for r in zero))
    out.unlink()
    (tmp_path / "student.rejected.jsonl").unlink()
    main(args, backend=hf_backend())  # the default --batch-size
    train = {r["id"]: r for r in read_rows(out)}
    assert set(train) == {first.id, second.id}
    new = train[second.id]
    assert new["label"] == "new" and new["source"] == "fallback" and new["tries"] == 2
    assert new["response"] == zero[0]["response"] and new["prediction"] == "B" and new["parsed"]
    assert new["differs_from_teacher"] and new["zero_shot"] == zero[0]["response"]
    counts = json.loads((tmp_path / "student.manifest.json").read_text())["counts"]
    assert counts["checks"]["fallback"] == 1 and counts["checks"]["dropped"] == 1 and counts["new"] == 1

    # Unchecked (--max-tries 0, the reference code), with the structured statement: every row kept.
    plain = tmp_path / "plain.jsonl"
    main([*args[:-4], "--output", str(plain), "--max-tries", "0", "--statement", "structured"], backend=hf_backend())
    train = {r["id"]: r for r in read_rows(plain)}
    assert set(train) == {first.id, second.id, fourth.id, fifth.id}
    assert train[second.id]["statement"] == ("I reached A most often (more than half the time), but I also got B "
                                              "about a third of the time.")
    assert not (tmp_path / "plain.rejected.jsonl").exists()

    # Ids the task's student pool does not have are an error, before any model loads (the script, as a user runs it).
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "nope-1", "status": "certain", "teacher_answer": "x"}) + "\n")
    done = run_script("student_generate.py", *ARC, "--student", small_model, "--uncertainty", str(bad),
                      "--output", str(tmp_path / "s2.jsonl"), check=False)
    assert done.returncode == 2 and "not in the arc_challenge student pool" in done.stderr
    assert done.stderr.count("\n") == 1


def test_prompts_carry_what_the_method_needs():
    task = load_task("arc_challenge")
    ex = task.examples("student", limit=1)[0]
    text = summarizer_messages(ex.question, ["My choice is A.", "My choice is B."], [5, 3])[0]["content"]
    assert ex.question.strip() in text and "My choice is A." in text and "most of the time" in text
    assert "Answer 1" not in text and "5 of 8" not in text  # nothing the statement could cite by number
    text = proactive_messages(task, ex, "my try", "My choice is B.", "I doubt B.")[0]["content"]
    assert all(part in text for part in ("my try", "My choice is B.", "I doubt B.", "My choice is"))
    # The control without the statement: the same prompt with no word of the tutor's doubts.
    control = proactive_messages(task, ex, "my try", "My choice is B.", "I doubt B.", with_statement=False)
    control = control[0]["content"]
    assert all(part in control for part in ("my try", "My choice is B.", "My choice is"))
    assert "I doubt B." not in control and "unsure" not in control and "doubt" not in control
    assert clean_statement(" N/A. ") == NOT_APPLICABLE and clean_statement("") == NOT_APPLICABLE
    assert clean_statement('"I am unsure whether ice melts."') == "I am unsure whether ice melts."


def test_both_stages_share_one_vllm_engine(tmp_path, small_model, vllm_engine):
    """Both stages generate through the session's one engine (neither closes it)."""
    import student_generate
    import uncertainty

    unc = tmp_path / "unc.jsonl"
    pool_ids = [ex.id for ex in load_task("arc_challenge").examples("student", limit=4)]
    counts = uncertainty.main([*ARC, "--teacher", small_model, "--backend", "vllm", "--k", "8", "--limit", "4",
                               "--keep-singletons", "--save-samples", "--output", str(unc)], backend=vllm_engine)
    rows = read_rows(unc)
    check_uncertainty_rows(rows, 8, pool_ids)
    assert counts["written"] == 4 and all(len(r["samples"]) == 8 for r in rows)
    assert len(read_rows(tmp_path / "unc.samples.jsonl")) == 4  # kept with --save-samples
    student = student_generate.main([*ARC, "--student", small_model, "--backend", "vllm", "--uncertainty",
                                     str(unc), "--output", str(tmp_path / "s.jsonl")], backend=vllm_engine)
    assert student["new"] == sum(r["status"] == "uncertain" for r in rows)
    assert student["original"] == sum(r["status"] == "certain" for r in rows)

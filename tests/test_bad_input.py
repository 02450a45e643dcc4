"""Bad input, table-driven over every script: one clear line on stderr, a non-zero exit, no
traceback, and existing outputs left untouched. Every case fails before a model is loaded."""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import run_script

from alice.backends import cuda_available

GOOD_UNCERTAINTY = {"id": "arc_challenge-train-00559", "question": "q", "status": "certain",
                    "certain": True, "teacher_answer": "My choice is A.", "statement": "N/A"}


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def cases(tmp: Path) -> list[tuple[str, list[str], str]]:
    """(script, arguments, expected words in the error)."""
    missing = str(tmp / "missing.jsonl")
    empty = write(tmp / "empty.jsonl", "")
    malformed = write(tmp / "bad.jsonl", '{"id": "a", "question": "q", "response": "x"}\n{"id": "b", "response": \n')
    unc_malformed = write(tmp / "unc_bad.jsonl", json.dumps(GOOD_UNCERTAINTY) + '\n{"id": "b", \n')
    no_id = write(tmp / "noid.jsonl", '{"question": "q", "response": "x"}\n')
    dup = write(tmp / "dup.jsonl", '{"id": "a", "question": "q", "response": "x"}\n' * 2)
    no_response = write(tmp / "noresp.jsonl", '{"id": "a", "question": "q"}\n')
    unc_dup = write(tmp / "unc_dup.jsonl", (json.dumps(GOOD_UNCERTAINTY) + "\n") * 2)
    unc_foreign = write(tmp / "unc_foreign.jsonl", json.dumps({**GOOD_UNCERTAINTY, "id": "not-in-pool"}) + "\n")
    gsm_bad = write(tmp / "gsm.jsonl", '{"id": "m1", "question": "2+2?", "answer": "#### four", "split": "test"}\n')
    arc_bad = write(tmp / "arc.jsonl", '{"id": "c1", "question": "Pick\\nA. x\\nB. y", "answer": "E. z", '
                                       '"split": "test"}\n')
    student = ["--student", "smollm2", "--output", str(tmp / "s.jsonl")]
    train = ["--teacher", "smollm2", "--output-dir", str(tmp / "t")]
    return [
        ("eval.py", ["--data", "mmlu", "--model", "smollm2"], "unknown dataset"),
        ("eval.py", ["--model", "org/name/too/deep"], "unknown model"),
        ("eval.py", ["--model", "qwen2.5", "--student", "999B"], "unknown size"),
        ("eval.py", ["--predictions", missing], "not found"),
        ("eval.py", ["--predictions", malformed], "bad.jsonl:2: malformed JSON"),
        ("eval.py", ["--predictions", write(tmp / "p.jsonl", '{"id": "nope", "response": "A"}\n')],
         "is not in arc_challenge test"),
        ("eval.py", ["--data", gsm_bad, "--answer-type", "number", "--model", "smollm2"], "is not a number"),
        ("eval.py", ["--data", arc_bad, "--answer-type", "choice", "--model", "smollm2"], "not among the options"),
        ("cot_generate_filter.py", ["--data", "nope", "--teacher", "smollm2"], "unknown dataset"),
        ("cot_generate_filter.py", ["--teacher", str(tmp / "no_such_folder/")], "unknown model"),
        ("uncertainty.py", ["--data", "nope", "--teacher", "smollm2"], "unknown dataset"),
        ("w2s_labels.py", ["--data", "nope", "--teacher", "smollm2"], "unknown dataset"),
        ("student_generate.py", ["--uncertainty", missing, *student], "not found"),
        ("student_generate.py", ["--uncertainty", empty, *student], "empty"),
        ("student_generate.py", ["--uncertainty", unc_malformed, *student], "unc_bad.jsonl:2"),
        ("student_generate.py", ["--uncertainty", no_id, *student], "noid.jsonl:1: row has no 'id'"),
        ("student_generate.py", ["--uncertainty", unc_dup, *student], "duplicate id"),
        ("student_generate.py", ["--uncertainty", unc_foreign, *student], "not-in-pool"),
        ("train.py", ["--train-file", missing, *train], "not found"),
        ("train.py", ["--train-file", empty, *train], "empty"),
        ("train.py", ["--train-file", malformed, *train], "bad.jsonl:2"),
        ("train.py", ["--train-file", dup, *train], "duplicate id"),
        ("train.py", ["--train-file", no_response, *train], "no 'response'"),
        ("cascade.py", ["--ladder", "smollm2", str(tmp / "missing-model/"), "--output-dir", str(tmp / "c")],
         "unknown model"),
        ("report.py", [str(tmp / "no_runs_here")], "no such folder"),
        ("eval.py", ["--data", "gsm_symbolic:split=random", "--model", "smollm2"], "use instance or template"),
        ("eval.py", ["--data", "gsm_symbolic:train=many", "--model", "smollm2"], "whole numbers"),
        ("eval.py", ["--data", "gsm_symbolic:colour=red", "--model", "smollm2"], "unknown option(s) colour"),
        ("eval.py", ["--model", "smollm2", "--backend", "hf", "--batch-invariant", "--output", str(tmp / "bi.jsonl")],
         "needs the vllm backend"),
        ("eval.py", ["--model", "smollm2", "--backend", "hf", "--vllm-runner", "v1", "--output", str(tmp / "r.jsonl")],
         "needs the vllm backend"),
        ("train.py", ["--ground-truth", "--warmup-ratio", "1.5", *train], "--warmup-ratio 1.5"),
        ("experiment.py", ["--restore-from", str(tmp), "--run-dir", str(tmp / "r")], "not deliverables of an experiment.py run"),
    ] + ([] if cuda_available() else [  # the README's packed command on a machine without a GPU
        ("experiment.py", ["--gpus", "0", "--backend", "hf", "--run-dir", str(tmp / "g")],
         "this machine has no GPU that torch can use"),
    ])


def test_every_script_rejects_bad_input_with_one_line(tmp_path):
    def failure(case: tuple[str, list[str], str]) -> str | None:
        script, args, expected = case
        done = run_script(script, *args, check=False, timeout=300)
        lines = done.stderr.strip().splitlines()
        ok = (done.returncode != 0 and "Traceback" not in done.stderr and len(lines) == 1
              and lines[0].startswith("error:") and expected in lines[0])
        return None if ok else f"{script} {args}: rc={done.returncode} stderr={done.stderr[-400:]!r}"

    # Each case is its own process (0.1-2 s, mostly imports): four at a time, 16 s instead of 36 on 2 cores.
    with ThreadPoolExecutor(4) as pool:
        failures = [f for f in pool.map(failure, cases(tmp_path)) if f]
    assert not failures, "\n".join(failures)


def test_model_folder_without_chat_template(tmp_path, small_model):
    folder = tmp_path / "no-template"
    folder.mkdir()
    for file in Path(small_model).iterdir():
        if file.name != "chat_template.jinja":
            (folder / file.name).symlink_to(file)
    done = run_script("eval.py", "--model", str(folder), "--backend", "hf", "--limit", "1",
                      "--output", str(tmp_path / "e.jsonl"), check=False)
    assert done.returncode == 2 and "no chat template" in done.stderr and "Traceback" not in done.stderr


def test_foreign_output_is_refused_and_left_untouched(tmp_path, small_model):
    out = tmp_path / "eval.jsonl"
    out.write_text('{"id": "someone else\'s row"}\n')
    before = out.read_bytes()
    done = run_script("eval.py", "--model", small_model, "--backend", "hf", "--limit", "1",
                      "--output", str(out), check=False)
    assert done.returncode == 2 and "--overwrite" in done.stderr and "Traceback" not in done.stderr
    assert out.read_bytes() == before

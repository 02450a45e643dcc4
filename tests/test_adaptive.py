"""Adaptive probing (alice/adaptive.py): the wave logic on hand-made key sequences, the offline replay
(bench/bench_adaptive.py) on a tiny file, and one real ``uncertainty.py --adaptive`` run with the small model."""

from __future__ import annotations

import json
import lzma
import sys
from pathlib import Path

import pytest
from conftest import REPO

from alice.adaptive import (
    AdaptiveRule,
    compare,
    decide,
    probe_in_waves,
    replay,
    summary,
    wave_id,
    wave_sizes,
)
from alice.answers import answer_format
from alice.backends import Backend, Sampling
from alice.errors import AliceError
from alice.tasks import Example, load_task

sys.path.insert(0, str(REPO / "bench"))

RULE = AdaptiveRule(wave=5, min_samples=10, z=2.0)


def test_waves_cover_k_and_decide_never_stops_before_the_first_wave():
    assert wave_sizes(100, RULE) == [10] + [5] * 18
    assert wave_sizes(12, RULE) == [10, 2] and wave_sizes(7, RULE) == [7]
    assert decide(["7"] * 9, 100, RULE) is None  # unanimous, but before min_samples
    assert decide(["7", "8"] * 50, 100, RULE) == "k"  # all K drawn: always stop
    with pytest.raises(AliceError):
        AdaptiveRule(wave=0).check()


def test_every_wave_agrees_stops_at_the_first_wave_certain_with_full_ks_answer():
    keys = ["42"] * 100
    drawn, reason = replay(keys, 100, RULE)
    assert (drawn, reason) == (10, "unanimous")
    assert summary(keys[:drawn]) == summary(keys) == ("certain", "42", frozenset({"42"}))
    assert compare(keys, drawn) == {"status": True, "answer": True, "both": True, "clusters": True}


def test_a_late_flip_is_not_stopped_before_it_is_decided():
    # A leads early (6 of the first 10), then B takes over: full K's answer is B.
    keys = ["A", "B"] * 2 + ["A"] * 4 + ["B", "C"] + ["B", "B", "A", "B", "B"] * 18
    assert summary(keys)[1] == "B" and summary(keys[:10])[1] == "A"
    drawn, reason = replay(keys, 100, RULE)
    assert reason == "lead" and 10 < drawn < 100
    assert compare(keys, drawn)["both"]
    # At every wave the rule went on while A still led or B's lead was not yet safe.
    for n in range(10, drawn, 5):
        assert decide(keys[:n], 100, RULE) is None


def test_a_tie_runs_to_k_and_equals_full_k():
    keys = ["A", "B"] * 50
    assert replay(keys, 100, RULE) == (100, "k")
    assert summary(keys) == ("uncertain", "A", frozenset({"A", "B"}))  # the tie goes to the first formed


def test_no_answer_cases():
    unparsable = [None] * 100
    assert replay(unparsable, 100, RULE) == (10, "unparsable")
    assert summary(unparsable[:10])[:2] == summary(unparsable)[:2] == ("no_answer", None)
    singletons = [str(i) for i in range(100)]  # every answer once: no cluster survives, nothing to stop on
    assert replay(singletons, 100, RULE) == (100, "k") and summary(singletons)[0] == "no_answer"
    # A stray singleton keeps a leading answer from stopping as unanimous; the lead test needs two clusters.
    keys = ["5"] * 9 + ["6"] + ["5"] * 90
    drawn, reason = replay(keys, 100, RULE)
    assert reason == "k" and summary(keys[:drawn]) == summary(keys) == ("certain", "5", frozenset({"5"}))


def test_lead_test_uses_the_remaining_samples():
    # 14 vs 4 after 20 samples: lead 10 >= 2 * sqrt(18 * 0.8) = 7.6 -> stop; with K = 1000 the bound is 8.4.
    keys = ["A"] * 14 + ["B"] * 4 + ["C", "D"]
    assert decide(keys, 100, RULE) == "lead"
    assert decide(keys, 1000, AdaptiveRule(wave=5, min_samples=10, z=2.5)) is None


class FakeBackend(Backend):
    """Answers are a function of the request id (so of the wave); records each wave's request."""

    def __init__(self, answers):
        self.answers, self.calls = answers, []

    def generate(self, conversations, sampling, ids):
        self.calls.append((list(ids), sampling.n))
        return [[self.answers(qid, i) for i in range(sampling.n)] for qid in ids]


def test_probe_in_waves_requests_open_questions_only_with_per_wave_ids():
    def answers(request_id, i):
        qid, _, wave = request_id.partition("#wave")
        if qid == "same":
            return "#### 3"
        return f"#### {(i + int(wave or 0)) % 2}"  # a tie that never resolves

    examples = [Example(id="same", question="q1", gold="3"), Example(id="tie", question="q2", gold="1")]
    backend, closed = FakeBackend(answers), {}
    fmt = answer_format("number")  # the number after ####
    probe_in_waves(backend, examples, lambda ex: [{"role": "user", "content": ex.question}],
                   lambda s, ex: fmt.cluster_key(s, ex.question), Sampling(n=20, temperature=1.0),
                   AdaptiveRule(wave=4, min_samples=8, z=2.0),
                   lambda done: closed.update({ex.id: (outs, reason) for ex, outs, reason in done}))
    assert backend.calls[0] == (["same", "tie"], 8)
    assert backend.calls[1:] == [([wave_id("tie", 1)], 4), ([wave_id("tie", 2)], 4), ([wave_id("tie", 3)], 4)]
    assert wave_id("tie", 0) == "tie" and wave_id("tie", 2) == "tie#wave2"
    assert closed["same"] == (["#### 3"] * 8, "unanimous")
    assert len(closed["tie"][0]) == 20 and closed["tie"][1] == "k"


def test_replay_on_a_tiny_file(tmp_path):
    from bench_adaptive import evaluate, load_keys

    rows = [{"id": "a", "question": "x", "samples": ["#### 1"] * 20},  # certain: stops at 10 of 20
            {"id": "b", "question": "y", "samples": ["#### 1", "#### 2"] * 10},  # a tie: all 20
            {"id": "c", "question": "z", "samples": ["#### 5"] * 10 + ["#### 6"] * 10}]  # certain at 10, not at 20
    path = tmp_path / "probe.jsonl.xz"
    with lzma.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in rows)
    keys, samples = load_keys(path)
    assert keys["a"] == ["1"] * 20 and samples["b"][1] == "#### 2"
    tokens = {"a": [1] * 20, "b": [2] * 20, "c": [3] * 20}
    result = evaluate(RULE, keys, tokens, 20)
    assert result["samples_drawn"] == 10 + 20 + 10
    assert result["tokens_drawn"] == 10 * 1 + 20 * 2 + 10 * 3 and result["tokens_full"] == 20 * 6
    assert result["token_ratio"] == round(120 / 80, 3) and result["sample_ratio"] == 1.5
    assert result["disagree"] == {"status": 1, "answer": 0, "both": 1, "clusters": 1}
    assert result["stops"] == {"unanimous": 2, "k": 1}


def test_uncertainty_adaptive_with_the_small_model(tmp_path, small_model, hf_backend, capfd):
    from uncertainty import main

    out = tmp_path / "unc.jsonl"
    pool_ids = [ex.id for ex in load_task("arc_challenge").examples("student", limit=3)]
    args = ["--data", "arc_challenge", "--teacher", small_model, "--backend", "hf", "--k", "4", "--limit", "3",
            "--max-new-tokens", "8", "--batch-size", "32", "--summarizer-max-new-tokens", "8", "--adaptive",
            "--min-samples", "2", "--wave-size", "2", "--save-samples", "--output", str(out)]
    main(args, backend=hf_backend(32))  # the session's model, in this process: no second start-up
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    capfd.readouterr()
    main(args)  # a rerun resumes: no model loaded, nothing drawn or written again
    assert "loading" not in capfd.readouterr().err
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows
    assert sorted(r["id"] for r in rows) == sorted(pool_ids)
    manifest = json.loads(Path(str(out).replace(".jsonl", ".manifest.json")).read_text())
    adaptive = manifest["adaptive"]
    assert adaptive["min_samples"] == 2 and adaptive["wave"] == 2 and adaptive["k"] == 4
    assert adaptive["samples_drawn"] == sum(r["n_samples"] for r in rows) == manifest["counts"]["samples"]
    assert adaptive["samples_full_k"] == 12 and sum(adaptive["stops"].values()) == 3
    for r in rows:
        assert r["n_samples"] in (2, 4) and len(r["samples"]) == r["n_samples"]
        assert r["adaptive_stop"] in ("unanimous", "unparsable", "lead", "k")
        assert (r["n_samples"] == 4) == (r["adaptive_stop"] == "k")
        task_keys = [load_task("arc_challenge").cluster_key(s, ex) for ex in load_task("arc_challenge")
                     .examples("student", limit=3) if ex.id == r["id"] for s in r["samples"]]
        assert r["status"] == summary(task_keys)[0]
        assert decide(task_keys, 4, AdaptiveRule(wave=2, min_samples=2, z=2.0)) == r["adaptive_stop"]


def test_adaptive_refuses_semantic_clustering(tmp_path, small_model):
    from uncertainty import main

    with pytest.raises(AliceError, match="--adaptive needs exact clustering"):  # before any model loads
        main(["--data", "arc_challenge", "--teacher", small_model, "--adaptive", "--clustering", "semantic",
              "--output", str(tmp_path / "sem.jsonl")])

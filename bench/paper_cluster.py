"""The paper's semantic clustering, re-implemented in this project's words for comparison.

The authors' approach, as described in docs/METHOD.md and the issue: samples are visited in order; for
each sample, every existing cluster is tried in order, and the sample and that cluster's first
member are BOTH embedded again for that comparison; the sample joins the first cluster whose
cosine similarity exceeds the threshold, else it starts a new cluster. Nothing is cached, so a
question with K samples and C clusters costs up to 2*K*C single-text embedding calls.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def paper_clusters(samples: Sequence[str], model, threshold: float = 0.9) -> list[list[int]]:
    """Clusters as lists of sample indices (first member = representative), in creation order."""

    def similarity(a: str, b: str) -> float:
        va = model.encode([a], normalize_embeddings=True, convert_to_numpy=True)[0]
        vb = model.encode([b], normalize_embeddings=True, convert_to_numpy=True)[0]
        return float(np.dot(va, vb))

    clusters: list[list[int]] = []
    for index, text in enumerate(samples):
        for cluster in clusters:
            if similarity(text, samples[cluster[0]]) > threshold:
                cluster.append(index)
                break
        else:
            clusters.append([index])
    return clusters

"""Accuracy intervals, the performance gap recovered (PGR) and paired tests between two models.

Outcomes are per-question arrays in [0, 1] over the same questions in the same order: 0/1 for one
run, or the mean correctness over a method's training seeds. Intervals resample questions.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np


def wilson_interval(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a proportion; (0, 0) for n = 0."""
    if n == 0:
        return (0.0, 0.0)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def summarize_scores(correct: Sequence[bool], parsed: Sequence[bool]) -> dict:
    """Accuracy over every question (unparsable counts as wrong), parse rate, interval."""
    n = len(correct)
    right = sum(bool(c) for c in correct)
    low, high = wilson_interval(right, n)
    return {
        "n": n,
        "correct": right,
        "parsed": sum(bool(p) for p in parsed),
        "accuracy": right / n if n else 0.0,
        "accuracy_ci95": [low, high],
        "parse_rate": sum(bool(p) for p in parsed) / n if n else 0.0,
    }


def pgr(method: float, weak: float, ceiling: float) -> float | None:
    """(method - weak) / (ceiling - weak); None when the ceiling does not beat weak."""
    gap = ceiling - weak
    if gap <= 0:
        return None
    return (method - weak) / gap


def bootstrap_interval(data: Sequence[np.ndarray], statistic: Callable[..., np.ndarray], samples: int = 2000,
                       seed: int = 0) -> tuple[list[float] | None, str | None]:
    """95% paired bootstrap interval over questions of ``statistic(*data, axis=...)``: BCa, or the
    percentile interval of the resamples where the statistic is defined when BCa is not (every
    difference equal, or e.g. PGR undefined on some resamples). Returns (interval, "BCa" or
    "percentile"), or (None, None) with under two questions or under half the resamples defined."""
    if len(data[0]) < 2:
        return None, None
    from scipy import stats  # here, not at the top: it takes a second to import and eval.py needs none of it

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on degenerate data and returns nan: handled below
        # random_state (not rng=) so scipy 1.11-1.14 work too; a Generator gives the same draws as rng=.
        result = stats.bootstrap(tuple(data), statistic, paired=True, vectorized=True, n_resamples=samples,
                                 method="BCa", random_state=np.random.default_rng(seed))
    draws = result.bootstrap_distribution
    low, high = result.confidence_interval
    if np.isfinite(draws).all() and np.isfinite(low) and np.isfinite(high):
        return [float(low), float(high)], "BCa"
    draws = draws[np.isfinite(draws)]
    if len(draws) < samples / 2:
        return None, None
    low, high = np.percentile(draws, [2.5, 97.5])
    return [float(low), float(high)], "percentile"


def _pgr_statistic(method: np.ndarray, weak: np.ndarray, ceiling: np.ndarray, axis: int = -1) -> np.ndarray:
    gap = ceiling.mean(axis) - weak.mean(axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gap > 0, (method.mean(axis) - weak.mean(axis)) / gap, np.nan)


def bootstrap_pgr(method: np.ndarray, weak: np.ndarray, ceiling: np.ndarray, samples: int = 2000,
                  seed: int = 0) -> tuple[float | None, list[float] | None, str | None]:
    """PGR with a 95% bootstrap interval over questions: (point, interval, interval method)."""
    point = pgr(float(method.mean()), float(weak.mean()), float(ceiling.mean()))
    if point is None:
        return None, None, None
    return (point, *bootstrap_interval((method, weak, ceiling), _pgr_statistic, samples, seed))


def exact_sign_p(a_better: int, b_better: int) -> float:
    """Two-sided exact sign test on the questions where the two differ (McNemar's exact test for 0/1
    outcomes: a_better = a right and b wrong); 1.0 when they never differ."""
    if a_better + b_better == 0:
        return 1.0
    from scipy import stats

    return float(stats.binomtest(a_better, a_better + b_better, 0.5).pvalue)


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return a.mean(axis) - b.mean(axis)


def paired_difference(a: np.ndarray, b: np.ndarray, samples: int = 2000, seed: int = 0) -> dict:
    """delta = mean(a) - mean(b) on the same questions, its 95% paired bootstrap interval and the exact
    sign test on the questions where a and b differ (``p_mcnemar``: McNemar's exact test for 0/1 outcomes)."""
    diff = a - b
    a_better, b_better = int((diff > 0).sum()), int((diff < 0).sum())
    interval, how = bootstrap_interval((a, b), _mean_difference, samples, seed)
    return {"n": len(a), "delta": float(diff.mean()), "ci": interval, "ci_method": how, "a_better": a_better,
            "b_better": b_better, "p_mcnemar": exact_sign_p(a_better, b_better)}


# ----------------------------------------------------------------------------- clustered, over seeds


def cluster_index(clusters: Sequence[str]) -> tuple[np.ndarray, int]:
    """Each question's cluster as an integer (0..G-1) and G."""
    labels = {c: i for i, c in enumerate(dict.fromkeys(clusters))}
    return np.array([labels[c] for c in clusters], dtype=int), len(labels)


def per_cluster(outcomes: np.ndarray, index: np.ndarray, count: int) -> np.ndarray:
    """(seeds, questions) outcomes -> (seeds, clusters) sums."""
    out = np.zeros((outcomes.shape[0], count))
    for s in range(outcomes.shape[0]):
        out[s] = np.bincount(index, weights=outcomes[s], minlength=count)
    return out


def bootstrap_arms(arms: Sequence[np.ndarray], clusters: Sequence[str], statistic: Callable[..., np.ndarray],
                   samples: int = 4000, seed: int = 0) -> list[float] | None:
    """95% percentile interval of ``statistic(acc_1, ..., acc_k)`` (each a vector of resampled accuracies)
    under a two-stage bootstrap: the clusters (templates; questions when each is its own) are resampled
    with replacement, the same draw for every arm (paired), and each arm's training seeds are resampled
    with replacement, independently. ``arms``: per arm a (seeds, questions) array of outcomes over the
    same questions. None when fewer than two clusters or half the resamples are undefined."""
    index, count = cluster_index(clusters)
    if count < 2:
        return None
    rng = np.random.default_rng(seed)
    sizes = np.bincount(index, minlength=count).astype(float)
    weights = rng.multinomial(count, np.full(count, 1.0 / count), size=samples).astype(float)  # (B, G)
    denominator = weights @ sizes
    accuracies = []
    for outcomes in arms:
        sums = per_cluster(np.atleast_2d(outcomes), index, count)  # (S, G)
        seeds = sums.shape[0]
        picks = rng.multinomial(seeds, np.full(seeds, 1.0 / seeds), size=samples) / seeds  # (B, S) seed weights
        accuracies.append(((picks @ sums) * weights).sum(axis=1) / denominator)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.asarray(statistic(*accuracies), dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < samples / 2:
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]


def cluster_test(a: np.ndarray, b: np.ndarray, clusters: Sequence[str]) -> dict:
    """Paired test at the level of clusters: each cluster's accuracy difference (seed means of a and b),
    Wilcoxon's signed-rank test over the clusters where they differ (two-sided; exact for small counts)."""
    index, count = cluster_index(clusters)
    sizes = np.bincount(index, minlength=count)
    diff = (per_cluster(np.atleast_2d(a), index, count).mean(0) - per_cluster(np.atleast_2d(b), index, count).mean(0)) \
        / sizes
    nonzero = diff[np.abs(diff) > 1e-12]
    p = 1.0
    if len(nonzero) > 0:
        from scipy import stats

        p = float(stats.wilcoxon(nonzero).pvalue)
    return {"clusters": int(count), "clusters_a_better": int((diff > 1e-12).sum()),
            "clusters_b_better": int((diff < -1e-12).sum()), "p_clusters": p}

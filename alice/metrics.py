"""Accuracy intervals and the performance gap recovered (PGR)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


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


def bootstrap_pgr(method: dict[str, bool], weak: dict[str, bool], ceiling: dict[str, bool],
                  samples: int = 2000, seed: int = 0) -> tuple[float | None, list[float] | None]:
    """PGR with a 95% bootstrap interval, resampling questions (ids shared by all three)."""
    ids = sorted(set(method) & set(weak) & set(ceiling))
    if not ids:
        return None, None

    def rate(outcomes: dict[str, bool], picked: list[str]) -> float:
        return sum(outcomes[i] for i in picked) / len(picked)

    point = pgr(rate(method, ids), rate(weak, ids), rate(ceiling, ids))
    rng = random.Random(seed)
    draws = []
    for _ in range(samples):
        picked = [ids[rng.randrange(len(ids))] for _ in ids]
        value = pgr(rate(method, picked), rate(weak, picked), rate(ceiling, picked))
        if value is not None:
            draws.append(value)
    if len(draws) < samples // 2:
        return point, None
    draws.sort()
    return point, [draws[int(0.025 * len(draws))], draws[int(0.975 * len(draws)) - 1]]

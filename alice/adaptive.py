"""Adaptive probing: draw a question's K samples in waves and stop once more cannot matter.

The method uses three things from a question's K samples (exact clustering, singletons dropped):
its status (certain / uncertain / no_answer), the teacher's answer (the largest cluster's key) and
the clusters that survive. Drawing all K is the paper's way (and the default); ``--adaptive``
draws them in waves and stops a question early by this rule (``AdaptiveRule``), with n samples
drawn so far:

- never before ``min_samples`` (the first wave), always at K;
- **unanimous**: every sample drawn has the same (parsed) key -> stop; status certain;
- **unparsable**: no sample has a key -> stop; status no_answer;
- **lead**: at least two clusters survive (status uncertain, which more samples cannot undo) and
  the largest cluster leads the runner-up by ``c1 - c2 >= z * sqrt((c1 + c2) * (1 - n / K))``.

The lead test is the sign test of the top two clusters with a finite-population correction: it
asks whether the leader will still lead after all K samples (not whether it leads in the
teacher's true distribution), so it relaxes as n nears K and always passes at n = K.

What the rule gives up, measured on the fair test's teacher (``bench/bench_adaptive.py``; figures in
``bench/RESULTS.md``): with the defaults (first wave 15, waves of 5, z = 2), 3.12x fewer sampled
tokens, and 97.4% of questions get full K's status and answer. A question stopped as unanimous may
still have a second surviving cluster at full K (status error, 2.2%); a lead stop may name another
answer than full K would (0.5%). The clusters that survive are a subset of full K's: every cluster
of two samples stays one, but rarer answers may not have shown up twice yet (the same set on 70%).
Cluster sizes are those of the samples drawn.

Seeds: wave 0 is requested with the question's own id (the same request seed as a full-K run);
wave j >= 1 uses the id ``f"{id}#wave{j}"``, so each wave draws different samples and a rerun
draws the same ones.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .backends import Backend, Sampling, check_prompt_lengths
from .clustering import cluster_by_key
from .errors import AliceError
from .records import JsonlAppender
from .tasks import Example

Keys = Sequence[str | None]
ADAPTIVE_ARGS = ("adaptive", "min_samples", "wave_size", "lead_z")  # uncertainty.py's options for it


@dataclass(frozen=True)
class AdaptiveRule:
    """When to stop drawing a question's samples (see the module docstring)."""

    wave: int = 5  # samples per wave after the first
    min_samples: int = 20  # the first wave; no stop before it (chosen by bench/bench_adaptive.py --heldout)
    z: float = 2.0  # the lead test's threshold, in standard errors

    def check(self) -> None:
        if self.wave < 1 or self.min_samples < 1 or self.z < 0:
            raise AliceError("adaptive probing: --wave-size and --min-samples must be at least 1, --lead-z at least 0")

    def describe(self) -> dict:
        return asdict(self)


def decide(keys: Keys, k: int, rule: AdaptiveRule, keep_singletons: bool = False) -> str | None:
    """Why to stop after the samples drawn so far (their keys, in draw order), or None to go on.

    Reasons: ``"k"`` (all K drawn), ``"unanimous"``, ``"unparsable"``, ``"lead"``.
    """
    n = len(keys)
    if n >= k:
        return "k"
    if n < rule.min_samples:
        return None
    distinct = set(keys)
    if distinct == {None}:
        return "unparsable"
    if len(distinct) == 1:
        return "unanimous"
    clusters = cluster_by_key(keys, keep_singletons).clusters
    if len(clusters) >= 2:
        c1, c2 = clusters[0].size, clusters[1].size
        if c1 - c2 >= rule.z * math.sqrt((c1 + c2) * (1 - n / k)):
            return "lead"
    return None


def wave_sizes(k: int, rule: AdaptiveRule) -> list[int]:
    """The sizes of the waves a question can draw: min_samples, then wave after wave, up to K."""
    sizes = [min(k, rule.min_samples)]
    while sum(sizes) < k:
        sizes.append(min(rule.wave, k - sum(sizes)))
    return sizes


def replay(keys: Keys, k: int, rule: AdaptiveRule, keep_singletons: bool = False) -> tuple[int, str]:
    """Replay the waves on a question's K stored keys (draw order): (samples drawn, stop reason)."""
    drawn = 0
    for size in wave_sizes(k, rule):
        drawn += size
        reason = decide(keys[:drawn], k, rule, keep_singletons)
        if reason:
            return drawn, reason
    return drawn, "k"  # not reached: decide stops at K


def summary(keys: Keys, keep_singletons: bool = False) -> tuple[str, str | None, frozenset]:
    """(status, teacher's answer key, keys of the surviving clusters) of some samples' keys."""
    result = cluster_by_key(keys, keep_singletons)
    answer = result.clusters[0].key if result.clusters else None
    return result.status, answer, frozenset(c.key for c in result.clusters)


def compare(keys: Keys, drawn: int, keep_singletons: bool = False) -> dict[str, bool]:
    """Whether the first ``drawn`` samples give full K's status, answer, both, surviving clusters."""
    part, full = summary(keys[:drawn], keep_singletons), summary(keys, keep_singletons)
    return {"status": part[0] == full[0], "answer": part[1] == full[1],
            "both": part[:2] == full[:2], "clusters": part[2] == full[2]}


# ----------------------------------------------------------------------------- generation


def rule_from_args(args) -> AdaptiveRule:
    rule = AdaptiveRule(wave=args.wave_size, min_samples=args.min_samples, z=args.lead_z)
    rule.check()
    return rule


def wave_id(question_id: str, wave: int) -> str:
    """The id a wave's request is seeded from (backends seed from ``question_seed(seed, id)``)."""
    return question_id if wave == 0 else f"{question_id}#wave{wave}"


def probe_in_waves(backend: Backend, examples: Sequence[Example], conversation: Callable[[Example], list[dict]],
                   key: Callable[[str, Example], str | None], sampling: Sampling, rule: AdaptiveRule,
                   on_closed: Callable[[list[tuple[Example, list[str], str]]], None],
                   keep_singletons: bool = False) -> None:
    """Draw up to ``sampling.n`` (= K) samples per question in waves: each wave is one request with
    n = wave size per question still open; after each wave, ``on_closed`` gets the questions that
    stopped in it as (example, samples, stop reason)."""
    k = sampling.n
    drawn: dict[str, list[str]] = {ex.id: [] for ex in examples}
    keys: dict[str, list[str | None]] = {ex.id: [] for ex in examples}
    conversations = {ex.id: conversation(ex) for ex in examples}
    open_ = list(examples)
    for wave, size in enumerate(wave_sizes(k, rule)):
        if not open_:
            break
        outputs = backend.generate([conversations[ex.id] for ex in open_], Sampling(
            n=size, temperature=sampling.temperature, top_p=sampling.top_p, max_tokens=sampling.max_tokens,
            seed=sampling.seed), [wave_id(ex.id, wave) for ex in open_])
        still_open, closed = [], []
        for ex, outs in zip(open_, outputs):
            drawn[ex.id].extend(outs)
            keys[ex.id].extend(key(s, ex) for s in outs)
            reason = decide(keys[ex.id], k, rule, keep_singletons)
            if reason:
                closed.append((ex, drawn[ex.id], reason))
            else:
                still_open.append(ex)
        on_closed(closed)
        open_ = still_open


def adaptive_stage(output: Path, backend_get: Callable[[], Backend], examples: list[Example],
                   conversation: Callable[[Example], list[dict]], key: Callable[[str, Example], str | None],
                   sampling: Sampling, rule: AdaptiveRule, args) -> tuple[list[dict], dict]:
    """Resume-or-probe into ``output`` (rows: id, samples, stop); like ``alice.stages.common.generate_stage``.

    Questions are probed a chunk at a time (``--chunk-size``, default 64 on CPU, 16384 / min_samples on a
    GPU: later waves hold only the open questions, so a chunk must be large for them to fill a batch), and
    the rows of the questions that stop in a wave are written after that wave, so a kill
    loses only the open questions (a rerun draws them again, from wave 0, with the same seeds).
    """
    from .backends import cuda_available

    stats: dict = {"generated_now": 0, "skipped_long_prompts": 0, "skipped_ids": []}
    with JsonlAppender(output) as appender:
        pending = [ex for ex in examples if ex.id not in appender.done]
        if pending:
            backend = backend_get()
            skipped = set(check_prompt_lengths(backend, [conversation(ex) for ex in pending],
                                               [ex.id for ex in pending], sampling.max_tokens,
                                               args.skip_long_prompts))
            work = [ex for ex in pending if ex.id not in skipped]
            chunk = args.chunk_size or (max(1, 16384 // rule.min_samples) if cuda_available() else 64)
            started = time.time()
            for start in range(0, len(work), chunk):
                probe_in_waves(backend, work[start:start + chunk], conversation, key, sampling, rule,
                               lambda closed: appender.write_many({"id": ex.id, "samples": outs, "stop": reason}
                                                                  for ex, outs, reason in closed),
                               args.keep_singletons)
            stats = {"generated_now": len(work), "skipped_long_prompts": len(skipped),
                     "skipped_ids": sorted(skipped), "generation_s": round(time.time() - started, 3)}
        rows = [appender.done[ex.id] for ex in examples if ex.id in appender.done]
    return rows, stats


def describe_run(rows: Sequence[dict], k: int, rule: AdaptiveRule) -> dict:
    """The manifest's ``adaptive`` entry from the uncertainty output rows: the rule, the samples drawn
    against all K, and why questions stopped."""
    return {**rule.describe(), "k": k, "questions": len(rows), "samples_drawn": sum(r["n_samples"] for r in rows),
            "samples_full_k": k * len(rows), "stops": dict(Counter(r.get("adaptive_stop", "k") for r in rows)),
            "seeds": "wave 0: the question's id; wave j >= 1: the id + '#wave{j}'"}

"""Semantic clustering: this project's implementation vs the paper's algorithm (bench/paper_cluster.py).

Both use the same embedder (default: the offline all-MiniLM-L6-v2) and threshold (0.9) on synthetic,
realistic short open-QA answers (--questions x --samples, default 1000 x 100): each question has a
few candidate answers of uneven popularity, each said in several phrasings.

- ours: every unique sample embedded once in big batches, then the vectorized greedy rule
  (alice.clustering) per question; timed on all questions.
- paper: re-embeds the sample and each cluster's first member at every comparison. It is far too
  slow for 1000 x 100 on a CPU, so it runs on the first --paper-questions questions and its time is
  extrapolated linearly per question (said so in the output).
- identical clusters: ours vs paper on that subset (paper's embeddings are single-text calls, ours
  are batched: tiny float differences could flip a pair sitting exactly at the threshold), plus ours
  vs the one-sample-at-a-time rule on all questions with our embeddings.

Writes P2_cluster_speedup and P2_identical_clusters into bench/results.json and a section to
bench/RESULTS.md.

  python bench/bench_cluster.py                       # 1000 x 100, paper timed on 10 questions
  python bench/bench_cluster.py --questions 50 --paper-questions 5 --no-write
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

from paper_cluster import paper_clusters

from alice.clustering import Embedder, cluster_many_semantic, greedy_semantic

PEOPLE = ["Marie Curie", "Isaac Newton", "Ada Lovelace", "Charles Darwin", "Nikola Tesla", "Jane Austen",
          "Leonardo da Vinci", "Albert Einstein", "Rosalind Franklin", "Alan Turing", "Louis Pasteur",
          "Galileo Galilei", "Florence Nightingale", "Johannes Kepler", "Niels Bohr", "Mary Shelley"]
PLACES = ["Paris", "Lyon", "Vienna", "Berlin", "Madrid", "Lisbon", "Prague", "Warsaw", "Dublin", "Oslo",
          "Canberra", "Sydney", "Ottawa", "Toronto", "Nairobi", "Lima", "Kyoto", "Osaka", "Cairo", "Rome"]
THINGS = ["the violin", "the telescope", "penicillin", "the steam engine", "the printing press", "radium",
          "the bicycle", "the telephone", "insulin", "the barometer", "the compass", "vaccination"]
PHRASINGS = ["The answer is {a}.", "{a}", "It is {a}.", "I believe the answer is {a}.",
             "The answer is {a}, as far as I recall.", "That would be {a}.", "{a} is the answer.",
             "The correct answer is {a}.", "It was {a}, I think.", "My answer: {a}."]
REASONS = ["according to most encyclopedias", "based on the historical record", "from what I remember",
           "since that is what the sources say", "if I recall the dates correctly"]


def synthetic_answers(questions: int, samples: int, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    pools = [PEOPLE, PLACES, THINGS, [str(y) for y in range(1700, 2000)]]
    prompts, answers = [], []
    for q in range(questions):
        pool = pools[q % len(pools)]
        candidates = rng.sample(pool, rng.randint(1, 5))
        weights = [1 / (i + 1) ** 1.5 for i in range(len(candidates))]
        rows = []
        for _ in range(samples):
            a = rng.choices(candidates, weights)[0]
            text = rng.choice(PHRASINGS).format(a=a)
            if rng.random() < 0.3:  # longer replies with a justification, as sampled models write
                text = text.rstrip(".") + f", {rng.choice(REASONS)}."
            rows.append(text)
        prompts.append(f"Synthetic question {q}")
        answers.append(rows)
    return prompts, answers


def sequential_rule(similarity: np.ndarray, threshold: float) -> list[list[int]]:
    clusters: list[list[int]] = []
    for i in range(len(similarity)):
        for cluster in clusters:
            if similarity[i, cluster[0]] > threshold:
                cluster.append(i)
                break
        else:
            clusters.append([i])
    return clusters


def merge_results(values: dict) -> None:
    """Add or update keys in bench/results.json, keeping everyone else's keys."""
    from alice.records import atomic_write_json

    path = BENCH / "results.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(values)
    atomic_write_json(path, data)


def device_line() -> str:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}; CPU {cpu}"
    return f"CPU {cpu}, {torch.get_num_threads()} torch threads, no GPU"


def append_section(title: str, lines: list[str]) -> None:
    path = BENCH / "RESULTS.md"
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    text = ("" if path.exists() else "# Benchmark results\n") + \
        f"\n## {title}\n\n- date: {time.strftime('%Y-%m-%d %H:%M %Z')}\n- device: {device_line()}\n" \
        f"- commit: {commit}\n- command: `python {' '.join(sys.argv)}`\n" + "".join(f"- {x}\n" for x in lines)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--questions", type=int, default=1000)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--paper-questions", type=int, default=10, help="most questions the paper's algorithm is timed on")
    p.add_argument("--paper-seconds", type=float, default=600, help="stop the paper's algorithm after the question "
                   "that passes this many seconds (at least one question runs)")
    p.add_argument("--embedder", default=None)
    p.add_argument("--threshold", type=float, default=0.9)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--no-write", action="store_true", help="print only; leave results.json and RESULTS.md alone")
    args = p.parse_args()

    prompts, answers = synthetic_answers(args.questions, args.samples)
    embedder = Embedder(args.embedder, batch_size=args.batch_size)
    embedder.embed(["warm up"])
    total = sum(len(a) for a in answers)
    unique = len({t for a in answers for t in a})

    started = time.perf_counter()
    vectors: dict[str, np.ndarray] = {}

    def embed(texts, owner):
        out = embedder.embed(texts, [prompts[q] for q in owner], show_progress=True)
        vectors["all"] = out
        return out

    ours = cluster_many_semantic(answers, embed, args.threshold, keep_singletons=True)
    ours_s = time.perf_counter() - started
    ours_members = [[c.members for c in sorted(r.clusters, key=lambda c: c.representative)] for r in ours]

    # Same rule one sample at a time, on the same embeddings: all questions.
    rows, start, rule_equal = vectors["all"], 0, 0
    for q, group in enumerate(answers):
        block = rows[start:start + len(group)]
        start += len(group)
        rule_equal += sequential_rule(block @ block.T, args.threshold) == ours_members[q]
    assert [c.members for c in greedy_semantic(np.eye(3), 0.9)] == [[0], [1], [2]]

    print(f"ours: {ours_s:.1f} s; now the paper's algorithm, question by question", flush=True)
    started = time.perf_counter()
    paper = []
    for q in range(min(args.paper_questions, args.questions)):
        paper.append(paper_clusters(answers[q], embedder.model, args.threshold))
        print(f"  paper: question {q} done, {time.perf_counter() - started:.1f} s so far", flush=True)
        if time.perf_counter() - started > args.paper_seconds:
            break
    paper_s = time.perf_counter() - started
    subset = len(paper)
    paper_equal = sum(paper[q] == ours_members[q] for q in range(subset))
    paper_full_s = paper_s / subset * args.questions
    speedup = paper_full_s / ours_s
    clusters = np.mean([len(r.clusters) for r in ours])

    lines = [
        (f"data: {args.questions} synthetic open-QA questions x {args.samples} samples ({total} answers, "
         f"{unique} distinct texts), mean {clusters:.2f} clusters per question (singletons kept), "
         f"threshold {args.threshold}, embedder {embedder.name}"),
        (f"ours (embed every sample once, batched + vectorized greedy): {ours_s:.1f} s for all "
         f"{args.questions} questions"),
        (f"paper algorithm (re-embeds at every comparison): {paper_s:.1f} s for the first {subset} questions "
         f"-> {paper_full_s:.0f} s extrapolated to {args.questions} (too slow to run in full on this CPU)"),
        f"speed-up: {speedup:.0f}x",
        (f"identical clusters, ours vs paper: {paper_equal}/{subset} questions; ours vs the sequential rule "
         f"on our embeddings: {rule_equal}/{args.questions}"),
    ]
    print("\n".join(lines))
    if not args.no_write:
        merge_results({"P2_cluster_speedup": round(speedup, 1),
                       "P2_identical_clusters": paper_equal == subset and rule_equal == args.questions,
                       "P2_cluster_detail": {"questions": args.questions, "samples": args.samples,
                                             "ours_s": round(ours_s, 2), "paper_questions": subset,
                                             "paper_s": round(paper_s, 2),
                                             "paper_extrapolated_s": round(paper_full_s, 1),
                                             "identical_vs_paper": f"{paper_equal}/{subset}",
                                             "identical_vs_sequential_rule": f"{rule_equal}/{args.questions}",
                                             "device": device_line()}})
        append_section("P2: semantic clustering, ours vs the paper's algorithm (bench/bench_cluster.py)", lines)


if __name__ == "__main__":
    main()

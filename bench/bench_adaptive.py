"""Adaptive probing replayed offline on a real teacher's saved K samples.

The data: ``results/fair/previous/uncertainty.jsonl.xz``, the fair test's trained teacher
(Qwen2.5-Coder-0.5B-Instruct) probed with K=100 samples per student-pool question of
``--data gsm_symbolic`` (temperature 0.9, top-p 0.95; ``--save-samples`` kept them in the rows).
vLLM's n=K samples are independent draws, so their stored order serves as the draw order: each
rule's waves are replayed on it (``alice.adaptive.replay``) and what the drawn samples give is
compared with what all K give (exact clustering on the number after ``####``, singletons dropped):
status, teacher's answer, both, and the set of surviving clusters.

Sampled tokens: every sample's length in the teacher's own tokenizer (the Qwen2.5 tokenizer, loaded
offline from the GGUF file), cached in ``bench/adaptive_tokens.json.xz`` (``--tokenizer`` rebuilds it).
The token ratio is all K samples' tokens / the tokens of the samples drawn.

  python bench/bench_adaptive.py                    # the grid, the chosen rule; writes results
  python bench/bench_adaptive.py --no-write
  python bench/bench_adaptive.py --tokenizer ~/.cache/small-models/qwen2.5-coder-0.5b-instruct.gguf
  python bench/bench_adaptive.py --heldout results/fair/uncertainty.jsonl.xz \
      --tokenizer ~/.cache/small-models/qwen2.5-coder-0.5b-instruct.gguf     # judged on questions it was not tuned on

``--floor``: the run-to-run floor the rule is judged against, on ``--heldout``'s new questions. Each question's
K samples, resampled twice with replacement, stand for two independent full-K runs of the same teacher: how
often they agree (full K vs full K), how often the rule on one agrees with the other's full K (what a live
adaptive run can reach), and with its own full K (the replay's measure). ``--floor-with FILE``: the same between
two real probe files (questions matched by text): FILE's full K against ``--heldout``'s full K and adaptive draw.

  python bench/bench_adaptive.py --floor --heldout results/fair/uncertainty.jsonl.xz
  python bench/bench_adaptive.py --floor --heldout results/fair/uncertainty.jsonl.xz --floor-with OTHER.jsonl.xz

``--heldout``: a rule is chosen on the tuning data alone (the most tokens saved among the rules that keep
>= 98% of status and answer there; the best agreement with >= 2.5x if none does) and then judged, with the
default rule and the whole grid, on another probe file's questions that the tuning data does not contain
(another teacher's samples; the question text decides what is new).
"""

from __future__ import annotations

import argparse
import itertools
import json
import lzma
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from alice.adaptive import AdaptiveRule, compare, replay

DATA = REPO / "results" / "fair" / "previous" / "uncertainty.jsonl.xz"
TOKENS = BENCH / "adaptive_tokens.json.xz"
CHOSEN = AdaptiveRule(wave=5, min_samples=15, z=2.0)  # the rule the first replay chose (the default until --heldout)
GRID = [AdaptiveRule(wave=w, min_samples=m, z=z) for w, m, z in
        itertools.product((5, 10), (10, 15, 20, 25, 30), (1.5, 1.75, 2.0, 2.5, 3.0, math.inf))]
METRICS = ("status", "answer", "both", "clusters")


def open_text(path: Path):
    return lzma.open(path, "rt", encoding="utf-8") if path.suffix == ".xz" else open(path, encoding="utf-8")


def load_keys(path: Path) -> tuple[dict[str, list[str | None]], dict[str, list[str]]]:
    """Every question's sample keys (exact, number after ####) and samples, by id, from a probe file."""
    from alice.answers import answer_format

    number = answer_format("number")  # gsm8k / gsm_symbolic's format: the number after ####; no data set needed
    keys, samples = {}, {}
    with open_text(path) as handle:
        for line in handle:
            row = json.loads(line)
            samples[row["id"]] = row["samples"]
            keys[row["id"]] = [number.cluster_key(s, row["question"]) for s in row["samples"]]
    return keys, samples


def count_tokens(samples: dict[str, list[str]], gguf: Path) -> dict[str, list[int]]:
    """Each sample's token count in the teacher's tokenizer (read offline from its GGUF file)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    return {qid: [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
            for qid, texts in samples.items()}


def evaluate(rule: AdaptiveRule, keys: dict[str, Sequence[str | None]], tokens: dict[str, Sequence[int]],
             k: int, ids: Sequence[str] | None = None) -> dict:
    """Replay one rule on every question (or ``ids``): token ratio, samples, agreement with full K."""
    ids = list(keys) if ids is None else list(ids)
    drawn_tokens = full_tokens = drawn_samples = 0
    agree, stops, wrong = Counter(), Counter(), Counter()
    for qid in ids:
        drawn, reason = replay(keys[qid], k, rule)
        stops[reason] += 1
        drawn_samples += drawn
        drawn_tokens += sum(tokens[qid][:drawn])
        full_tokens += sum(tokens[qid][:k])
        same = compare(keys[qid][:k], drawn)
        agree.update(name for name, ok in same.items() if ok)
        wrong.update(f"{reason}: {name}" for name, ok in same.items() if not ok and name in ("status", "answer"))
    n = len(ids)
    return {"rule": rule.describe(), "questions": n, "token_ratio": round(full_tokens / drawn_tokens, 3),
            "sample_ratio": round(k * n / drawn_samples, 3), "tokens_drawn": drawn_tokens, "tokens_full": full_tokens,
            "samples_drawn": drawn_samples, "agreement": {m: round(agree[m] / n, 4) for m in METRICS},
            "disagree": {m: n - agree[m] for m in METRICS}, "stops": dict(stops),
            "disagree_by_stop": dict(sorted(wrong.items()))}


def wilson(failures: int, n: int, z: float = 1.96) -> list[float]:
    """95% Wilson interval of a failure rate."""
    p = failures / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def merge_results(values: dict) -> None:
    """Add or update keys in bench/results.json, in the file's own layout (indent 1), keeping the other keys."""
    from alice.records import atomic_write_text

    path = BENCH / "results.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(values)
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def rule_name(rule: AdaptiveRule) -> str:
    z = "off" if math.isinf(rule.z) else f"{rule.z:g}"
    return f"first {rule.min_samples}, waves of {rule.wave}, lead z {z}"


def table(results: list[dict]) -> list[str]:
    lines = ["| first wave | wave | lead z | token ratio | sample ratio | status | answer | both | clusters |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        z = "off" if math.isinf(r["rule"]["z"]) else f"{r['rule']['z']:g}"
        a = r["agreement"]
        lines.append(f"| {r['rule']['min_samples']} | {r['rule']['wave']} | {z} | {r['token_ratio']:.2f} | "
                     f"{r['sample_ratio']:.2f} | {a['status']:.1%} | {a['answer']:.1%} | {a['both']:.1%} | "
                     f"{a['clusters']:.1%} |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--tokens", type=Path, default=TOKENS, help="cached per-sample token counts")
    p.add_argument("--tokenizer", type=Path, help="GGUF file of the teacher: recount the tokens into --tokens")
    p.add_argument("--no-write", action="store_true", help="print only; leave results.json and RESULTS.md alone")
    p.add_argument("--heldout", type=Path, help="another probe file: choose the rule on --data, judge it here")
    p.add_argument("--floor", action="store_true", help="with --heldout: the full-K-vs-full-K floor beside the rule "
                   "(resampled runs; see above)")
    p.add_argument("--floor-with", type=Path, help="with --floor: a second real probe file of the same questions")
    p.add_argument("--pairs", type=int, default=50, help="--floor: resampled pairs of runs per question")
    args = p.parse_args()
    if args.floor:
        if not args.heldout:
            p.error("--floor needs --heldout")
        floor(args)
        return
    if args.heldout:
        heldout(args)
        return

    keys, samples = load_keys(args.data)
    if args.tokenizer:
        tokens = count_tokens(samples, args.tokenizer.expanduser())
        with lzma.open(args.tokens, "wt", encoding="utf-8") as handle:
            json.dump(tokens, handle, separators=(",", ":"))
    else:
        with lzma.open(args.tokens, "rt", encoding="utf-8") as handle:
            tokens = json.load(handle)
    if set(tokens) != set(keys) or any(len(tokens[q]) != len(samples[q]) for q in keys):
        sys.exit(f"{args.tokens} does not match {args.data}: rerun with --tokenizer")

    grid = [evaluate(rule, keys, tokens, args.k) for rule in GRID]
    for line in table(grid):
        print(line)
    chosen = evaluate(CHOSEN, keys, tokens, args.k)
    ids = list(keys)
    halves = [evaluate(CHOSEN, keys, tokens, args.k, ids[i::2]) for i in (0, 1)]
    n = chosen["questions"]
    errors = {m: {"rate": round(chosen["disagree"][m] / n, 4), "ci95": wilson(chosen["disagree"][m], n)}
              for m in METRICS}
    goal = chosen["token_ratio"] >= 3 and chosen["agreement"]["both"] >= 0.97
    print(f"\nchosen: {rule_name(CHOSEN)}: token ratio {chosen['token_ratio']}, agreement {chosen['agreement']}, "
          f"errors {errors}, stops {chosen['stops']}, where {chosen['disagree_by_stop']}; halves: "
          + "; ".join(f"{h['token_ratio']} / {h['agreement']['both']}" for h in halves)
          + f"\ngoal (>= 3x fewer sampled tokens, >= 97% identical on status and answer): {'met' if goal else 'NOT met'}")
    if args.no_write:
        return

    from bench_cluster import append_section, device_line

    source = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "device": f"{device_line()} (offline replay of saved samples)",
              "command": "python " + " ".join(sys.argv), "data": str(args.data.relative_to(REPO)) if args.data.is_relative_to(REPO) else str(args.data),
              "questions": n, "k": args.k, "teacher": "Qwen2.5-Coder-0.5B-Instruct trained on gsm_symbolic rationales "
              "(the fair test)", "tokens": "Qwen2.5 tokenizer (from the GGUF file), sample text without the end token"}
    merge_results({
        "P1_adaptive_token_ratio": {"value": chosen["token_ratio"], "rule": CHOSEN.describe(),
                                    "sample_ratio": chosen["sample_ratio"], "tokens_full": chosen["tokens_full"],
                                    "tokens_drawn": chosen["tokens_drawn"], "goal": 3.0, "goal_met": goal, **source},
        "P1_adaptive_agreement": {"value": chosen["agreement"]["both"], "agreement": chosen["agreement"],
                                  "error": errors, "stops": chosen["stops"],
                                  "disagree_by_stop": chosen["disagree_by_stop"],
                                  "halves_both": [h["agreement"]["both"] for h in halves],
                                  "halves_token_ratio": [h["token_ratio"] for h in halves], "goal": 0.97,
                                  "note": "agreement with all K samples; 'clusters' = the same set of surviving "
                                          "clusters (keys); 'both' = status and answer", **source},
    })
    shown = [r for r in grid if r["rule"]["wave"] == CHOSEN.wave and r["rule"]["min_samples"] in (10, 15, 20, 30)]
    data_line = (f"data: `{source['data']}` (results/fair/previous: {n} gsm_symbolic student-pool questions x K={args.k} "
                 "samples of the trained Qwen2.5-Coder-0.5B teacher, temperature 0.9, top-p 0.95); samples replayed "
                 "in their stored order")
    rule_line = ("rule (`alice/adaptive.py`): draw a first wave of m samples, then waves of w; after each wave stop a "
                 "question when every sample drawn has the same key (certain), when none parses (no answer), or when "
                 "two clusters survive and the largest leads the runner-up by c1 - c2 >= z * sqrt((c1 + c2) * "
                 "(1 - n/K)) (the sign test of the top two, with a finite-population correction because the target "
                 "is full K's result); always at K")
    agreement_line = ("agreement: the drawn samples give the same status / teacher's answer / both / set of "
                      "surviving clusters as all K (exact clustering, singletons dropped)")
    chosen_line = (f"**chosen rule** ({rule_name(CHOSEN)}; `uncertainty.py --adaptive`'s default): "
                   f"`P1_adaptive_token_ratio` = **{chosen['token_ratio']:.2f}x** fewer sampled tokens "
                   f"({chosen['sample_ratio']:.2f}x fewer samples), `P1_adaptive_agreement` (status and answer) = "
                   f"**{chosen['agreement']['both']:.1%}**; goal (>= 3x, >= 97%): **{'met' if goal else 'not met'}**")
    error_line = "measured error (95% Wilson interval): " + ", ".join(
        f"{m} {errors[m]['rate']:.1%} [{errors[m]['ci95'][0]:.1%}, {errors[m]['ci95'][1]:.1%}]" for m in METRICS)
    where_line = (f"where the errors come from (stop: what differs): {chosen['disagree_by_stop']}; a unanimous stop "
                  "misses a second answer that full K draws at least twice; a lead stop rarely names another answer")
    safer = next(r for r in grid if r["rule"] == {**CHOSEN.describe(), "min_samples": CHOSEN.min_samples + 5})
    honest_line = (f"how close: {chosen['disagree']['both']} of {n} questions differ on status or answer (the goal "
                   f"allows {math.floor(0.03 * n)}); the upper end of the error's 95% interval "
                   f"({errors['both']['ci95'][1]:.1%}) is above 3%; the token ratio is "
                   f"{min(h['token_ratio'] for h in halves):.2f} on the worse half. A first wave of "
                   f"{safer['rule']['min_samples']} agrees more ({safer['agreement']['both']:.1%}) but saves "
                   f"{safer['token_ratio']:.2f}x")
    halves_line = (f"stops: {chosen['stops']}; the two halves of the questions (alternate ids): token ratio "
                   f"{halves[0]['token_ratio']:.2f} / {halves[1]['token_ratio']:.2f}, status and answer "
                   f"{halves[0]['agreement']['both']:.1%} / {halves[1]['agreement']['both']:.1%}")
    caveat_line = ("caveat: the rule and its threshold were chosen on these same questions (the halves show the "
                   "spread); surviving clusters differ often because rare answers have not shown up twice when a "
                   "question stops (the drawn clusters are always a subset of full K's)")
    grid_line = "grid (waves of 5; lead z off = stop only on unanimity):\n\n" + "\n".join(table(shown)) + "\n"
    append_section("P1: adaptive probing, replayed on the fair test's teacher (bench/bench_adaptive.py)", [
        data_line, "tokens: each sample's length in the Qwen2.5 tokenizer (GGUF file), in `bench/adaptive_tokens.json.xz`",
        rule_line, agreement_line, chosen_line, error_line, where_line, honest_line, halves_line,
        caveat_line,
        grid_line])

def questions_of(path: Path) -> dict[str, str]:
    with open_text(path) as handle:
        return {row["id"]: row["question"] for row in map(json.loads, handle)}


def choose(results: list[dict]) -> dict:
    """The rule chosen on the tuning data: the most tokens saved with >= 98% status and answer, else the best
    agreement among the rules that save >= 2.5x."""
    good = [r for r in results if r["agreement"]["both"] >= 0.98]
    if good:
        return max(good, key=lambda r: r["token_ratio"])
    return max((r for r in results if r["token_ratio"] >= 2.5), key=lambda r: r["agreement"]["both"])


def heldout(args) -> None:
    """Choose on --data, judge on --heldout's new questions (see the module docstring)."""
    keys, _ = load_keys(args.data)
    with lzma.open(args.tokens, "rt", encoding="utf-8") as handle:
        tokens = json.load(handle)
    new_keys, new_samples = load_keys(args.heldout)
    tuned_questions = set(questions_of(args.data).values())
    new_ids = [qid for qid, question in questions_of(args.heldout).items() if question not in tuned_questions]
    cache = args.tokens.with_name("adaptive_tokens_heldout.json.xz")
    if args.tokenizer:
        new_tokens = count_tokens({q: new_samples[q] for q in new_ids}, args.tokenizer.expanduser())
        with lzma.open(cache, "wt", encoding="utf-8") as handle:
            json.dump(new_tokens, handle, separators=(",", ":"))
    else:
        with lzma.open(cache, "rt", encoding="utf-8") as handle:
            new_tokens = json.load(handle)
    tuned = [evaluate(rule, keys, tokens, args.k) for rule in GRID]
    chosen = choose(tuned)
    rule = AdaptiveRule(**chosen["rule"])
    judged = [evaluate(r, new_keys, new_tokens, args.k, new_ids) for r in GRID]
    on_new = evaluate(rule, new_keys, new_tokens, args.k, new_ids)
    default = evaluate(CHOSEN, new_keys, new_tokens, args.k, new_ids)  # the first replay's choice, for comparison
    n = on_new["questions"]
    goal = on_new["agreement"]["both"] >= 0.98 and on_new["token_ratio"] >= 2.5
    print(f"tuning data: {len(keys)} questions; new questions in --heldout: {n} of {len(new_keys)}")
    print(f"chosen on the tuning data: {rule_name(rule)}: there {chosen['token_ratio']}x, "
          f"{chosen['agreement']['both']:.1%}; on the new questions {on_new['token_ratio']}x, "
          f"{on_new['agreement']['both']:.1%} (errors {on_new['disagree_by_stop']})")
    print(f"the first replay's rule ({rule_name(CHOSEN)}) on the new questions: {default['token_ratio']}x, "
          f"{default['agreement']['both']:.1%}")
    print("\n".join(table(judged)))
    print(f"goal (>= 98% status and answer, >= 2.5x fewer tokens, on new questions): {'met' if goal else 'NOT met'}")
    if args.no_write:
        return
    from bench_cluster import append_section, device_line

    source = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "device": f"{device_line()} (offline replay of saved samples)",
              "command": "python " + " ".join(sys.argv), "tuning_data": str(args.data.relative_to(REPO)),
              "heldout_data": str(args.heldout.relative_to(REPO)) if args.heldout.is_relative_to(REPO) else str(args.heldout),
              "questions": n, "k": args.k}
    errors = {"rate": round(on_new["disagree"]["both"] / n, 4), "ci95": wilson(on_new["disagree"]["both"], n)}
    merge_results({
        "P1_adaptive_heldout_agreement": {"value": on_new["agreement"]["both"], "agreement": on_new["agreement"],
                                          "error_both": errors, "rule": rule.describe(), "goal": 0.98, "goal_met": goal,
                                          "first_replay_rule": {"rule": CHOSEN.describe(), "agreement": default["agreement"],
                                                           "token_ratio": default["token_ratio"]},
                                          "disagree_by_stop": on_new["disagree_by_stop"], **source},
        "P1_adaptive_heldout_token_ratio": {"value": on_new["token_ratio"], "rule": rule.describe(), "goal": 2.5,
                                            "sample_ratio": on_new["sample_ratio"], **source},
    })
    shown = [r for r in judged if r["rule"]["wave"] == 5]
    append_section("P1: adaptive probing judged on questions it was not tuned on (bench/bench_adaptive.py --heldout)", [
        (f"tuning data: `{source['tuning_data']}` ({len(keys)} questions); new questions: the {n} pool questions of "
        f"`{source['heldout_data']}` whose text the tuning data does not have (another draw of the data set, "
        "probed by another training of the same teacher recipe, K=100)"),
        (f"rule chosen on the tuning data alone ({rule_name(rule)}: the most tokens saved with >= 98% status and "
        f"answer there, {chosen['token_ratio']:.2f}x, {chosen['agreement']['both']:.1%})"),
        (f"**on the new questions**: `P1_adaptive_heldout_token_ratio` = **{on_new['token_ratio']:.2f}x**, "
        f"`P1_adaptive_heldout_agreement` (status and answer) = **{on_new['agreement']['both']:.1%}** (error "
        f"{errors['rate']:.1%}, 95% [{errors['ci95'][0]:.1%}, {errors['ci95'][1]:.1%}]); goal (>= 98%, >= 2.5x): "
        f"**{'met' if goal else 'not met'}**; the errors by stop: {on_new['disagree_by_stop']}"),
        (f"the rule the first replay chose on its own questions ({rule_name(CHOSEN)}) there: "
         f"{default['token_ratio']:.2f}x, {default['agreement']['both']:.1%}; `uncertainty.py --adaptive` now "
         "defaults to the rule chosen here (`AdaptiveRule`); without `--adaptive` it draws all K"),
        ("not measured by a replay: how often two independent full-K runs agree (the floor any rule is judged "
        "against); that needs a second probing run on a GPU"),
        "the trade-off on the new questions (waves of 5):\n\n" + "\n".join(table(shown)) + "\n"])


def agreement_counts(pairs: Sequence[tuple[tuple, tuple]]) -> dict[str, float]:
    """Share of (summary, summary) pairs with the same status, answer, both."""
    n = len(pairs)
    return {"status": round(sum(a[0] == b[0] for a, b in pairs) / n, 4),
            "answer": round(sum(a[1] == b[1] for a, b in pairs) / n, 4),
            "both": round(sum(a[:2] == b[:2] for a, b in pairs) / n, 4)}


def floor_pairs(keys: dict[str, Sequence[str | None]], ids: Sequence[str], k: int, rule: AdaptiveRule,
                pairs: int, seed: int = 0) -> dict:
    """Two resampled full-K runs per pair: full vs full, the rule's draw vs the other run, vs its own run; and
    the rule's loss against the floor (adaptive vs another full K, minus full vs full) with a 95% interval
    over questions (a question's pairs are not independent of each other)."""
    import random

    from alice.adaptive import summary

    rng = random.Random(seed)
    full_full, live, own, loss = [], [], [], []
    for qid in ids:
        base = list(keys[qid][:k])
        same_full = same_live = 0
        for _ in range(pairs):
            a, b = rng.choices(base, k=k), rng.choices(base, k=k)
            drawn, _ = replay(a, k, rule)
            full_a, full_b, part = summary(a), summary(b), summary(a[:drawn])
            full_full.append((full_a, full_b))
            live.append((part, full_b))
            own.append((part, full_a))
            same_full += full_a[:2] == full_b[:2]
            same_live += part[:2] == full_b[:2]
        loss.append((same_full - same_live) / pairs)
    n = len(loss)
    mean = sum(loss) / n
    half = 1.96 * math.sqrt(sum((x - mean) ** 2 for x in loss) / (n - 1) / n) if n > 1 else float("nan")
    return {"questions": n, "pairs_per_question": pairs, "full_vs_full": agreement_counts(full_full),
            "adaptive_vs_another_full": agreement_counts(live), "adaptive_vs_its_own_full": agreement_counts(own),
            "adaptive_loss_both": {"value": round(mean, 4), "ci95": [round(mean - half, 4), round(mean + half, 4)]}}


def floor_between(keys: dict[str, Sequence[str | None]], other: dict[str, Sequence[str | None]],
                  matched: Sequence[tuple[str, str]], k: int, rule: AdaptiveRule) -> dict:
    """Two real runs: (id here, id there) per question; the rule's draw is replayed on this run's samples."""
    from alice.adaptive import summary

    full_full, live = [], []
    for here, there in matched:
        drawn, _ = replay(keys[here], k, rule)
        full_full.append((summary(keys[here][:k]), summary(other[there][:k])))
        live.append((summary(keys[here][:drawn]), full_full[-1][1]))
    return {"questions": len(matched), "full_vs_full": agreement_counts(full_full),
            "adaptive_vs_another_full": agreement_counts(live)}


def floor(args) -> None:
    """The run-to-run floor beside the rule, on --heldout's new questions (see the module docstring)."""
    rule = AdaptiveRule()
    new_keys, _ = load_keys(args.heldout)
    tuned_questions = set(questions_of(args.data).values())
    texts = questions_of(args.heldout)
    new_ids = [qid for qid, question in texts.items() if question not in tuned_questions]
    resampled = floor_pairs(new_keys, new_ids, args.k, rule, args.pairs)
    print(f"{len(new_ids)} new questions of {args.heldout}, rule {rule_name(rule)}, {args.pairs} resampled pairs "
          "of full-K runs per question:")
    for name in ("full_vs_full", "adaptive_vs_another_full", "adaptive_vs_its_own_full", "adaptive_loss_both"):
        print(f"  {name}: {resampled[name]}")
    result = {"rule": rule.describe(), "resampled": resampled}
    if args.floor_with:
        other_keys, _ = load_keys(args.floor_with)
        by_text = {question: qid for qid, question in questions_of(args.floor_with).items()}
        matched = [(qid, by_text[texts[qid]]) for qid in new_ids if texts[qid] in by_text]
        if not matched:
            sys.exit(f"{args.floor_with} has none of the new questions")
        result["two_runs"] = {**floor_between(new_keys, other_keys, matched, args.k, rule),
                              "other": str(args.floor_with)}
        print(f"two real runs ({len(matched)} questions in both): {result['two_runs']}")
    if args.no_write:
        return
    source = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": "python " + " ".join(sys.argv),
              "heldout_data": str(args.heldout)}
    merge_results({"P1_adaptive_heldout_floor": {
        "value": resampled["full_vs_full"]["both"], "measure": "status and answer of two full-K runs of one teacher, "
        "each question's K samples resampled with replacement as two independent runs", **result, **source}})
    from bench_cluster import append_section

    def shares(d: dict) -> str:
        return f"status {d['status']:.1%}, answer {d['answer']:.1%}, both **{d['both']:.1%}**"

    loss = resampled["adaptive_loss_both"]
    lines = [
        (f"questions: the {resampled['questions']} new questions of `{args.heldout}` (those `P1_adaptive_heldout_*` "
         f"are judged on); rule: `uncertainty.py --adaptive`'s default ({rule_name(rule)}); two full-K runs of one "
         f"teacher stand in as each question's K={args.k} samples resampled with replacement, {args.pairs} pairs per "
         "question (a plug-in estimate: the teacher's answer distribution taken to be what its K samples show)"),
        f"**full K vs another full K** (`P1_adaptive_heldout_floor`): {shares(resampled['full_vs_full'])}",
        (f"the rule's draw vs another full K (what a live adaptive run can reach): "
         f"{shares(resampled['adaptive_vs_another_full'])}"),
        (f"the rule's draw vs its own full K (the replay's measure, as in `P1_adaptive_heldout_agreement`): "
         f"{shares(resampled['adaptive_vs_its_own_full'])}"),
        (f"the rule's cost beyond run-to-run noise (full vs full minus adaptive vs another full, status and answer): "
         f"**{100 * loss['value']:.1f} points** [{100 * loss['ci95'][0]:.1f}, {100 * loss['ci95'][1]:.1f}] (95%, over "
         "questions)"),
        ("where the floor comes from: on questions whose samples spread over many answers a few samples each, the "
         "largest cluster is a coin toss between runs (the answer differs; the status rarely does)")]
    if "two_runs" in result:
        two = result["two_runs"]
        lines.append(f"two real runs ({two['questions']} questions in both, `{two['other']}`): full vs full "
                     f"{shares(two['full_vs_full'])}; the rule vs the other run's full K "
                     f"{shares(two['adaptive_vs_another_full'])}")
    append_section("P1: the floor beside adaptive probing (bench/bench_adaptive.py --floor)", lines)


if __name__ == "__main__":
    main()

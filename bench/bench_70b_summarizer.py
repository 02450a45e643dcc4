"""A 70B-class summarizer on two GPUs: uncertainty.py with a Llama-3-70B-architecture summarizer
split by tensor parallelism, in process and behind `vllm serve` (the paper's setup).

No 70B checkpoint is needed: the summarizer folder holds Llama-3-70B's shape (80 layers, hidden
8192, 64 heads / 8 KV heads, MLP 28672) and a real tokenizer with its chat template (the teacher's
Qwen2.5 one, so the vocabulary is Qwen's 151,936 rows instead of Llama-3's 128,256: +0.4B
parameters, 0.6%), and vLLM fills it with random weights (``--summarizer-load-format dummy``).
Random weights measure the engine start, memory and speed of the plumbing, never the statements'
quality: they write noise until the token limit, so statements per second are at full length.

  python bench/bench_70b_summarizer.py --teacher TEACHER_DIR --out out/70b_summarizer           # both
  python bench/bench_70b_summarizer.py --teacher TEACHER_DIR --modes inprocess --out ...
  python bench/bench_70b_summarizer.py merge out/70b_summarizer/summarizer.json   # llama70b_* keys here
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench_common import env_for, log, merge_report, read_manifest, run_at_once, tail, wait_for_servers

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
LLAMA3_70B = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8192,
              "intermediate_size": 28672, "num_hidden_layers": 80, "num_attention_heads": 64,
              "num_key_value_heads": 8, "max_position_embeddings": 8192, "rope_theta": 500000.0,
              "rms_norm_eps": 1e-5, "hidden_act": "silu", "tie_word_embeddings": False, "torch_dtype": "bfloat16",
              "attention_bias": False, "mlp_bias": False, "initializer_range": 0.02}
# vLLM's custom all-reduce failed during CUDA-graph capture at TP=2 on the 2 x H200 machine ("custom_all_reduce.cuh:455
# invalid argument", in process and served alike); NCCL's all-reduce works (bench/RESULTS.md, run 6).
NO_CUSTOM_ALL_REDUCE = ["--disable-custom-all-reduce"]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json",
                   "chat_template.jinja", "generation_config.json")


def make_folder(tokenizer_dir: Path, out: Path, layers: int | None = None) -> Path:
    """Llama-3-70B's config with the given tokenizer (and its vocabulary size), no weights."""
    out.mkdir(parents=True, exist_ok=True)
    tok_config = json.loads((tokenizer_dir / "config.json").read_text())
    config = {**LLAMA3_70B, "vocab_size": tok_config["vocab_size"],
              "bos_token_id": tok_config.get("bos_token_id"), "eos_token_id": tok_config.get("eos_token_id")}
    if layers:
        config["num_hidden_layers"] = layers
    (out / "config.json").write_text(json.dumps(config, indent=2))
    for name in TOKENIZER_FILES:
        if (tokenizer_dir / name).is_file():
            shutil.copy(tokenizer_dir / name, out / name)
    return out


def measures(output: Path, code: int, wall: float, max_tokens: int) -> dict:
    m = read_manifest(output)
    counts, timings = m.get("counts", {}), m.get("timings", {})
    statements = counts.get("uncertain", 0) - counts.get("statements_na", 0)
    summarizing = timings.get("summarizing_s") or 0
    result = {"exit": code, "wall_s": wall, "counts": counts, "timings": timings, "statements": statements}
    if code == 0 and statements and summarizing:
        result["statements_per_s"] = round(statements / summarizing, 2)
        # Random weights rarely stop early: each statement is about max_tokens long (an upper bound).
        result["tokens_per_s_at_full_length"] = round(statements * max_tokens / summarizing, 1)
    if code != 0:
        result["error"] = tail(output.with_suffix(".log"))
    return result


def probe_command(args: argparse.Namespace, output: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "uncertainty.py", "--data", args.data, "--limit", str(args.limit), "--teacher",
            args.teacher, "--k", str(args.k), "--max-new-tokens", str(args.max_new_tokens),
            "--summarizer-max-new-tokens", str(args.summarizer_max_new_tokens), "--kv-cache-gb", str(args.kv_cache_gb),
            "--output", str(output), "--overwrite", *extra]


def inprocess(args: argparse.Namespace, folder: Path, work: Path) -> dict:
    output = work / "inprocess.jsonl"
    tp = args.tensor_parallel_size
    # At TP=1 the bf16 70B weights (132 GiB) leave a few GiB of an H200: --kv-cache-gb, --max-model-len and
    # --enforce-eager (no CUDA-graph pool) decide whether the engine fits.
    extra = ["--backend", "vllm", "--summarizer", str(folder), "--summarizer-load-format", "dummy",
             "--tensor-parallel-size", str(tp), *(NO_CUSTOM_ALL_REDUCE if tp > 1 else []),
             *(["--enforce-eager"] if args.enforce_eager else []),
             *(["--max-model-len", str(args.max_model_len)] if args.max_model_len else [])]
    command = probe_command(args, output, extra)
    wall, (code,) = run_at_once([(command, env_for(",".join(map(str, range(tp)))), output.with_suffix(".log"))],
                                args.timeout)
    return {**measures(output, code, wall, args.summarizer_max_new_tokens), "command": " ".join(command)}


def served(args: argparse.Namespace, folder: Path, work: Path) -> dict:
    port = 8300
    url = f"http://127.0.0.1:{port}/v1"
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder), "--host",
               "127.0.0.1", "--port", str(port), "--tensor-parallel-size", "2", "--load-format", "dummy",
               "--gpu-memory-utilization", str(args.server_memory), "--max-model-len", "4096", *NO_CUSTOM_ALL_REDUCE]
    log(" ".join(command))
    server_log = work / "server.log"
    started = time.time()
    server = subprocess.Popen(command, cwd=REPO, env=env_for("0,1"), stdout=server_log.open("w"),
                              stderr=subprocess.STDOUT)
    try:
        ready = wait_for_servers([url], [server], args.timeout)
        start_s = round(time.time() - started, 1)
        if not ready:
            return {"error": "server did not start: " + tail(server_log), "waited_s": start_s}
        log(f"server ready in {start_s} s")
        output = work / "served.jsonl"
        # The teacher on one GPU in process, next to the server's share of it.
        probe = probe_command(args, output, ["--backend", "vllm", "--summarizer", str(folder),
                                             "--summarizer-base-url", url, "--concurrency", str(args.concurrency)])
        wall, (code,) = run_at_once([(probe, env_for("0"), output.with_suffix(".log"))], args.timeout)
        return {**measures(output, code, wall, args.summarizer_max_new_tokens), "engine_start_s": start_s,
                "server_command": " ".join(command), "command": " ".join(probe)}
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()


def keys(report: dict) -> dict:
    out = {}
    for mode, r in report["results"].items():
        if r.get("statements_per_s"):
            tp = report["meta"].get("tensor_parallel_size", 2)
            name = f"llama70b_summarizer_{mode}" + (f"_tp{tp}" if mode == "inprocess" and tp != 2 else "")
            out[name] = {k: r.get(k) for k in (
                "statements_per_s", "tokens_per_s_at_full_length", "statements", "wall_s", "engine_start_s", "timings")}
    report["keys"] = out
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("phase", nargs="?", default="run", choices=["run", "merge", "folder"])
    p.add_argument("files", nargs="*")
    p.add_argument("--teacher", help="the probed model folder (its tokenizer also serves the summarizer)")
    p.add_argument("--data", default="gsm_symbolic")
    p.add_argument("--limit", type=int, default=400)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--summarizer-max-new-tokens", type=int, default=256)
    p.add_argument("--kv-cache-gb", type=float, default=10, help="per engine, per GPU")
    p.add_argument("--server-memory", type=float, default=0.8, help="the server's --gpu-memory-utilization")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--layers", type=int, default=None, help="fewer layers (a smoke test)")
    p.add_argument("--modes", default="inprocess,served")
    p.add_argument("--tensor-parallel-size", type=int, default=2, help="GPUs of the in-process engines")
    p.add_argument("--enforce-eager", action="store_true", help="in process: no CUDA graphs (less memory)")
    p.add_argument("--max-model-len", type=int, default=None, help="in process: the engines' context length")
    p.add_argument("--timeout", type=float, default=480)
    p.add_argument("--out", default="out/70b_summarizer")
    args = p.parse_args()
    if args.phase == "merge":
        merge_report(args.files[0], keys)
        return
    if not args.teacher:
        p.error("give --teacher")
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    folder = make_folder(Path(args.teacher), work / "llama3-70b-arch", args.layers)
    if args.phase == "folder":
        print(folder)
        return
    report: dict = {"meta": {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "command": "python " + " ".join(sys.argv),
                             "summarizer": "Llama-3-70B architecture, random weights (vLLM dummy load), "
                                           "Qwen2.5 tokenizer", "teacher": args.teacher, "k": args.k,
                             "limit": args.limit, "tensor_parallel_size": args.tensor_parallel_size,
                             "kv_cache_gb": args.kv_cache_gb, "enforce_eager": args.enforce_eager},
                             "results": {}}
    for mode in args.modes.split(","):
        report["results"][mode] = (inprocess if mode == "inprocess" else served)(args, folder, work)
        log(mode, json.dumps(report["results"][mode])[:600])
        keys(report)
        (work / "summarizer.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report.get("keys"), indent=2))


if __name__ == "__main__":
    main()

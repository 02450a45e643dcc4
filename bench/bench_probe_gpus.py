"""Probing on one GPU and on two: which vLLM model runner, and which way of spreading the pool.

Every variant runs uncertainty.py (the teacher probed K times per question, its own backend as
summarizer) on the same questions and reports the wall time (engine starts included), the
probing time the script measures itself (engine already up), and samples per second.

- ``v1`` / ``v2``: one GPU, vLLM's V1 or V2 model runner (``VLLM_USE_V2_MODEL_RUNNER``); the
  probing requests are seeded per question, which V1 samples sequence by sequence;
- ``parts2``: the pool in two parts (``--pool-part 1/2`` and ``2/2``), one process per GPU, at once;
- ``serve_dp2``: one ``vllm serve --data-parallel-size 2`` endpoint, uncertainty.py over the
  OpenAI backend;
- ``serve2``: two ``vllm serve`` endpoints, one per GPU, sharing the questions (comma-separated
  ``--base-url``);
- ``one<N>_eager`` / ``one<N>_graphs``: the pool in N parts probed by N engines at once on GPU 0 (one
  engine is host-bound: its step time grows with the running sequences while the card idles), each
  with 1/N of ``--card-kv-gb`` as KV cache, with ``--enforce-eager`` or with CUDA graphs; a ``_v1`` /
  ``_v2`` suffix (``one4_graphs_v2``) gives each engine that vLLM model runner (``--vllm-runner``).

  python bench/bench_probe_gpus.py --teacher MODEL_DIR --variants v1,v2,parts2,serve_dp2 --out out/probe
  python bench/bench_probe_gpus.py merge out/probe/probe.json      # adds the multigpu_probe_* keys here
  python bench/bench_probe_gpus.py --teacher MODEL_DIR --k 100 --variants one1_graphs,one4_eager,one4_graphs,one8_graphs
  python bench/bench_probe_gpus.py --teacher MODEL_DIR --k 100 --limit 50 --variants one4_graphs_v1,one4_graphs_v2

Scaling = samples/s of the two-GPU variant over the best one-GPU variant.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from bench_common import env_for, log, merge_report, read_manifest, run_at_once, wait_for_servers

BENCH = Path(__file__).resolve().parent
# one<N>_<eager|graphs>[_<v1|v2>]: N engines on GPU 0; the suffix passes uncertainty.py --vllm-runner
ONE_GPU = re.compile(r"one(\d+)_(eager|graphs)(?:_(v1|v2))?")
REPO = BENCH.parent


def probe_command(args: argparse.Namespace, output: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "uncertainty.py", "--data", args.data, "--limit", str(args.limit), "--teacher",
            args.teacher, "--k", str(args.k), "--max-new-tokens", str(args.max_new_tokens), "--output", str(output),
            "--overwrite", *extra]


def summary(outputs: list[Path], wall: float, codes: list[int]) -> dict:
    manifests = [read_manifest(o) for o in outputs]
    samples = sum(m.get("counts", {}).get("samples", 0) for m in manifests)
    probing = [m.get("timings", {}).get("probing_s") or 0 for m in manifests]
    tokens = sum(m.get("timings", {}).get("probing_tokens", 0) for m in manifests)
    result = {"exit": codes, "wall_s": wall, "samples": samples, "questions":
              sum(m.get("counts", {}).get("questions", 0) for m in manifests), "probing_s": probing,
              "probing_tokens": tokens}
    if samples and max(probing) > 0 and not any(codes):
        # Parts run at once: the slowest part's probing time is the variant's.
        result["samples_per_s"] = round(samples / max(probing), 1)
        result["samples_per_s_wall"] = round(samples / wall, 1)
        if tokens:
            result["tokens_per_s"] = round(tokens / max(probing), 1)
    else:
        tails = [o.with_suffix(".log").read_text(errors="replace").strip().splitlines()[-3:]
                 for o in outputs if o.with_suffix(".log").is_file()]
        result["error"] = " | ".join(line for t in tails for line in t)[-600:]
    return result


def serve_variant(args: argparse.Namespace, name: str, work: Path) -> dict:
    """vllm serve endpoints (one with data parallelism over both GPUs, or one per GPU) and
    uncertainty.py over the OpenAI backend."""
    layouts = {"serve_dp2": [("0,1", ["--data-parallel-size", "2"])], "serve2": [("0", []), ("1", [])]}
    servers, urls = [], []
    started = time.time()
    for i, (gpus, extra) in enumerate(layouts[name]):
        port = 8200 + i
        command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", args.teacher, "--host",
                   "127.0.0.1", "--port", str(port), "--seed", "0", "--max-model-len", "4096", *extra]
        log(" ".join(command), f"(GPUs {gpus})")
        servers.append(subprocess.Popen(command, cwd=REPO, env=env_for(gpus),
                                        stdout=(work / f"{name}-server{i}.log").open("w"), stderr=subprocess.STDOUT))
        urls.append(f"http://127.0.0.1:{port}/v1")
    try:
        if not wait_for_servers(urls, servers, args.timeout):
            return {"error": "server did not start: " + " | ".join(
                (work / f"{name}-server{i}.log").read_text(errors="replace").strip().splitlines()[-2:][0]
                for i in range(len(servers)))}
        start_s = round(time.time() - started, 1)
        output = work / f"{name}.jsonl"
        command = probe_command(args, output, ["--backend", "openai", "--base-url", ",".join(urls),
                                               "--concurrency", str(args.concurrency)])
        wall, codes = run_at_once([(command, env_for(""), output.with_suffix(".log"))], args.timeout)
        return {**summary([output], wall, codes), "server_start_s": start_s}
    finally:
        for proc in servers:
            proc.terminate()
        for proc in servers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def measure(args: argparse.Namespace) -> dict:
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    report: dict = {"meta": {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "command": "python " + " ".join(sys.argv),
                             "teacher": args.teacher, "data": args.data, "limit": args.limit, "k": args.k,
                             "max_new_tokens": args.max_new_tokens}, "results": {}}
    try:
        import torch

        report["meta"]["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no CUDA here
        report["meta"]["devices"] = []
    for name in args.variants.split(","):
        log(f"--- {name}")
        if name in ("v1", "v2"):
            output = work / f"{name}.jsonl"
            env = env_for("0", VLLM_USE_V2_MODEL_RUNNER="1" if name == "v2" else "0")
            wall, codes = run_at_once([(probe_command(args, output, args.gen_args.split()), env,
                                    output.with_suffix(".log"))], args.timeout)
            result = summary([output], wall, codes)
        elif name == "parts2":
            outputs = [work / f"parts2-p{i}.jsonl" for i in (1, 2)]
            measured = {n: r["samples_per_s"] for n, r in report["results"].items()
                        if n in ("v1", "v2") and r.get("samples_per_s")}
            choice = args.runner or ({"v1": "0", "v2": "1"}[max(measured, key=measured.get)] if measured else None)
            runner = {"VLLM_USE_V2_MODEL_RUNNER": choice} if choice else {}
            report["meta"]["parts2_runner"] = choice
            wall, codes = run_at_once([(probe_command(args, o, [*args.gen_args.split(), "--pool-part", f"{i}/2"]),
                                    env_for(str(i - 1), **runner), o.with_suffix(".log"))
                                   for i, o in enumerate(outputs, start=1)], args.timeout)
            result = summary(outputs, wall, codes)
        elif name in ("serve_dp2", "serve2"):
            result = serve_variant(args, name, work)
        elif one_gpu := ONE_GPU.fullmatch(name):
            count, graphs, runner = one_gpu.groups()
            parts = int(count)
            mode = [] if graphs == "graphs" else ["--enforce-eager"]
            outputs = [work / f"{name}-p{i}.jsonl" for i in range(1, parts + 1)]
            per_engine = ["--backend", "vllm", "--kv-cache-gb", f"{args.card_kv_gb / parts:g}", *mode,
                          *(["--vllm-runner", runner] if runner else [])]
            wall, codes = run_at_once([(probe_command(args, o, [*per_engine, "--pool-part", f"{i}/{parts}"]),
                                        env_for("0"), o.with_suffix(".log"))
                                       for i, o in enumerate(outputs, start=1)], args.timeout)
            result = {**summary(outputs, wall, codes), "engines": parts, "cuda_graphs": not mode,
                      "runner": runner or "auto"}
        else:
            raise SystemExit(f"unknown variant {name}")
        report["results"][name] = result
        log(name, json.dumps(result))
        keys(report)
        (work / "probe.json").write_text(json.dumps(report, indent=2))
    return report


def keys(report: dict) -> dict:
    results = {n: r for n, r in report["results"].items() if r.get("samples_per_s")}
    out = {}
    if "v1" in results and "v2" in results:
        out["P1_runner_v2_over_v1"] = {"value": round(results["v2"]["samples_per_s"] / results["v1"]["samples_per_s"],
                                                      3), "v1": results["v1"], "v2": results["v2"]}
    single = [results[n]["samples_per_s"] for n in ("v1", "v2") if n in results]
    if single:
        for name in ("parts2", "serve_dp2", "serve2"):
            if name in results:
                out[f"multigpu_probe_{name}"] = {**results[name],
                                                 "scaling": round(results[name]["samples_per_s"] / max(single), 3)}
    one_gpu = {n: r for n, r in results.items() if n.startswith("one") and r.get("tokens_per_s")}
    if one_gpu:
        best = max(one_gpu, key=lambda n: one_gpu[n]["tokens_per_s"])
        out["P1_probe_tokens_per_s"] = {"value": one_gpu[best]["tokens_per_s"], "goal": 60000,
                                        "meets_goal": one_gpu[best]["tokens_per_s"] >= 60000, "best_variant": best,
                                        "all": {n: r["tokens_per_s"] for n, r in one_gpu.items()},
                                        "k": report["meta"]["k"], "teacher": report["meta"]["teacher"]}
    report["keys"] = out
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("phase", nargs="?", default="run", choices=["run", "merge"])
    p.add_argument("files", nargs="*")
    p.add_argument("--teacher", help="the probed model (folder or hub id)")
    p.add_argument("--data", default="gsm_symbolic")
    p.add_argument("--limit", type=int, default=600, help="questions of the data set (the pool is part of them)")
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--variants", default="v1,v2,parts2,serve_dp2")
    p.add_argument("--runner", default=None, help="VLLM_USE_V2_MODEL_RUNNER for parts2 (default: the faster of v1/v2 measured before it)")
    p.add_argument("--gen-args", default="--backend vllm --kv-cache-gb 24")
    p.add_argument("--concurrency", type=int, default=64, help="requests in flight per server (serve variants)")
    p.add_argument("--card-kv-gb", type=float, default=64, help="KV cache shared by the one<N>_* variants' engines")
    p.add_argument("--timeout", type=float, default=420)
    p.add_argument("--out", default="out/probe")
    args = p.parse_args()
    if args.phase == "merge":
        merge_report(args.files[0], keys)
        return
    if not args.teacher:
        p.error("give --teacher")
    print(json.dumps(measure(args).get("keys", {}), indent=2))


if __name__ == "__main__":
    main()

"""What a vLLM engine start costs, eager against CUDA graphs, and when graphs pay back (GPU machine).

Each run is a fresh Python process, as a stage script is: import vLLM, build the engine with the
project's settings (``max_num_seqs`` 512, a fixed KV cache), run one workload, shut down. The run
reports the phases from vLLM's own log lines (weights loaded, torch.compile, graph capture, engine
init) beside the wall times, and the workload's generated tokens per second. ``graphs`` starts with
an empty compile cache (a new machine, or a model never compiled there), ``graphs_warm`` with the
cache the ``graphs`` run just filled (every later start of that model).

    python bench/bench_engine_start.py --model 0.5B=MODEL_DIR --model 1.5B=dummy:MODEL_DIR --out start.json

``dummy:`` loads random weights of the folder's architecture (config and tokenizer only; timings of
generation with ``ignore_eos`` do not depend on the weights). Workloads: ``short`` (256 prompts, one
sample of 256 tokens: a summarizing or zero-shot step), ``probe`` (32 prompts, 100 samples of 128
tokens: the teacher's probing).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKLOADS = {"short": (256, 1, 256), "probe": (32, 100, 128)}  # prompts, samples per prompt, tokens per sample
PHASES = {  # vLLM 0.24's log lines -> seconds
    "weights_s": r"Loading weights took ([\d.]+) seconds",
    "model_load_s": r"Model loading took [\d.]+ GiB (?:memory )?and ([\d.]+) seconds",
    "compile_s": r"torch\.compile takes ([\d.]+) s in total",
    "graph_capture_s": r"Graph capturing finished in ([\d.]+) secs",
    "engine_init_s": r"init engine \(profile, create kv cache, warmup model\) took ([\d.]+) seconds",
}


def child(model: str, mode: str, workload: str, kv_cache_gb: float) -> None:
    """One start, one workload; prints a JSON line with the wall times."""
    t0 = time.time()
    from vllm import LLM, SamplingParams

    t_import = time.time() - t0
    dummy = model.startswith("dummy:")
    t1 = time.time()
    llm = LLM(model=model.removeprefix("dummy:"), load_format="dummy" if dummy else "auto", seed=0,
              max_num_seqs=512, kv_cache_memory_bytes=int(kv_cache_gb * 2**30), gpu_memory_utilization=0.05,
              enforce_eager=mode == "eager")
    t_engine = time.time() - t1
    prompts, n, tokens = WORKLOADS[workload]
    questions = [f"Question {i}: a shop sells {i + 3} apples for {2 * i + 5} dollars. How much is one apple?"
                 for i in range(prompts)]
    params = SamplingParams(n=n, temperature=0.9, top_p=0.95, max_tokens=tokens, ignore_eos=True, seed=0)
    t2 = time.time()
    outputs = llm.generate(questions, params, use_tqdm=False)
    t_gen = time.time() - t2
    generated = sum(len(c.token_ids) for o in outputs for c in o.outputs)
    print("RESULT " + json.dumps({"import_s": round(t_import, 1), "engine_s": round(t_engine, 1),
                                  "generate_s": round(t_gen, 2), "tokens": generated,
                                  "tokens_per_s": round(generated / t_gen), "total_s": round(time.time() - t0, 1)}),
          flush=True)
    llm.llm_engine.engine_core.shutdown()
    os._exit(0)


def run(model: str, mode: str, workload: str, kv_cache_gb: float, cache_root: Path, timeout: float) -> dict:
    env = {**os.environ, "VLLM_CACHE_ROOT": str(cache_root)}
    started = time.time()
    try:
        done = subprocess.run([sys.executable, __file__, "--child", model, mode, workload, str(kv_cache_gb)],
                              check=False, env=env, capture_output=True, text=True, timeout=timeout)
        text, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as err:
        text, code = (err.stdout or b"").decode() + (err.stderr or b"").decode(), "timeout"
    result: dict = {"wall_s": round(time.time() - started, 1), "exit": code}
    for line in text.splitlines():
        if line.startswith("RESULT "):
            result.update(json.loads(line[7:]))
    for key, pattern in PHASES.items():
        found = re.findall(pattern, text)
        if found:
            result[key] = round(sum(float(f) for f in found), 1)
    if "tokens" not in result:
        result["error"] = text[-1500:]
    return result


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        model, mode, workload, kv = sys.argv[2:6]
        child(model, mode, workload, float(kv))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, metavar="LABEL=DIR", help="dummy:DIR for random weights")
    p.add_argument("--modes", default="eager,graphs,graphs_warm")
    p.add_argument("--workloads", default="short,probe")
    p.add_argument("--kv-cache-gb", type=float, default=16)
    p.add_argument("--timeout", type=float, default=400)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    report: dict = {"card": subprocess.run(["nvidia-smi", "-L"], check=False, capture_output=True, text=True).stdout.strip(),
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "workloads": WORKLOADS, "runs": {}}
    for entry in args.model:
        label, model = entry.split("=", 1)
        cache = Path(tempfile.mkdtemp(prefix=f"vllm-cache-{label}-"))
        for workload in args.workloads.split(","):
            for mode in args.modes.split(","):
                # graphs: a new empty cache each workload; graphs_warm reuses the one graphs just filled
                root = cache / workload if mode != "eager" else Path(tempfile.mkdtemp(prefix="vllm-eager-"))
                result = run(model, mode.removesuffix("_warm"), workload, args.kv_cache_gb, root, args.timeout)
                report["runs"][f"{label} {workload} {mode}"] = result
                print(label, workload, mode, json.dumps(result)[:400], flush=True)
                Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

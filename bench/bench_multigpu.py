"""Several GPUs: train.py under `accelerate launch` with the project's DDP, FSDP and
DeepSpeed ZeRO-3 configs against one GPU, and uncertainty.py on vLLM with tensor parallelism.

train: a random-weight Qwen2.5-1.5B-shaped model (bench_train.py builds it) trained for a fixed
number of steps, full fine-tuning and LoRA, same rows and same effective batch (16 = per-device 4
x accumulation x GPUs) on 1 GPU and on N GPUs. For every multi-GPU run it checks that

- the loss per step matches the 1-GPU run (the same 16 rows make each optimizer step);
- one process saved: one set of weight files, one manifest marked complete with world size N,
  and the "N steps, loss" line printed once;
- the saved model or adapter reloads (from_pretrained / PeftModel) and its weight update agrees
  with the 1-GPU run's: |W_N - W_1| / |W_1 - W_0| over all trained tensors;

and records the steady tokens/s and the scaling ratio against 1 GPU.

tp: a tiny Qwen2 model is taught the answer format by train.py (ARC ground truth, answers only, so
its K samples disagree and the summarizer has work), then uncertainty.py runs with
--tensor-parallel-size 1 and N, teacher and summarizer as separate models; the outputs must have
the same ids, fields and statuses' form.

  python bench/bench_multigpu.py train --gpus 2 --out out/multigpu_train.json     # GPU machine
  python bench/bench_multigpu.py tp --gpus 2 --out out/multigpu_tp.json            # GPU machine
  python bench/bench_multigpu.py merge multigpu_train.json multigpu_tp.json         # here

Keys written to bench/results.json start with multigpu_.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

import bench_train

STRATEGIES = {"1gpu": "single_gpu.yaml", "ddp": "ddp.yaml", "fsdp": "fsdp.yaml", "zero3": "deepspeed_zero3.yaml"}
TINY_TEACHER = {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
                "intermediate_size": 688, "max_position_embeddings": 4096, "rope_theta": 10000.0,
                "rms_norm_eps": 1e-6, "tie_word_embeddings": True, "hidden_act": "silu"}


def log(*parts: object) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def run(command: list[str], env: dict, log_file: Path, timeout: float) -> tuple[int, str]:
    log(" ".join(command))
    started = time.time()
    try:
        done = subprocess.run(command, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        code, text = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as err:
        code, text = 124, f"{err.stdout or ''}{err.stderr or ''}\ntimed out after {timeout:.0f} s"
    log_file.write_text(text if isinstance(text, str) else text.decode(errors="replace"))
    log(f"  exit {code} in {time.time() - started:.0f} s (log {log_file})")
    return code, text if isinstance(text, str) else text.decode(errors="replace")


def gpu_env(gpus: int) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(gpus))
    env.setdefault("NCCL_NVLS_ENABLE", "0")  # no NVLink multicast (device README)
    return env


# ----------------------------------------------------------------------------- training


def train_command(strategy: str, gpus: int, model_dir: Path, data: Path, out: Path, args, lora: bool) -> list[str]:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(REPO / "configs" / "accelerate" / STRATEGIES[strategy]), "--num_processes", str(gpus),
               "--main_process_port", str(29500 + sum(map(ord, out.name)) % 1000), str(REPO / "train.py"),
               "--data", "arc_challenge", "--model", str(model_dir), "--train-file", str(data),
               "--output-dir", str(out), "--max-steps", str(args.steps), "--logging-steps", "1",
               "--save-steps", str(10 ** 6), "--warmup-steps", "0", "--lr", str(args.lr), "--max-length", "1024",
               "--total-batch-size", "16", "--per-device-batch-size", str(args.per_device_batch_size), "--overwrite"]
    if lora:
        command.append("--lora")
    return command


def weights(folder: Path) -> dict:
    """The saved tensors (adapter or full model) as fp32 on the CPU."""
    import torch
    from safetensors.torch import load_file

    files = sorted(folder.glob("adapter_model.safetensors")) or sorted(folder.glob("model*.safetensors"))
    out = {}
    for f in files:
        out.update({k: v.to(torch.float32) for k, v in load_file(str(f)).items()})
    return out


def reload_check(folder: Path, model_dir: Path, lora: bool) -> dict:
    """Loads the saved folder the way eval.py's transformers backend does and runs one forward pass."""
    import torch
    from transformers import AutoModelForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if lora:
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.bfloat16).to(device)
        model = PeftModel.from_pretrained(base, str(folder))
    else:
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.bfloat16).to(device)
    ids = torch.arange(1, 65, device=device)[None]
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    finite = bool(torch.isfinite(logits).all())
    del model
    return {"reloaded": True, "finite_logits": finite}


def update_agreement(single: dict, multi: dict, initial: dict | None) -> float | None:
    """|W_N - W_1| / |W_1 - W_0| over the tensors both saved (LoRA: W_0 = 0 for B, the init for A
    is not saved, so adapters compare |A_N - A_1| + |B_N - B_1| against |B_1|)."""
    import torch

    num, den = 0.0, 0.0
    for name, w1 in single.items():
        if name not in multi or multi[name].shape != w1.shape:
            continue
        wn = multi[name]
        num += float(torch.sum((wn - w1) ** 2))
        if initial is not None and name in initial:
            den += float(torch.sum((w1 - initial[name]) ** 2))
        elif initial is None and "lora_B" in name:
            den += float(torch.sum(w1 ** 2))
    return round((num / den) ** 0.5, 4) if den > 0 else None


def read_manifest(output: Path) -> dict:
    """The manifest of a training folder or of a JSONL output (empty if the run wrote none)."""
    from alice.records import manifest_path

    path = manifest_path(output)
    return json.loads(path.read_text()) if path.exists() else {}


def step_losses(manifest: dict) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in manifest.get("log_history", []) if "loss" in e}


def train_phase(args) -> dict:
    import torch

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    inputs = argparse.Namespace(tiny=args.tiny, rows=args.rows, seed=0, tokenizer=args.tokenizer)
    model_dir, data = bench_train.build_inputs(work, inputs)
    initial = weights(model_dir)
    strategies = [s for s in args.strategies.split(",") if s]
    results: dict = {}
    for kind in ("full", "lora"):
        if kind not in args.kinds.split(","):
            continue
        single_weights = None
        for strategy in ["1gpu"] + [s for s in strategies if s != "1gpu"]:
            gpus = 1 if strategy == "1gpu" else args.gpus
            name = f"{strategy}_{kind}"
            out = work / "runs" / name
            code, text = run(train_command(strategy, gpus, model_dir, data, out, args, kind == "lora"),
                             gpu_env(gpus), work / f"{name}.log", args.timeout)
            manifest = read_manifest(out)
            r: dict = {"strategy": strategy, "gpus": gpus, "exit": code}
            if code != 0 or manifest.get("status") != "complete":
                tail = [line for line in text.strip().splitlines() if line.strip()][-4:]
                r["error"] = " | ".join(tail)[-600:]
                results[name] = r
                log(f"{name}: FAILED {r['error'][-300:]}")
                continue
            training = manifest["training"]
            saved_files = sorted(p.name for p in out.iterdir() if p.suffix == ".safetensors")
            r.update({
                "tokens_per_s": training["steady_tokens_per_s"] or training["tokens_per_s"],
                "steps": training["steps"], "world_size": manifest["recipe"]["world_size"],
                "accumulation": manifest["recipe"]["gradient_accumulation_steps"],
                "final_loss": training["final_loss"], "losses": step_losses(manifest),
                "peak_memory_gb_rank0": training["peak_gpu_memory_gb"],
                "saved_files": saved_files, "done_lines": text.count(f"{out}: {training['steps']} steps, loss"),
            })
            saved = weights(out)
            r["saved_tensors"] = len(saved)
            if strategy == "1gpu":
                single_weights = saved
            else:
                base = results.get(f"1gpu_{kind}", {})
                if base.get("losses"):
                    diffs = [abs(r["losses"][s] - base["losses"][s]) / max(abs(base["losses"][s]), 1e-9)
                             for s in base["losses"] if s in r["losses"]]
                    r["loss_max_rel_diff_vs_1gpu"] = round(max(diffs), 5) if diffs else None
                if single_weights is not None:
                    r["update_rel_diff_vs_1gpu"] = update_agreement(single_weights, saved,
                                                                    None if kind == "lora" else initial)
                if base.get("tokens_per_s"):
                    r["scaling_vs_1gpu"] = round(r["tokens_per_s"] / base["tokens_per_s"], 3)
                r["one_saver"] = (r["done_lines"] == 1 and r["world_size"] == gpus and len(saved_files) >= 1)
            try:
                r.update(reload_check(out, model_dir, kind == "lora"))
            except Exception as err:  # noqa: BLE001 - recorded as the check's result
                r.update(reloaded=False, reload_error=str(err).splitlines()[0][:300])
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            results[name] = r
            log(f"{name}: {json.dumps({k: v for k, v in r.items() if k != 'losses'})}")
    return {"meta": meta(args, "train"), "results": results}


# ----------------------------------------------------------------------------- tensor parallelism


def build_tp_models(work: Path, args) -> tuple[Path, Path]:
    """A tiny Qwen2 base (BPE tokenizer trained on the bench text) and the same model taught to
    answer 'My choice is X.' by train.py on ARC's teacher-pool ground truth."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config

    base = work / "tp-base"
    if not (base / "config.json").exists():
        tmp = work / "tp-base.tmp"
        rows = bench_train.synthetic_rows(512, 0, tiny=True)
        bench_train.train_tokenizer(tmp, rows, vocab=4000)
        tokenizer = AutoTokenizer.from_pretrained(str(tmp))
        config = Qwen2Config(**TINY_TEACHER, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                             eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        torch.manual_seed(0)
        AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).save_pretrained(str(tmp))
        tmp.rename(base)
    teacher = work / "tp-teacher"
    command = [sys.executable, str(REPO / "train.py"), "--data", "arc_challenge", "--model", str(base),
               "--ground-truth", "--no-rationale", "--pool", "teacher", "--output-dir", str(teacher),
               "--max-steps", str(args.teacher_steps), "--lr", "1e-3", "--warmup-steps", "10",
               "--total-batch-size", "32", "--per-device-batch-size", "32", "--no-gradient-checkpointing",
               "--logging-steps", "10", "--save-steps", str(10 ** 6)]
    code, text = run(command, gpu_env(1), work / "tp-teacher.log", args.timeout)
    if code != 0:
        raise SystemExit(f"teaching the tiny teacher failed: {text.strip().splitlines()[-1]}")
    return base, teacher


def uncertainty_form(path: Path) -> dict:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {"ids": [r["id"] for r in rows], "fields": sorted({k for r in rows for k in r}),
            "status": {s: sum(r["status"] == s for r in rows) for s in ("certain", "uncertain", "no_answer")},
            "statements": sum(bool(r.get("statement")) for r in rows if r["status"] == "uncertain"),
            "rows": rows}


def tp_phase(args) -> dict:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    base, teacher = build_tp_models(work, args)
    results: dict = {}
    rows_by_tp: dict[int, list[dict]] = {}
    for tp in (1, args.gpus):
        out = work / f"uncertainty-tp{tp}.jsonl"
        command = [sys.executable, str(REPO / "uncertainty.py"), "--data", "arc_challenge",
                   "--teacher", str(teacher), "--summarizer", str(base), "--backend", "vllm",
                   "--k", str(args.k), "--limit", str(args.limit), "--max-new-tokens", "24",
                   "--summarizer-max-new-tokens", "32", "--tensor-parallel-size", str(tp),
                   "--max-model-len", "2048", "--output", str(out), "--overwrite"]
        if args.eager:
            command.append("--enforce-eager")
        started = time.time()
        code, text = run(command, gpu_env(tp), work / f"uncertainty-tp{tp}.log", args.timeout)
        r: dict = {"tensor_parallel_size": tp, "exit": code, "wall_s": round(time.time() - started, 1)}
        if code != 0 or not out.exists():
            r["error"] = " | ".join(text.strip().splitlines()[-4:])[-600:]
            results[f"tp{tp}"] = r
            log(f"tp{tp}: FAILED {r['error'][-300:]}")
            continue
        manifest = read_manifest(out)
        form = uncertainty_form(out)
        r.update({k: v for k, v in form.items() if k != "rows"},
                 backend=manifest.get("backend"), summarizer_backend=manifest.get("summarizer_backend"),
                 counts=manifest.get("counts"), timings=manifest.get("timings"))
        results[f"tp{tp}"] = r
        rows_by_tp[tp] = form["rows"]
        log(f"tp{tp}: {json.dumps({k: v for k, v in r.items() if k != 'ids'})}")
    one, many = results.get("tp1", {}), results.get(f"tp{args.gpus}", {})
    if "ids" in one and "ids" in many:
        same_answer = sum(a.get("teacher_answer") == b.get("teacher_answer") and a["status"] == b["status"]
                          for a, b in zip(rows_by_tp[1], rows_by_tp[args.gpus], strict=False))
        results["same_form"] = one["ids"] == many["ids"] and one["fields"] == many["fields"]
        results["same_status_and_answer"] = round(same_answer / max(len(one["ids"]), 1), 3)
    return {"meta": meta(args, "tp"), "results": results}


# ----------------------------------------------------------------------------- report


def meta(args, phase: str) -> dict:
    import torch

    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] \
        if torch.cuda.is_available() else ["CPU"]
    return {"phase": phase, "devices": names, "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "torch": torch.__version__, "command": "python " + " ".join(sys.argv),
            "model": "Qwen2.5-1.5B config, random weights" if phase == "train" else
                     "tiny Qwen2 (hidden 256, 4 layers) taught the answer format by train.py"}


def merge(reports: list[dict]) -> dict:
    from alice.records import atomic_write_json

    keys: dict = {}
    lines: list[str] = []
    for report in reports:
        m, results = report["meta"], report["results"]
        head = f"\n## Several GPUs: {m['phase']} (bench/bench_multigpu.py)\n\n- date: {m['date']}\n" \
               f"- devices: {', '.join(m['devices'])}\n- command: `{m['command']}`\n- model: {m['model']}\n"
        lines.append(head)
        if m["phase"] == "train":
            lines.append("| run | GPUs | tokens/s | scaling vs 1 GPU | loss max rel. diff | update rel. diff | "
                         "one saver | reloads | peak GB (rank 0) |")
            lines.append("|---|---|---|---|---|---|---|---|---|")
            for name, r in results.items():
                if "error" in r:
                    lines.append(f"| {name} | {r['gpus']} | failed: {r['error'][-160:]} | | | | | | |")
                    keys[f"multigpu_{name}"] = {"error": r["error"], **m}
                    continue
                lines.append(f"| {name} | {r['gpus']} | {r['tokens_per_s']:.0f} | {r.get('scaling_vs_1gpu', '-')} | "
                             f"{r.get('loss_max_rel_diff_vs_1gpu', '-')} | {r.get('update_rel_diff_vs_1gpu', '-')} | "
                             f"{r.get('one_saver', '-')} | {r.get('reloaded')} | {r['peak_memory_gb_rank0']} |")
                keys[f"multigpu_{name}"] = {k: v for k, v in r.items() if k != "losses"} | {"meta": m}
                if "scaling_vs_1gpu" in r:
                    keys[f"multigpu_{name}_scaling"] = r["scaling_vs_1gpu"]
        else:
            for name, r in results.items():
                if isinstance(r, dict):
                    keys[f"multigpu_vllm_{name}"] = {**{k: v for k, v in r.items() if k != "ids"}, "meta": m}
                    shown = {k: r.get(k) for k in ("exit", "wall_s", "status", "statements", "backend",
                                                   "summarizer_backend", "error") if r.get(k) is not None}
                    lines.append(f"- {name}: {json.dumps(shown)}")
            for key in ("same_form", "same_status_and_answer"):
                if key in results:
                    keys[f"multigpu_vllm_{key}"] = results[key]
                    lines.append(f"- {key}: {results[key]}")
    path = BENCH / "results.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(keys)
    atomic_write_json(path, data)
    with open(BENCH / "RESULTS.md", "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return keys


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("phase", choices=["train", "tp", "merge"])
    p.add_argument("files", nargs="*", help="merge: report JSON files from the GPU machine")
    p.add_argument("--gpus", type=int, default=2)
    p.add_argument("--strategies", default="ddp,fsdp", help=f"from {', '.join(s for s in STRATEGIES if s != '1gpu')}")
    p.add_argument("--kinds", default="full,lora")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--lr", type=float, default=1e-4, help="large enough that bf16 weights show the updates")
    p.add_argument("--per-device-batch-size", type=int, default=4)
    p.add_argument("--rows", type=int, default=512)
    p.add_argument("--tokenizer", help="tokenizer folder for the 1.5B model (default: a BPE trained here)")
    p.add_argument("--tiny", action="store_true", help="tiny model (a CPU/1-GPU smoke test of the plumbing)")
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--limit", type=int, default=64)
    p.add_argument("--teacher-steps", type=int, default=150)
    p.add_argument("--eager", action="store_true", help="vLLM --enforce-eager (faster engine start)")
    p.add_argument("--timeout", type=float, default=400)
    p.add_argument("--work", default="/tmp/bench-multigpu")
    p.add_argument("--out", help="write the report JSON here")
    args = p.parse_args()
    if args.phase == "merge":
        print(json.dumps(merge([json.loads(Path(f).read_text()) for f in args.files]), indent=2))
        return
    report = train_phase(args) if args.phase == "train" else tp_phase(args)
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

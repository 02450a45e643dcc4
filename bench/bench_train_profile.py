"""Where a 1.5B full fine-tuning step goes: the fair test's row shape, timed phase by phase and profiled.

The training recipe's step (fp32 master weights, bf16 autocast, fused AdamW, gradient clipping at 1.0, as
train.py runs full fine-tuning) is split into forward with the loss, backward, clipping and the optimizer
step, each timed with CUDA events; then the same rows packed into one sequence with positions restarting
at each row (padding-free training's layout: transformers masks across rows), the same forward and backward
with bf16 weights and no optimizer (what the matmuls alone reach at this row length), and the recipe with
more rows per step. The recipe's step and the packed one are profiled: CUDA time per kind of kernel
(matmuls, attention, the loss, the optimizer, elementwise).

MFU = 6 x parameters x tokens per step / step time / peak (989e12, an H100/H200's dense bf16); attention
FLOPs and recomputation are not counted, as in P3_train_mfu.

  python bench/bench_train_profile.py --out out/profile.json            # Qwen2.5-1.5B config, random weights
  python bench/bench_train_profile.py --tiny --device cpu --steps 2     # the same code on a tiny model (a check)
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import torch

PEAK_FLOPS = 989e12
QWEN_15B = {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28, "num_attention_heads": 12,
            "num_key_value_heads": 2, "vocab_size": 151936, "max_position_embeddings": 4096,
            "tie_word_embeddings": True, "rms_norm_eps": 1e-6}
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "vocab_size": 1000, "max_position_embeddings": 1024, "tie_word_embeddings": True}


def build(args: argparse.Namespace, dtype: torch.dtype) -> torch.nn.Module:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(**(TINY if args.tiny else QWEN_15B), attn_implementation="sdpa")
    with torch.device(args.device):  # initialised where it trains (a 1.5B model's CPU init takes longer)
        model = Qwen2ForCausalLM(config)
    return model.to(dtype=dtype).train()


class Timer:
    """Phase times of one step: CUDA events on a GPU, wall clock on the CPU."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.marks: list[tuple[str, object]] = []

    def mark(self, name: str) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append((name, event))
        else:
            self.marks.append((name, time.perf_counter()))

    def phases(self) -> dict[str, float]:
        if self.cuda:
            torch.cuda.synchronize()
            return {b[0]: a[1].elapsed_time(b[1]) / 1e3 for a, b in zip(self.marks, self.marks[1:])}
        return {b[0]: b[1] - a[1] for a, b in zip(self.marks, self.marks[1:])}


def run_variant(args: argparse.Namespace, name: str, rows: int, recipe: bool, profile: bool = False,
                packed: bool = False) -> dict:
    model = build(args, torch.float32 if recipe else torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01,
                                  fused=args.device.startswith("cuda")) if recipe else None
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(1)
    batch = torch.randint(0, vocab, (rows, args.row_tokens), generator=generator).to(args.device)
    tokens = rows * args.row_tokens
    inputs = {"input_ids": batch, "labels": batch}
    if packed:  # the rows as one sequence, positions restarting at each row (padding-free training's layout)
        flat = batch.reshape(1, tokens)
        positions = torch.arange(args.row_tokens, device=args.device).repeat(rows).reshape(1, tokens)
        inputs = {"input_ids": flat, "labels": flat, "position_ids": positions}
    autocast = torch.autocast(device_type=args.device.split(":")[0], dtype=torch.bfloat16, enabled=recipe)
    times: list[dict[str, float]] = []
    kernels: dict[str, float] = {}
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    for step in range(args.warmup + args.steps):
        timer = Timer(args.device)
        timer.mark("start")
        with autocast:
            loss = model(**inputs).loss
        timer.mark("forward_and_loss")
        loss.backward()
        timer.mark("backward")
        if recipe:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            timer.mark("clip")
            optimizer.step()
            timer.mark("optimizer")
        model.zero_grad(set_to_none=True)
        timer.mark("zero_grad")
        phases = timer.phases()
        if step >= args.warmup:
            times.append(phases)
    if profile:
        kernels = profile_step(args, model, optimizer, inputs, autocast)
    mean = {k: round(sum(t[k] for t in times) / len(times), 5) for k in times[0]}
    step_s = sum(mean.values())
    compute_s = mean["forward_and_loss"] + mean["backward"]
    result = {"rows": rows, "row_tokens": args.row_tokens, "layout": "one packed sequence" if packed else "a batch", "tokens_per_step": tokens, "parameters": params,
              "weights": "fp32, bf16 autocast" if recipe else "bf16", "optimizer": "fused AdamW" if recipe else None,
              "phases_s": mean, "step_s": round(step_s, 5), "tokens_per_s": round(tokens / step_s, 1),
              "mfu": round(6 * params * tokens / step_s / PEAK_FLOPS, 4),
              "mfu_forward_backward_only": round(6 * params * tokens / compute_s / PEAK_FLOPS, 4),
              "loss": round(float(loss.detach()), 4)}
    if args.device.startswith("cuda"):
        result["peak_memory_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
    if kernels:
        result["profiled_cuda_s_by_kind"] = kernels
    print(name, json.dumps(result), flush=True)
    del model, optimizer
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return result


def kind_of(kernel: str) -> str:
    k = kernel.lower()
    if any(s in k for s in ("gemm", "cutlass", "matmul", "sm90_xmma", "nvjet", "cublas")):
        return "matmul"
    if any(s in k for s in ("flash", "attention", "fmha", "efficient_attention")):
        return "attention"
    if any(s in k for s in ("adam", "multi_tensor", "foreach")):
        return "optimizer_and_clip"
    if any(s in k for s in ("softmax", "log_softmax", "nll", "cross_entropy")):
        return "loss"
    if any(s in k for s in ("memcpy", "memset")):
        return "copies"
    if any(s in k for s in ("reduce", "norm")):
        return "reductions_and_norms"
    return "elementwise_and_other"


def profile_step(args: argparse.Namespace, model, optimizer, inputs: dict, autocast) -> dict[str, float]:
    """CUDA time of one recipe step by kind of kernel (seconds)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device.startswith("cuda") else [])
    with profile(activities=activities) as prof:
        with autocast:
            loss = model(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        model.zero_grad(set_to_none=True)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
    by_kind: dict[str, float] = defaultdict(float)
    launches = 0
    for event in prof.key_averages():
        cuda_us = getattr(event, "self_device_time_total", 0) or getattr(event, "self_cuda_time_total", 0)
        if cuda_us and event.device_type == torch.autograd.DeviceType.CUDA:
            by_kind[kind_of(event.key)] += cuda_us / 1e6
            launches += event.count
    out = {k: round(v, 5) for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])}
    out["kernels_launched"] = launches
    out["gpu_busy_s"] = round(sum(v for k, v in by_kind.items()), 5)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--tiny", action="store_true", help="a tiny Qwen2 config (checks the script on a CPU)")
    p.add_argument("--rows", type=int, default=16, help="rows per optimizer step (the recipe's batch)")
    p.add_argument("--row-tokens", type=int, default=343, help="tokens per row (the fair test's rows: ~343)")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--more-rows", type=int, default=64, help="the recipe again with this many rows per step")
    p.add_argument("--out", default=None, help="write the results here as JSON")
    args = p.parse_args()
    meta = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "torch": torch.__version__,
            "device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
            "command": "python bench/bench_train_profile.py " + " ".join(
                f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v not in (None, False))}
    results = {"recipe": run_variant(args, "recipe", args.rows, True, profile=True),
               "recipe_packed": run_variant(args, "recipe_packed", args.rows, True, profile=True, packed=True),
               "bf16_forward_backward": run_variant(args, "bf16_forward_backward", args.rows, False),
               f"recipe_{args.more_rows}_rows": run_variant(args, f"recipe_{args.more_rows}_rows", args.more_rows,
                                                            True)}
    report = {"meta": meta, "results": results}
    print(json.dumps(report, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

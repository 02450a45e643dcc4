"""How much of the model DeepSpeed ZeRO-3 keeps gathered, by gradient-checkpointing form.

train.py trains LoRA under ZeRO-3 with gradient checkpointing; TRL switches that to the reentrant
form, and at 70B on 2 GPUs the first backward ran out of memory with the whole model gathered on
each GPU (bench/RESULTS.md run 6). This measures the cause on a small Llama shape in two processes:
after every parameter fetch it sums the elements of every parameter DeepSpeed holds gathered
(ds_status AVAILABLE) and keeps the peak, per forward and backward, for LoRA and full fine-tuning,
without checkpointing and with each form. Losses are printed too: the three forms must train the same.
For LoRA it also times collecting the trained adapter for saving: the Trainer's way under ZeRO-3
(every layer gathered, frozen weights included) against train.py's (the adapter's partitions alone).

  python bench/bench_zero3_gc.py                  # CPU (gloo) or GPUs; needs deepspeed
  python bench/bench_zero3_gc.py --out out/zero3_gc.json

Prefetching and the live-parameter budget are set small so that what stays gathered is what
DeepSpeed holds, not what it fetched ahead.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

FORMS = ("none", "non-reentrant", "reentrant")


def worker(form: str, kind: str, layers: int, steps: int, hidden: int) -> None:
    """One process of the pair: build, train ``steps`` steps, report the peaks (rank 0 prints JSON)."""
    import deepspeed
    import torch
    from deepspeed.runtime.zero import partitioned_param_coordinator as coordinator
    from deepspeed.runtime.zero.partition_parameters import ZeroParamStatus
    from transformers import AutoModelForCausalLM, LlamaConfig

    deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")
    # hidden 256: a small shape; 8192: Llama-3-70B's layers (MLP 3.5x, 64 heads of 128, 8 KV heads)
    config = LlamaConfig(hidden_size=hidden, intermediate_size=2 * hidden if hidden < 1024 else hidden * 7 // 2,
                         num_hidden_layers=layers, num_attention_heads=max(4, hidden // 128),
                         num_key_value_heads=max(2, hidden // 1024), vocab_size=1024, use_cache=False)
    ds_config = {"train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": 1,
                 "bf16": {"enabled": torch.cuda.is_available()},  # as train.py on GPUs
                 "zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": 0,
                                       "stage3_prefetch_bucket_size": 1000, "stage3_max_live_parameters": 1000,
                                       "stage3_max_reuse_distance": 1000},
                 "optimizer": {"type": "AdamW", "params": {"lr": 1e-3, "torch_adam": True}}}
    torch.manual_seed(0)
    with deepspeed.zero.Init(config_dict_or_path=ds_config):
        model = AutoModelForCausalLM.from_config(config)
    if form != "none":
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": form == "reentrant"})
    if kind == "lora":
        from peft import LoraConfig, get_peft_model

        model.enable_input_require_grads()
        model = get_peft_model(model, LoraConfig(r=8, target_modules="all-linear"))
    engine, *_ = deepspeed.initialize(model=model, config=ds_config,
                                      model_parameters=[p for p in model.parameters() if p.requires_grad])
    params = list(engine.module.parameters())
    total = sum(p.ds_numel for p in params)
    phase, peak = ["forward"], {"forward": 0, "backward": 0}
    fetch = coordinator.PartitionedParameterCoordinator.fetch_sub_module

    def fetch_and_count(self, *args, **kwargs):
        done = fetch(self, *args, **kwargs)
        gathered = sum(p.ds_numel for p in params if p.ds_status == ZeroParamStatus.AVAILABLE)
        peak[phase[0]] = max(peak[phase[0]], gathered)
        return done

    coordinator.PartitionedParameterCoordinator.fetch_sub_module = fetch_and_count
    device = next(engine.module.parameters()).device
    ids = torch.randint(0, config.vocab_size, (1, 64), generator=torch.Generator().manual_seed(1)).to(device)
    losses = []
    for _ in range(steps):
        phase[0] = "forward"
        loss = engine(input_ids=ids, labels=ids).loss
        losses.append(round(loss.item(), 6))
        phase[0] = "backward"
        engine.backward(loss)
        engine.step()
    saving = save_adapter_both_ways(engine) if kind == "lora" else None
    if torch.distributed.get_rank() == 0:
        print("RESULT " + json.dumps({
            "form": form, "kind": kind, "layers": layers, "hidden": hidden, "parameters": total, "losses": losses, "save": saving,
            "frozen_share": round(sum(p.ds_numel for p in params if not p.requires_grad) / total, 3),
            "peak_gathered_share": {k: round(v / total, 3) for k, v in peak.items()},
            "deepspeed": deepspeed.__version__}), flush=True)


def save_adapter_both_ways(engine) -> dict:
    """Seconds to collect the adapter for saving: as the Trainer does under ZeRO-3 (every layer gathered,
    frozen weights included, the trainable ones copied out) and as train.py does (the adapter's
    partitions alone, alice.random_init.trainable_full_state_dict); and whether both give the same tensors."""
    import time

    import torch

    from alice.random_init import trainable_full_state_dict

    torch.distributed.barrier()
    started = time.perf_counter()
    trainer_way = engine._zero3_consolidated_16bit_state_dict(exclude_frozen_parameters=True)
    torch.distributed.barrier()
    trainer_s = time.perf_counter() - started
    started = time.perf_counter()
    adapter_way = trainable_full_state_dict(engine.module)
    torch.distributed.barrier()
    adapter_s = time.perf_counter() - started
    if torch.distributed.get_rank() != 0:
        return {}
    same = sorted(trainer_way) == sorted(adapter_way) and all(
        torch.equal(trainer_way[k], adapter_way[k]) for k in adapter_way)
    return {"trainer_s": round(trainer_s, 4), "adapter_only_s": round(adapter_s, 4), "tensors": len(adapter_way),
            "same_tensors": same}


def run_pair(form: str, kind: str, layers: int, steps: int, hidden: int) -> dict:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    repo = str(Path(__file__).resolve().parent.parent)  # the workers import alice
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))}
    if not _has_cuda():
        env["DS_ACCELERATOR"] = "cpu"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
               __file__, "--worker", form, kind, "--layers", str(layers), "--steps", str(steps),
               "--hidden", str(hidden)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        return {"form": form, "kind": kind, "error": (done.stderr or done.stdout)[-1500:]}
    return json.loads(line[len("RESULT "):])


def _has_cuda() -> bool:
    import torch

    return torch.cuda.device_count() >= 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=8, help="decoder layers of the small Llama shape")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per run")
    parser.add_argument("--hidden", type=int, default=256, help="hidden size (8192: Llama-3-70B's layers)")
    parser.add_argument("--kinds", default="lora,full", help="lora, full or both")
    parser.add_argument("--forms", default=",".join(FORMS), help="checkpointing forms, of: " + ", ".join(FORMS))
    parser.add_argument("--out", help="write the rows as JSON here")
    parser.add_argument("--worker", nargs=2, metavar=("FORM", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args.layers, args.steps, args.hidden)
        return 0
    rows = []
    print(f"{'kind':5} {'checkpointing':14} {'forward':>8} {'backward':>9}  losses")
    for kind in args.kinds.split(","):
        for form in args.forms.split(","):
            row = run_pair(form, kind, args.layers, args.steps, args.hidden)
            rows.append(row)
            if "error" in row:
                print(f"{kind:5} {form:14} failed: {row['error'].splitlines()[-1] if row['error'] else '?'}")
                continue
            share = row["peak_gathered_share"]
            print(f"{kind:5} {form:14} {share['forward']:8.1%} {share['backward']:9.1%}  {row['losses']}")
            if row.get("save"):
                save = row["save"]
                print(f"      adapter collected for saving: {save['trainer_s']:.3f} s the Trainer's way, "
                      f"{save['adapter_only_s']:.3f} s its partitions alone, same tensors: {save['same_tensors']}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

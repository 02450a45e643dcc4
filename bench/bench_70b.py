"""LoRA and QLoRA training of a Llama-3-70B-shaped model with RANDOM weights: memory, speed and plumbing.

No checkpoint is read (none exists on the GPU machine): the model is Llama-3-70B's published shape
(hidden 8192, 80 layers, 64 heads / 8 KV heads, MLP 28672, vocab 128256, rope theta 5e5) built on
the meta device and filled with normal(0, 0.02) weights (alice.random_init, which train.py
--random-init shares). So this measures memory, speed and whether the pieces fit together
(sharding, LoRA, gradient checkpointing, adapter saving and reloading), not quality. The LoRA recipe
is train.py's --lora default (TrainConfig's --lora-rank 16, --lora-alpha 32, --lora-dropout 0.05,
all linear layers but lm_head, through alice.training.lora_config).

fsdp    two GPUs, FSDP2 (fully_shard per decoder layer, then the root; bf16 params, fp32 gradient
        reduction, fp32 LoRA master weights and AdamW state), bf16 base, gradient checkpointing.
        The adapter is gathered (full_tensor) and written by rank 0, then reloaded onto a meta
        base with PeftModel.from_pretrained and compared tensor by tensor. Writes OUT/fsdp.json.
qlora   one GPU: each decoder layer is materialised, initialised and quantized to bitsandbytes NF4
        (double quantization, bf16 compute) in turn; embeddings, norms and lm_head stay unquantized;
        then prepare_model_for_kbit_training, LoRA, the same training loop, save_pretrained and the
        same reload check. Writes OUT/qlora.json.
folder  writes a model folder with no weights for train.py --random-init: the shape's config.json
        (model_type llama, bf16) and a tokenizer's files. A tokenizer larger than the shape's
        vocabulary (Qwen's 151,665 tokens) widens it to its size rounded up to a multiple of 128
        (151,680: +0.38B parameters, 0.5%); README.txt in the folder says so.

fsdp and qlora record per-step loss and time (and the loss a working random init should start at),
steady tokens/s (first 2 steps skipped), peak memory per GPU over the whole run (init_memory: by the
end of init), init time and MFU. Model FLOPs per token = 6 N_trainable + 4 N_frozen (forward 2N for
every weight, backward to activations 2N for every weight, weight gradients 2N for LoRA only;
N_frozen leaves out the input embedding, a lookup, and attention scores are not counted); "hardware"
FLOPs add 2N for the decoder layers' forward recomputed by gradient checkpointing. Peak: 989e12
dense bf16 FLOP/s per H200.

GPU machine (2 x H200):
  torchrun --nproc_per_node 2 bench/bench_70b.py fsdp --out out/
  python bench/bench_70b.py qlora --out out/
The same shape through train.py and the Trainer (FSDP2, and DeepSpeed ZeRO-3, which needs
`pip install deepspeed`), on the shipped ARC split's gold answers: 8 rows, each seen 4 times in 8
optimizer steps of 4 rows. manifest.json in the output folder holds the losses (log_history),
training.steady_tokens_per_s and training.peak_gpu_memory_gb_per_process; the adapter is
OUT/adapter_model.safetensors, written by one process:
  python bench/bench_70b.py folder /tmp/llama3-70b-random --tokenizer QWEN2.5_CODER_INSTRUCT_DIR
  accelerate launch --config_file configs/accelerate/fsdp.yaml --num_processes 2 train.py \
      --data arc_challenge --ground-truth --limit 8 --student /tmp/llama3-70b-random --random-init --lora \
      --max-steps 8 --total-batch-size 4 --per-device-batch-size 2 --max-length 512 --lr 5e-4 \
      --warmup-steps 0 --logging-steps 1 --output-dir runs/llama3-70b-random-fsdp
  accelerate launch --config_file configs/accelerate/deepspeed_zero3.yaml --num_processes 2 train.py \
      --data arc_challenge --ground-truth --limit 8 --student /tmp/llama3-70b-random --random-init --lora \
      --max-steps 8 --total-batch-size 4 --per-device-batch-size 2 --max-length 512 --lr 5e-4 \
      --warmup-steps 0 --logging-steps 1 --output-dir runs/llama3-70b-random-zero3
CPU smoke tests (tests/test_bench_70b.py, tests/test_train_random_init.py):
  torchrun --nproc_per_node 2 bench/bench_70b.py fsdp --tiny --device cpu --out /tmp/b70
  python bench/bench_70b.py qlora --tiny --device cpu --out /tmp/b70     # needs bitsandbytes
  python bench/bench_70b.py folder /tmp/tiny-llama --tiny --tokenizer SMALL_MODEL_DIR
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.distributed as dist

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from alice.random_init import (
    RANDOM_WEIGHTS_NOTE,
    build_on_meta,
    fully_shard_by_layer,
    materialize_random_,
    random_model_nf4,
    trainable_full_state_dict,
)
from alice.stages.train import TrainConfig
from alice.training import lora_config, lora_settings

PEAK_FLOPS = 989e12  # dense bf16 FLOP/s of one H200 (SXM)
LLAMA3_70B = {"hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80, "num_attention_heads": 64,
              "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 8192, "rope_theta": 500000.0,
              "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "hidden_act": "silu"}
TINY = {**LLAMA3_70B, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "intermediate_size": 128, "vocab_size": 512}
RANK = int(os.environ.get("RANK", "0"))
GB = 1e9


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} [rank {RANK}] {msg}", flush=True)


class Results:
    """A JSON file rewritten after every update, so a run cut short still leaves what it measured."""

    def __init__(self, path: Path, write: bool):
        self.path, self.write, self.data = path, write, {}

    def update(self, **fields) -> None:
        self.data.update(fields)
        if self.write:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=1))
            tmp.replace(self.path)


def llama_config(args: argparse.Namespace, **overrides):
    from transformers import LlamaConfig

    shape = dict(TINY if args.tiny else LLAMA3_70B)
    if args.layers:
        shape["num_hidden_layers"] = args.layers
    cfg = LlamaConfig(**{**shape, **overrides})
    cfg.dtype, cfg.use_cache = torch.bfloat16, False
    return cfg


def build_meta(cfg):
    return build_on_meta(cfg, torch.bfloat16)


def frozen_counts(model) -> dict:
    """Base weight counts for the FLOP formula (call on the unquantized model)."""
    embed = model.get_input_embeddings().weight.numel()
    layers = sum(p.numel() for n, p in model.named_parameters() if ".layers." in n)
    total = sum(p.numel() for p in model.parameters())
    return {"n_frozen_matmul": total - embed, "n_decoder_layers": layers, "n_embedding": embed}


def flops(counts: dict, n_trainable: int, tokens_per_s: float, n_gpus: int) -> dict:
    model_fpt = 6 * n_trainable + 4 * counts["n_frozen_matmul"]
    hardware_fpt = model_fpt + 2 * counts["n_decoder_layers"]
    peak = PEAK_FLOPS * n_gpus
    return {"formula": "model FLOPs/token = 6*n_trainable + 4*n_frozen_matmul (n_frozen_matmul excludes the input "
                       "embedding; attention scores not counted); hardware FLOPs/token adds 2*n_decoder_layers for "
                       "the gradient-checkpointing recompute; MFU = tokens/s * FLOPs/token / (n_gpus * peak)",
            "peak_flops_per_gpu": PEAK_FLOPS, "peak_note": "H200 dense bf16, no sparsity",
            "model_flops_per_token": model_fpt, "hardware_flops_per_token": hardware_fpt,
            "mfu": tokens_per_s * model_fpt / peak, "hfu": tokens_per_s * hardware_fpt / peak}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def memory(device: torch.device) -> dict:
    if device.type != "cuda":
        return {"max_allocated_gb": None, "max_reserved_gb": None}
    return {"max_allocated_gb": torch.cuda.max_memory_allocated(device) / GB,
            "max_reserved_gb": torch.cuda.max_memory_reserved(device) / GB}


def train(model, args: argparse.Namespace, cfg, device: torch.device, res: Results, world: int) -> dict:
    """AdamW on the trainable (LoRA) parameters over a fixed set of random rows, cycled."""
    # After the final RMSNorm the logits are ~normal(0, 0.02^2 * hidden): the first loss should be near this.
    res.update(loss_expected_at_init=math.log(cfg.vocab_size) + 0.02 ** 2 * cfg.hidden_size / 2)
    rows = torch.randint(0, cfg.vocab_size, (args.rows, args.seq_len), generator=torch.Generator().manual_seed(args.seed))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr)
    model.train()
    losses, times = [], []
    for step in range(args.steps):
        first = (step * world + RANK) * args.batch
        ids = rows[[(first + i) % args.rows for i in range(args.batch)]].to(device)
        sync(device)
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss = loss.detach().float()
        if world > 1:
            dist.all_reduce(loss)
            loss /= world
        sync(device)
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
        if RANK == 0:
            log(f"step {step + 1}/{args.steps} loss {losses[-1]:.4f} {times[-1]:.2f}s")
        res.update(losses=losses, step_times_s=times)
    steady = times[2:] or times
    tokens_per_s = world * args.batch * args.seq_len / (sum(steady) / len(steady))
    finite = all(math.isfinite(x) for x in losses)
    falling = len(losses) >= 4 and sum(losses[-3:]) / 3 < losses[0]
    return {"tokens_per_s": tokens_per_s, "steady_step_s": sum(steady) / len(steady), "loss_finite": finite,
            "loss_falling": bool(finite and falling), "n_trainable": sum(p.numel() for p in params)}


def check_reload(cfg, adapter_dir: Path, saved: dict) -> dict:
    """Reload the adapter onto a fresh meta base; every LoRA tensor must be real and equal to the saved one."""
    from peft import PeftModel, get_peft_model_state_dict

    try:
        base = build_meta(cfg)
        # PEFT moves adapter weights to their base layer's device and dtype, and meta would discard them: give every
        # Linear a zero-byte CPU stand-in (a stride-0 view) in the saved dtype, so the loaded tensors stay as saved.
        dtype = next(iter(saved.values())).dtype
        for m in base.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight = torch.nn.Parameter(torch.zeros((), dtype=dtype).expand(m.weight.shape), requires_grad=False)
        loaded = PeftModel.from_pretrained(base, str(adapter_dir), low_cpu_mem_usage=True)
        got = get_peft_model_state_dict(loaded)
        missing = sorted(set(saved) - set(got))
        meta = sorted(k for k, v in got.items() if v.is_meta)
        differ = sorted(k for k, v in got.items() if k in saved and not v.is_meta
                        and not torch.equal(v.detach().cpu(), saved[k].cpu()))
        ok = bool(saved) and not (missing or meta or differ) and len(got) == len(saved)
        return {"adapter_reloads": ok, "adapter_tensors": len(saved), "reload_missing": missing[:5],
                "reload_meta": meta[:5], "reload_differ": differ[:5]}
    except Exception as err:  # noqa: BLE001 - a failed reload is a result, not a crash
        return {"adapter_reloads": False, "reload_error": f"{type(err).__name__}: {err}"}


def adapter_mb(adapter_dir: Path) -> float:
    return (adapter_dir / "adapter_model.safetensors").stat().st_size / 1e6


def environment(device: torch.device) -> dict:
    import peft
    import transformers

    return {"torch": torch.__version__, "cuda": torch.version.cuda, "transformers": transformers.__version__,
            "peft": peft.__version__, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}


def run_fsdp(args: argparse.Namespace, res: Results) -> None:
    from peft import get_peft_model, get_peft_model_state_dict
    from torch.distributed.device_mesh import init_device_mesh

    world = dist.get_world_size()
    device = torch.device(args.device, int(os.environ.get("LOCAL_RANK", "0")) if args.device == "cuda" else None)
    cfg = llama_config(args)
    lora = TrainConfig(lora=True)  # train.py --lora
    res.update(mode="fsdp", world_size=world, config=cfg.to_dict(), lora=lora_settings(lora), env=environment(device),
               mixed_precision="FSDP2 MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=fp32); base weights "
                               "stored bf16, LoRA weights and AdamW state fp32", gradient_checkpointing=True,
               args=vars(args))
    t0 = time.perf_counter()
    model = build_meta(cfg)
    counts = frozen_counts(model)
    model = get_peft_model(model, lora_config(lora))
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    fully_shard_by_layer(model, init_device_mesh(args.device, (world,)))  # bf16 params, fp32 gradient reduction
    log("sharded on meta; materialising")
    materialize_random_(model, cfg, device, args.seed)  # each rank draws its own shard
    sync(device)
    dist.barrier()
    init_s = time.perf_counter() - t0
    log(f"init {init_s:.1f}s")
    res.update(init_s=init_s, init_memory=memory(device), **counts)

    stats = train(model, args, cfg, device, res, world)
    mem = torch.tensor([v or 0.0 for v in memory(device).values()], device=device)
    per_gpu = [torch.zeros_like(mem) for _ in range(world)]
    dist.all_gather(per_gpu, mem)
    res.update(**stats, **flops(counts, stats["n_trainable"], stats["tokens_per_s"], world),
               peak_memory_per_gpu=[{"max_allocated_gb": m[0].item(), "max_reserved_gb": m[1].item()}
                                    for m in per_gpu] if device.type == "cuda" else None)

    t0 = time.perf_counter()
    full = trainable_full_state_dict(model)  # a collective; rank 0 gets the tensors
    if RANK == 0:
        adapter_dir = Path(args.out) / "fsdp_adapter"
        adapter_dir.mkdir(parents=True, exist_ok=True)
        saved = get_peft_model_state_dict(model, state_dict=full)
        model.save_pretrained(str(adapter_dir), state_dict=full)  # as train.py's Trainer saves under FSDP2
        res.update(save_s=time.perf_counter() - t0, adapter_dir=str(adapter_dir), adapter_mb=adapter_mb(adapter_dir),
                   adapter_files=sorted(p.name for p in adapter_dir.iterdir()))
        log(f"adapter saved ({res.data['adapter_mb']:.1f} MB); reloading")
        res.update(**check_reload(cfg, adapter_dir, saved))
        log(f"adapter reloads: {res.data['adapter_reloads']}")
    dist.barrier()  # everyone tears down together, after rank 0's reload check


def run_qlora(args: argparse.Namespace, res: Results) -> None:
    try:
        import bitsandbytes as bnb
    except ImportError as err:
        res.update(mode="qlora", error=f"bitsandbytes missing: {err}")
        log(res.data["error"])
        return
    from peft import get_peft_model, get_peft_model_state_dict, prepare_model_for_kbit_training

    device = torch.device(args.device, 0 if args.device == "cuda" else None)
    cfg = llama_config(args)
    lora = TrainConfig(qlora=True)  # train.py --qlora
    res.update(mode="qlora", config=cfg.to_dict(), lora=lora_settings(lora), env=dict(environment(device),
               bitsandbytes=bnb.__version__), quantization="bitsandbytes NF4, double quantization "
               "(compress_statistics), bf16 compute; embeddings, norms and lm_head unquantized", args=vars(args))
    counts = frozen_counts(build_meta(cfg))
    t0 = time.perf_counter()
    # Each decoder layer drawn and quantized in turn (alice.random_init, as train.py --random-init --qlora).
    model = random_model_nf4(cfg, device, args.seed)
    quant_s = time.perf_counter() - t0
    # prepare_model_for_kbit_training upcasts every bf16 weight (embeddings, lm_head, norms) to fp32, as train.py
    # --qlora does; it needs 4 more bytes per such weight while casting. Skip it if that would not leave room.
    upcast = 4 * sum(p.numel() for p in model.parameters() if p.dtype == torch.bfloat16)
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else float("inf")
    prepared = free - upcast > 40 * GB
    if prepared:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
        how = "peft.prepare_model_for_kbit_training (non-4-bit weights upcast to fp32), as train.py --qlora"
    else:
        for p in model.parameters():
            p.requires_grad_(False)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        how = (f"prepare_model_for_kbit_training skipped: its fp32 upcast needs {upcast / GB:.1f} GB with "
               f"{free / GB:.1f} GB free; base frozen and gradient checkpointing enabled directly (bf16 kept)")
    model = get_peft_model(model, lora_config(lora))
    sync(device)
    init_s = time.perf_counter() - t0
    log(f"quantized in {quant_s:.1f}s, init {init_s:.1f}s; {how}")
    res.update(quantize_s=quant_s, init_s=init_s, init_memory=memory(device), kbit_preparation=how,
               prepare_model_for_kbit_training=prepared, upcast_gb=upcast / GB, gradient_checkpointing=True, **counts)

    stats = train(model, args, cfg, device, res, 1)
    res.update(**stats, **flops(counts, stats["n_trainable"], stats["tokens_per_s"], 1),
               peak_memory_per_gpu=[memory(device)] if device.type == "cuda" else None)
    adapter_dir = Path(args.out) / "qlora_adapter"
    t0 = time.perf_counter()
    model.save_pretrained(str(adapter_dir))
    saved = {k: v.detach().cpu() for k, v in get_peft_model_state_dict(model).items()}
    res.update(save_s=time.perf_counter() - t0, adapter_dir=str(adapter_dir), adapter_mb=adapter_mb(adapter_dir),
               adapter_files=sorted(p.name for p in adapter_dir.iterdir()))
    log(f"adapter saved ({res.data['adapter_mb']:.1f} MB); reloading")
    res.update(**check_reload(cfg, adapter_dir, saved))
    log(f"adapter reloads: {res.data['adapter_reloads']}")


def write_model_folder(args: argparse.Namespace) -> Path:
    """A model folder with no weights: the shape's config.json (Llama, bf16) and TOKENIZER's files, for
    train.py --random-init. The vocabulary must cover the tokenizer: a larger tokenizer than the shape's
    vocabulary (Qwen's 151,665 tokens against Llama-3's 128,256) widens it to its size rounded up to a
    multiple of 128, which README.txt in the folder records with the parameter count it gives."""
    from transformers import AutoTokenizer

    out = Path(args.out_dir)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    if not getattr(tokenizer, "chat_template", None):
        sys.exit(f"{args.tokenizer}: the tokenizer has no chat template, which train.py needs (use an instruct one)")
    shape_vocab = (TINY if args.tiny else LLAMA3_70B)["vocab_size"]
    vocab = shape_vocab if len(tokenizer) <= shape_vocab else -(-len(tokenizer) // 128) * 128
    special = {f"{name}_token_id": getattr(tokenizer, f"{name}_token_id") for name in ("bos", "eos", "pad")}
    cfg = llama_config(args, vocab_size=vocab, **special)
    cfg.architectures = ["LlamaForCausalLM"]
    params = sum(p.numel() for p in build_meta(cfg).parameters())
    at_shape_vocab = params - 2 * (vocab - shape_vocab) * cfg.hidden_size  # input embedding and LM head rows
    out.mkdir(parents=True, exist_ok=True)
    cfg.save_pretrained(out)
    tokenizer.save_pretrained(out)
    name = "A tiny Llama shape for tests" if args.tiny else "Llama-3-70B's published shape"
    vocab_note = (f"vocab_size {vocab}: the tokenizer's {len(tokenizer)} tokens rounded up to a multiple of 128, "
                  f"instead of the shape's {shape_vocab}; {params:,} parameters instead of {at_shape_vocab:,} "
                  f"(+{params - at_shape_vocab:,}, {100 * (params / at_shape_vocab - 1):.2f}%).\n"
                  if vocab != shape_vocab else f"vocab_size {vocab}, as the shape's; {params:,} parameters.\n")
    (out / "README.txt").write_text(
        f"{name} ({cfg.num_hidden_layers} layers, hidden {cfg.hidden_size}, "
        f"{cfg.num_attention_heads} heads / {cfg.num_key_value_heads} KV heads, MLP {cfg.intermediate_size}), "
        f"bf16, with NO weights, and the tokenizer of {Path(args.tokenizer).resolve()}.\n"
        f"{vocab_note}"
        f"For train.py --random-init only ({RANDOM_WEIGHTS_NOTE}). Written by bench/bench_70b.py folder.\n")
    log(f"{out}: {name}, vocab {vocab}, {params / 1e9:.2f}B parameters, no weights")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = p.add_subparsers(dest="mode", required=True)
    shape = argparse.ArgumentParser(add_help=False)
    shape.add_argument("--layers", type=int, help="override the number of decoder layers")
    shape.add_argument("--tiny", action="store_true", help="a tiny Llama (hidden 64, 2 layers) for CPU tests")
    folder = modes.add_parser("folder", parents=[shape], help="write a weightless model folder for train.py "
                              "--random-init")
    folder.add_argument("out_dir", help="the folder to write (config.json, tokenizer files, README.txt)")
    folder.add_argument("--tokenizer", required=True, help="a folder with the tokenizer (and its chat template)")
    run = argparse.ArgumentParser(add_help=False, parents=[shape])
    run.add_argument("--out", required=True, help="folder for MODE.json and the adapter")
    run.add_argument("--steps", type=int, default=12)
    run.add_argument("--rows", type=int, default=8, help="distinct random rows, cycled")
    run.add_argument("--seq-len", type=int, default=1024)
    run.add_argument("--batch", type=int, default=2, help="rows per GPU per step")
    run.add_argument("--lr", type=float, default=1e-4)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    run.add_argument("--timeout", type=int, default=1800, help="seconds a collective may wait before failing")
    modes.add_parser("fsdp", parents=[run], help="LoRA with FSDP2 over the processes torchrun starts")
    modes.add_parser("qlora", parents=[run], help="QLoRA (NF4) on one GPU")
    args = p.parse_args()
    if args.mode == "folder":
        write_model_folder(args)
        return 0
    Path(args.out).mkdir(parents=True, exist_ok=True)
    distributed = args.mode == "fsdp"
    res = Results(Path(args.out) / f"{args.mode}.json", write=RANK == 0)
    t_start = time.time()
    try:
        if distributed:
            kwargs = {}
            if args.device == "cuda":
                torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
                kwargs["device_id"] = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
            dist.init_process_group("nccl" if args.device == "cuda" else "gloo",
                                    timeout=datetime.timedelta(seconds=args.timeout), **kwargs)
            run_fsdp(args, res)
        else:
            run_qlora(args, res)
        res.update(finished="error" not in res.data, total_s=time.time() - t_start)
        log("done")
    except Exception as err:
        log(traceback.format_exc())
        res.update(error=f"{type(err).__name__}: {err}", finished=False, total_s=time.time() - t_start)
        if RANK != 0:
            (Path(args.out) / f"{args.mode}.rank{RANK}.error.txt").write_text(traceback.format_exc())
        if dist.is_initialized():
            os._exit(1)  # no teardown that could wait on a peer stuck in a collective; torchrun stops the rest
        raise
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Models with random weights, built from a model folder's config.json alone (no weights read).

Such a model measures speed, memory and whether the pieces fit together (sharding, LoRA, gradient
checkpointing, saving and reloading the adapter) for a shape whose checkpoint is not at hand, never
quality. ``train.py --random-init`` and ``bench/bench_70b.py`` build them here.

How the model is built depends on how the run was launched, so that under ZeRO-3 and FSDP2 no
process ever holds the whole model (141 GB in bf16 for a 70B one):

- plain (one process, or DDP): ``from_config`` on this process's device.
- DeepSpeed ZeRO-3 (accelerate launch with a deepspeed config): plain ``from_config`` too; the
  transformers model constructor sees ZeRO-3 through the TrainingArguments (alive while the model
  is built: alice.stages.train.run_training) and builds every parameter partitioned across the
  processes (``zero.Init``), then initialises them module by module (``initialize_weights_zero3``).
- FSDP2 (accelerate launch with fsdp_version 2, on GPUs): the model is built on the meta device,
  LoRA is applied there (PEFT keeps the LoRA weights fp32, the base stays bf16), every decoder
  layer and then the root are sharded with ``fully_shard``, and only then is each process's shard
  allocated on its GPU and drawn at random: 1/N of the model per GPU, nothing in CPU memory.
  accelerate's own FSDP2 preparation would need the whole model on the main process first (it
  broadcasts that process's full state dict into the shards: 141 GB of CPU memory, drawn on the
  CPU); it leaves a model that is already an ``FSDPModule`` as it is, so the Trainer trains this
  one unchanged (train.py's make_trainer switches accelerate's wrap policy off and saves the
  adapter by gathering the LoRA weights alone).
- QLoRA (``--qlora``, one process per model): built on the meta device; each decoder layer in turn
  is allocated on this process's device, drawn, and its linear layers quantized to NF4, so the bf16
  model never exists whole (a 70B one fits one 141 GB GPU as ~38 GB of NF4). Embeddings, norms and
  the LM head stay bf16, as bitsandbytes' loading leaves them.
"""

from __future__ import annotations

import contextlib
import math
import os

import torch
import torch.distributed as dist

RANDOM_WEIGHTS_NOTE = "random weights: measures speed/memory/plumbing, not quality"


def build_on_meta(config, dtype: torch.dtype, **kwargs) -> torch.nn.Module:
    """The model of ``config`` with every tensor on the meta device (no memory, no init)."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, dtype=dtype, **kwargs)


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The repeated blocks (the classes the model names in ``_no_split_modules``), in order."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    names = set(getattr(base, "_no_split_modules", None) or [])
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise ValueError(f"{type(base).__name__} names no decoder layer class (_no_split_modules) to shard by")
    return layers


def fully_shard_by_layer(model: torch.nn.Module, mesh, mp_policy=None) -> None:
    """FSDP2: each decoder layer its own unit (gathered for its forward and backward only), then
    the root (embeddings, final norm, LM head). Works on a meta model: nothing is allocated."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    # bf16 compute and all-gathers; gradients reduced in fp32 (LoRA's are small; full fine-tuning's
    # sums stay accurate).
    mp_policy = mp_policy or MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh, mp_policy=mp_policy)
    fully_shard(model, mesh=mesh, mp_policy=mp_policy)


def rebuild_rotary(model: torch.nn.Module, device: torch.device) -> None:
    """inv_freq is a non-persistent buffer computed at construction: to_empty leaves garbage in it
    (and meta has none), so build every rotary module again on ``device``."""
    for name, module in list(model.named_modules()):
        if isinstance(getattr(module, "inv_freq", None), torch.Tensor) and hasattr(module, "config"):
            parent, _, child = name.rpartition(".")
            with torch.device(device):
                fresh = type(module)(config=module.config).to(device)
            setattr(model.get_submodule(parent) if parent else model, child, fresh)


def fill_random_(model: torch.nn.Module, std: float, seed: int) -> None:
    """Draw every parameter in place, shard by shard: normal(0, std) weights, unit norms, zero
    biases, and LoRA as PEFT starts it (A Kaiming-uniform, B zero, so the adapter adds nothing yet).
    Each process draws its own shards from ``seed`` + its rank."""
    from torch.distributed.tensor import DTensor

    torch.manual_seed(seed + (dist.get_rank() if dist.is_initialized() else 0))
    with torch.no_grad():
        for name, param in model.named_parameters():
            local = param.to_local() if isinstance(param, DTensor) else param
            if "lora_A" in name:
                # fan_in is the input width, whole in every shard (dim 0, the rank r, is the sharded one)
                torch.nn.init.kaiming_uniform_(local, a=math.sqrt(5))
            elif "lora_B" in name or name.endswith("bias"):
                local.zero_()
            elif name.endswith("norm.weight"):
                local.fill_(1.0)
            else:
                local.normal_(0.0, std)


def materialize_random_(model: torch.nn.Module, config, device: torch.device, seed: int) -> None:
    """Allocate a meta (possibly sharded) model on ``device`` and draw its weights."""
    model.to_empty(device=device)
    fill_random_(model, getattr(config, "initializer_range", 0.02), seed)
    rebuild_rotary(model, device)


def quantize_layer_nf4_(layer: torch.nn.Module, device: torch.device, std: float) -> None:
    """Allocate one meta decoder layer on ``device``, draw it (normal(0, std) linears, unit norms) and
    swap every nn.Linear for a bitsandbytes NF4 Linear4bit (double quantization, bf16 compute), the
    layer transformers builds for ``BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
    bnb_4bit_use_double_quant=True)``."""
    import bitsandbytes as bnb

    layer.to_empty(device=device)
    with torch.no_grad():
        for name, module in list(layer.named_modules()):
            if name.endswith("norm") and getattr(module, "weight", None) is not None:
                module.weight.fill_(1.0)
            if not isinstance(module, torch.nn.Linear):
                continue
            weight = module.weight.data.normal_(0.0, std)
            if module.bias is not None:
                module.bias.zero_()
            quantized = bnb.nn.Linear4bit(module.in_features, module.out_features, bias=module.bias is not None,
                                          compute_dtype=torch.bfloat16, quant_type="nf4", compress_statistics=True,
                                          device="meta")
            # Params4bit quantizes on its first move to a device, even the device it is already on.
            quantized.weight = bnb.nn.Params4bit(weight, requires_grad=False, quant_type="nf4",
                                                 compress_statistics=True).to(device)
            if module.bias is not None:
                quantized.bias = torch.nn.Parameter(module.bias.data, requires_grad=False)
            parent, _, child = name.rpartition(".")
            setattr(layer.get_submodule(parent) if parent else layer, child, quantized)


def random_model_nf4(config, device: torch.device, seed: int, **kwargs) -> torch.nn.Module:
    """QLoRA's base with random weights (module docstring): decoder layers NF4, the rest bf16 on
    ``device``. Marked ``is_loaded_in_4bit`` so that PEFT picks its 4-bit LoRA layers and
    ``prepare_model_for_kbit_training`` treats it as a loaded 4-bit model."""
    model = build_on_meta(config, torch.bfloat16, **kwargs)
    std = getattr(config, "initializer_range", 0.02)
    torch.manual_seed(seed)
    for layer in decoder_layers(model):
        quantize_layer_nf4_(layer, device, std)
    rest = [m for m in model.modules() if any(p.is_meta for p in m.parameters(recurse=False))]
    with torch.no_grad():
        for module in rest:  # embeddings, final norm, LM head: bf16, as bitsandbytes loading leaves them
            module.to_empty(device=device, recurse=False)
            for name, param in module.named_parameters(recurse=False):
                if "norm" in type(module).__name__.lower():
                    param.fill_(1.0)
                elif name == "bias":
                    param.zero_()
                else:
                    param.normal_(0.0, std)
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    rebuild_rotary(model, device)
    left = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"still on the meta device after materialising: {left[:5]}")
    model.is_loaded_in_4bit = True
    return model


def trainable_full_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The trainable parameters (a LoRA adapter's) as whole CPU tensors, keyed by parameter name.
    A collective for a sharded model (FSDP2's DTensors, DeepSpeed ZeRO-3's partitions): every
    process calls it; the main process gets the tensors, the others an empty dict."""
    from torch.distributed.tensor import DTensor

    main = not dist.is_initialized() or dist.get_rank() == 0
    trainable = [(name, param) for name, param in model.named_parameters() if param.requires_grad]
    partitioned = [param for _, param in trainable if hasattr(param, "ds_id")]
    gathered = contextlib.nullcontext()
    if partitioned:  # ZeRO-3: all-gather the adapter's partitions (not the frozen base's) for this block
        import deepspeed

        gathered = deepspeed.zero.GatheredParameters(partitioned)
    full = {}
    with gathered:
        for name, param in trainable:  # the same order in every process: the collectives pair up
            tensor = param.full_tensor() if isinstance(param, DTensor) else param
            if main:
                full[name] = tensor.detach().to("cpu", copy=True).contiguous()  # one copy, kept after the gather
    return full


def is_fsdp2_sharded(model: torch.nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def fsdp_launch() -> bool:
    """accelerate launch with an FSDP config on several GPUs: the Trainer will run under FSDP. (On
    CPU, or with one process, accelerate runs without FSDP, and so does the model built here.)"""
    from accelerate import PartialState
    from accelerate.utils import DistributedType

    return (os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
            and PartialState().distributed_type == DistributedType.MULTI_GPU)


def random_model(model_dir: str, dtype: torch.dtype, seed: int, lora=None, attn_implementation: str | None = None,
                 revision: str | None = None, nf4: bool = False) -> torch.nn.Module:
    """The model of ``model_dir``'s config.json with random weights, built as the launch needs
    (module docstring). Under FSDP2 it comes back sharded, with ``lora`` (a peft LoraConfig)
    already applied; otherwise LoRA is left to the trainer. ``nf4``: QLoRA's 4-bit base."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir, revision=revision)
    config.use_cache = False
    kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    if nf4:
        from accelerate import PartialState
        from transformers.integrations import is_deepspeed_zero3_enabled

        if fsdp_launch() or is_deepspeed_zero3_enabled():
            from .errors import AliceError

            raise AliceError("--random-init --qlora builds the 4-bit model whole on each process: launch it "
                             "without an FSDP or ZeRO-3 config")
        return random_model_nf4(config, PartialState().device, seed, **kwargs)
    if fsdp_launch():
        from accelerate import PartialState
        from peft import get_peft_model
        from torch.distributed.device_mesh import init_device_mesh

        if os.environ.get("FSDP_VERSION", "1") != "2":
            from .errors import AliceError

            raise AliceError("--random-init under FSDP needs fsdp_version: 2 in the accelerate config "
                             "(configs/accelerate/fsdp.yaml)")
        state = PartialState()
        model = build_on_meta(config, dtype, **kwargs)
        if lora is not None:
            model = get_peft_model(model, lora)  # LoRA weights fp32 (PEFT's default), the base in ``dtype``
        fully_shard_by_layer(model, init_device_mesh("cuda", (state.num_processes,)))
        materialize_random_(model, config, state.device, seed)
        return model
    from transformers.integrations import is_deepspeed_zero3_enabled

    torch.manual_seed(seed)
    if is_deepspeed_zero3_enabled():
        return AutoModelForCausalLM.from_config(config, dtype=dtype, **kwargs)  # created partitioned (zero.Init)
    from accelerate import PartialState

    with torch.device(PartialState().device):  # drawn where it will train: no copy in CPU memory first
        return AutoModelForCausalLM.from_config(config, dtype=dtype, **kwargs)

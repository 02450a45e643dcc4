"""What the preloading server (alice/preload.py) imports once, so that each training forked from it starts
with its modules loaded: the trainer's own submodules, not only the packages (transformers and TRL load
those lazily, on first use).

bitsandbytes initializes CUDA when imported (it asks each GPU for its compute capability), and a child
forked from a process that did cannot use CUDA: the server marks it as absent before anything imports it,
so PEFT and transformers take it for not installed. Trainings that quantize (QLoRA) therefore start as
their own process (``StagePreloader.serves``); a child that finds CUDA initialized anyway starts afresh.
"""

import sys

sys.modules.setdefault("bitsandbytes", None)

import accelerate  # noqa: F401
import datasets  # noqa: F401
import peft  # noqa: F401
import torch  # noqa: F401
import transformers  # noqa: F401
import trl  # noqa: F401
from accelerate import PartialState  # noqa: F401
from datasets import Dataset  # noqa: F401
from peft import LoraConfig, PeftModel  # noqa: F401
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, TrainerCallback  # noqa: F401
from transformers.models.llama import modeling_llama  # noqa: F401
from transformers.models.qwen2 import modeling_qwen2  # noqa: F401
from trl import SFTConfig, SFTTrainer  # noqa: F401

import alice.attention
import alice.stages.train
import alice.training  # noqa: F401

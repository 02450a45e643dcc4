#!/usr/bin/env python3
"""Supervised fine-tuning for every trained model of the method (TRL SFTTrainer, the model's chat
template, loss on the assistant's tokens only): the teacher on its filtered CoT (stage 2), the
student on Alice's answers (stage 6), the original-W2S student on teacher labels, and the weak /
strong-ceiling baselines on ground truth. Paper recipe by default: 3 epochs, lr 1e-5, AdamW
(weight decay 0.01), cosine schedule warming up over the first 10% of the run (--warmup-ratio; the
paper's literal 100 steps: --warmup-steps 100), effective batch 16, bf16 on GPU. The manifest
records the run's optimizer steps, its warm-up steps and the peak learning rate reached.

Examples:
  python train.py --data arc_challenge --model qwen2.5 --teacher 1.5B \\
      --train-file data/cot-arc_challenge-Qwen2.5-1.5B-Instruct.jsonl --output-dir runs/teacher-1.5B
  python train.py --data arc_challenge --model qwen2.5 --student 7B --ground-truth --output-dir runs/ceiling-7B
  python train.py --data arc_challenge --student runs/mid --train-file data/alice-student.jsonl \\
      --lora --output-dir runs/student-lora
  accelerate launch --config_file configs/accelerate/fsdp.yaml train.py ... (several GPUs)

A rerun of a finished --output-dir does nothing and a rerun of an interrupted one continues from its
last checkpoint (as every stage resumes; --resume is accepted and changes nothing); --overwrite
starts over. manifest.json in --output-dir records the run.
"""

from alice.config import build_parser as config_parser
from alice.config import parse
from alice.errors import run_main
from alice.stages.train import TrainConfig, run_training


def build_parser():
    return config_parser(TrainConfig, __doc__)


def main(argv=None):
    return run_training(parse(TrainConfig, argv, __doc__))


if __name__ == "__main__":
    run_main(main)

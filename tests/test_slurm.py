"""The several-machine launch files: the SLURM sweep picks one teacher/student pair per array task,
and the multi-machine accelerate configs load as accelerate reads them."""

from __future__ import annotations

import os
import subprocess

from conftest import REPO


def sweep(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "scripts/slurm/sweep.sbatch", *args], check=False, cwd=REPO, capture_output=True,
                          text=True,
                          env={**os.environ, **env})


def test_sweep_runs_one_pair_per_array_task():
    sizes = {"TEACHERS": "1.5B 3B", "STUDENTS": "3B 7B"}
    listed = sweep({**sizes, "PAIRS_ONLY": "1"}).stdout.splitlines()
    assert listed == ["0 1.5B 3B", "1 1.5B 7B", "2 3B 7B"]  # the teacher is always the smaller model
    # PYTHON=echo prints the command the task would run.
    done = sweep({**sizes, "SLURM_ARRAY_TASK_ID": "2", "PYTHON": "echo"}, "--data", "gsm8k")
    assert done.returncode == 0
    assert done.stdout.splitlines()[-1] == ("experiment.py --model qwen2.5 --teacher 3B --student 7B --run-dir "
                                           "runs/sweep-qwen2.5/qwen2.5-t3B-s7B --data gsm8k")
    beyond = sweep({**sizes, "SLURM_ARRAY_TASK_ID": "3", "PYTHON": "echo"})
    assert beyond.returncode == 2 and "only 3 pairs" in beyond.stderr


def test_multi_machine_accelerate_configs_load():
    from accelerate.commands.config.config_args import load_config_from_file

    for name, kind in (("fsdp_multinode.yaml", "FSDP"), ("deepspeed_zero3_multinode.yaml", "DEEPSPEED")):
        config = load_config_from_file(str(REPO / "configs" / "accelerate" / name))
        assert config.distributed_type == kind and config.num_machines == 2 and config.num_processes == 16
        assert config.rdzv_backend == "c10d" and config.main_process_port == 29500

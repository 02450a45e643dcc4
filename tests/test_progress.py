"""Logs a person reads: a stage script's stderr sent to a file holds the project's progress lines
(questions, samples, tokens/s, ETA) and none of the libraries' progress bars, unless asked for."""

import io
import os
import re
import subprocess
import sys

from conftest import REPO

from alice.progress import Progress

LINE = re.compile(r"^evaluating: (\d+)/(\d+) questions, (\d+) samples, \d+ tokens \([\d.]+ tokens/s\), "
                  r"elapsed \d+m\d\ds, ETA (\S+)$")


def eval_with_stderr_in_file(tmp_path, name: str, env: dict, limit: int) -> str:
    log = tmp_path / f"{name}.log"
    # This test process imported alice, which set the libraries' switches in its environment: a user's shell
    # has none of them.
    clean = {k: v for k, v in os.environ.items() if not k.endswith("DISABLE_PROGRESS_BARS")}
    with open(log, "w") as handle:
        done = subprocess.run([sys.executable, str(REPO / "eval.py"), "--data", "arc_challenge", "--limit", str(limit),
                               "--max-new-tokens", "6", "--chunk-size", "2", "--model", "smollm2", "--backend", "hf",
                               "--output", str(tmp_path / f"{name}.jsonl")],
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=handle, env={**clean, **env},
                              timeout=900, check=False)
    text = log.read_text()
    assert done.returncode == 0, text[-2000:]
    return text


def test_stage_log_file_has_project_progress_and_no_library_bars(tmp_path):
    text = eval_with_stderr_in_file(tmp_path, "quiet", {"ALICE_PROGRESS_INTERVAL": "0"}, limit=4)
    progress = [LINE.match(line) for line in text.splitlines() if line.startswith("evaluating:")]
    assert progress and all(progress), text
    done = [int(m.group(1)) for m in progress]
    # A start line, a line per chunk of two as it finishes, and the closing line: steady, not one jump.
    assert done[0] == 0 and done[-1] == 4 and {2, 4} <= set(done) and done == sorted(done)
    assert all(int(m.group(2)) == 4 and m.group(3) == m.group(1) for m in progress)
    assert progress[-1].group(4) == "0m00s"
    assert "\r" not in text and "it/s]" not in text and "Loading weights" not in text, text

    # Asked for, the libraries' bars come back (transformers' weight loading).
    loud = eval_with_stderr_in_file(tmp_path, "loud", {"ALICE_LIBRARY_PROGRESS": "1"}, limit=1)
    assert "Loading weights" in loud and LINE.match(loud.splitlines()[-1])


def test_plain_lines_every_interval_when_not_a_terminal():
    stream = io.StringIO()
    progress = Progress(10, "probing", samples=8, stream=stream, interval=3600)
    for _ in range(10):
        progress.update(1, tokens=5)
    progress.close()
    lines = stream.getvalue().splitlines()
    # Within the interval only the start and the end are written.
    assert [line.split(",")[0] for line in lines] == ["probing: 0/10 questions", "probing: 10/10 questions"]
    assert "80 samples, 50 tokens" in lines[-1]

"""One line per train.py run from its manifest: steady and mean tokens/s, training seconds, peak GPU
memory, first and last loss, the attention used; with several runs, their steady tokens/s together
(runs that shared a GPU).

  python bench/train_runs.py RUN_DIR_OR_MANIFEST ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(paths: list[str]) -> None:
    total = 0.0
    for path in map(Path, paths):
        manifest_file = path / "manifest.json" if path.is_dir() else path
        manifest = json.loads(manifest_file.read_text())
        training = manifest.get("training", {})
        total += training.get("steady_tokens_per_s") or 0
        print(f"  {path.name}: {manifest.get('status')}, steady {training.get('steady_tokens_per_s')} tokens/s, "
              f"mean {training.get('tokens_per_s')}, train {manifest.get('timings', {}).get('train_s')} s, "
              f"peak {training.get('peak_gpu_memory_gb')} GB, loss {training.get('first_loss')} -> "
              f"{training.get('final_loss')}, attention {training.get('attention')}")
    if len(paths) > 1:
        print(f"  together: {total:.0f} steady tokens/s")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    main(sys.argv[1:])

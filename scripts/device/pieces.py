#!/usr/bin/env python3
"""Transfer in pieces: carry large files to an offline GPU machine that accepts only small uploads.

The files a run needs there (a tar of wheels, GGUF models, data caches) are cut into one byte
stream of fixed-size pieces, one folder each, sent one upload at a time (scripts/device/job.sh):

    python scripts/device/pieces.py pack --prefix .pk --piece-mib 60 w.tar models/a.gguf ...
        -> .pk0/piece .pk1/piece ... (each folder also holds layout.json: names, sizes, offsets, sha256)
    python3 scripts/device/pieces.py store .pk7 /tmp/keep      (on the GPU machine, once per piece)
        -> keeps the piece, then writes every file whose bytes have all arrived to /tmp/keep/files/,
           checked against its sha256; earlier files are usable before the last piece arrives.

Standard library only (it runs there before any wheel is installed).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

CHUNK = 8 << 20


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def pack(files: list[str], prefix: str, piece_mib: float) -> None:
    piece_bytes = int(piece_mib * 2**20)
    layout, offset = [], 0
    for name in files:
        path = Path(name)
        if not path.is_file():
            sys.exit(f"error: {path}: no such file")
        size = path.stat().st_size
        layout.append({"name": path.name, "size": size, "offset": offset, "sha256": sha256(path)})
        offset += size
    total = offset
    count = -(-total // piece_bytes)
    info = {"piece_bytes": piece_bytes, "pieces": count, "total": total, "files": layout}
    for old in Path(".").glob(prefix + "[0-9]*"):
        shutil.rmtree(old)
    with contextlib.ExitStack() as stack:
        write_pieces(iter([stack.enter_context(open(f, "rb")) for f in files]), prefix, count, piece_bytes, info)
    names = ", ".join(f"{f['name']} ({f['size'] / 2**20:.0f} MiB)" for f in layout)
    print(f"{count} pieces of {piece_mib} MiB in {prefix}0 .. {prefix}{count - 1}: {names}")


def write_pieces(readers, prefix: str, count: int, piece_bytes: int, info: dict) -> None:
    current = next(readers)
    for index in range(count):
        folder = Path(f"{prefix}{index}")
        folder.mkdir()
        (folder / "layout.json").write_text(json.dumps({**info, "index": index}))
        left = piece_bytes
        with open(folder / "piece", "wb") as out:
            while left and current is not None:
                block = current.read(min(left, CHUNK))
                if not block:
                    current = next(readers, None)
                    continue
                out.write(block)
                left -= len(block)


def store(folder: str, keep: str) -> None:
    src, keep_dir = Path(folder), Path(keep)
    info = json.loads((src / "layout.json").read_text())
    keep_dir.mkdir(parents=True, exist_ok=True)
    (keep_dir / "layout.json").write_text(json.dumps(info))
    target = keep_dir / f"p{info['index']}"
    shutil.copyfile(src / "piece", target.with_suffix(".part"))
    os.replace(target.with_suffix(".part"), target)
    extract(keep_dir, info)


def extract(keep_dir: Path, info: dict) -> None:
    out_dir = keep_dir / "files"
    out_dir.mkdir(exist_ok=True)
    size = info["piece_bytes"]
    have = {int(p.name[1:]) for p in keep_dir.glob("p[0-9]*")}
    missing = info["pieces"] - len(have)
    for f in info["files"]:
        out = out_dir / f["name"]
        if out.exists():
            continue
        first, last = f["offset"] // size, (f["offset"] + f["size"] - 1) // size
        if not all(i in have for i in range(first, last + 1)):
            continue
        tmp = out.with_name(out.name + ".part")
        with open(tmp, "wb") as dst:
            position, end = f["offset"], f["offset"] + f["size"]
            while position < end:
                index, inner = divmod(position, size)
                with open(keep_dir / f"p{index}", "rb") as piece:
                    piece.seek(inner)
                    length = min(end - position, size - inner)
                    while length:
                        block = piece.read(min(length, CHUNK))
                        dst.write(block)
                        length -= len(block)
                        position += len(block)
        if sha256(tmp) != f["sha256"]:
            tmp.unlink()
            sys.exit(f"error: {f['name']}: sha256 mismatch after assembly")
        os.replace(tmp, out)
        print(f"complete: {out} ({f['size'] / 2**20:.0f} MiB, sha256 ok)")
    print(f"pieces here: {len(have)}/{info['pieces']} ({missing} to come)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("pack", help="cut files into pieces (on this machine)")
    a.add_argument("files", nargs="+")
    a.add_argument("--prefix", default=".pk", help="piece folders: <prefix>0, <prefix>1, ...")
    a.add_argument("--piece-mib", type=float, default=62.0, help="piece size (the checkout travels too)")
    b = sub.add_parser("store", help="keep one piece and assemble finished files (on the device)")
    b.add_argument("folder")
    b.add_argument("keep", nargs="?", default="/tmp/keep")
    args = p.parse_args()
    if args.command == "pack":
        pack(args.files, args.prefix, args.piece_mib)
    else:
        store(args.folder, args.keep)


if __name__ == "__main__":
    main()

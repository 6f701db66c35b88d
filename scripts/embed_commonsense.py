"""Rebuild the embedded commonsense tasks (tasks/commonsense/data/) from an LLM-Adapters dataset folder.

    python scripts/embed_commonsense.py /path/to/commonsense

Each file is gzip-compressed deterministically (level 9, no file name, mtime 0), so the same source gives the same
bytes; the script prints the sha256 of every decompressed file, the pins of owlore_bench/datasets/embedded.py, and
refuses a source file whose sha256 differs from those pins (pass --repin to print new pins instead).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from owlore_bench.datasets.embedded import EMBEDDED_SHA256, embedded_dir  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="folder holding <task>/test.json and <task>/train.json")
    parser.add_argument("--repin", action="store_true", help="print the sha256 pins instead of checking them")
    args = parser.parse_args()
    for relative, pinned in EMBEDDED_SHA256.items():
        raw = (args.source / relative).read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        if args.repin:
            print(f'    "{relative}": "{digest}",')
            continue
        if digest != pinned:
            print(f"{relative}: sha256 {digest} is not the pinned {pinned}", file=sys.stderr)
            return 1
        target = embedded_dir() / (relative + ".gz")
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as sink, gzip.GzipFile(filename="", mode="wb", fileobj=sink, compresslevel=9,
                                                        mtime=0) as archive:
            archive.write(raw)
        print(f"{target}: {len(raw):,} -> {target.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())

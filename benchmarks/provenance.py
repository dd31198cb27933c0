"""Cost of the output provenance record (``seisinv.outdir``) against its alternative.

``dataset_identity`` fingerprints a dataset from file names, sizes and modification times (one
``stat`` per file, nothing read). The alternative a careful user might expect, a sha256 of every
file's content, is timed on the same files in the same run, plus the lock (``lock_output``) that
every writing command takes once.

Writes ``--folders`` Speed & Structure-like sample folders (5 shot files + ``vp_model.npy`` each,
``--mb`` MB per folder in total) to a temporary directory. The files were just written, so the
content hash reads from the page cache: on a cold disk it would be slower still. Usage::

    python benchmarks/provenance.py                      # 200 folders of 1 MB
    python benchmarks/provenance.py --folders 2000 --mb 0.2
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from seisinv.outdir import dataset_identity, lock_output


def write_fixture(root: Path, folders: int, mb: float) -> int:
    per_file = int(mb * 1e6 / 6 / 4)
    rng = np.random.default_rng(0)
    block = rng.standard_normal(per_file).astype(np.float32)
    for k in range(folders):
        folder = root / f"s{k:05d}"
        folder.mkdir(parents=True)
        for name in ("1", "75", "150", "225", "300"):
            np.save(folder / f"receiver_data_src_{name}.npy", block)
        np.save(folder / "vp_model.npy", block)
    return folders * 6


def content_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            with open(Path(folder) / name, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folders", type=int, default=200)
    parser.add_argument("--mb", type=float, default=1.0, help="MB per sample folder")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        files = write_fixture(root, args.folders, args.mb)
        total_mb = args.folders * args.mb
        identity = best_of(lambda: dataset_identity(root), args.repeats)
        hashed = best_of(lambda: content_hash(root), args.repeats)

        def lock_once() -> None:
            with lock_output(Path(tmp) / "out", "benchmark"):
                pass

        lock = best_of(lock_once, args.repeats * 10)
    print(f"{args.folders} folders, {files} files, {total_mb:.0f} MB (page cache); best of "
          f"{args.repeats}")
    print(f"dataset_identity (stat only):  {identity * 1e3:8.1f} ms "
          f"({identity / files * 1e6:.1f} us/file)")
    print(f"sha256 of every file:          {hashed * 1e3:8.1f} ms "
          f"({total_mb / hashed:.0f} MB/s)  -> {hashed / identity:.0f}x slower")
    print(f"lock_output enter + exit:      {lock * 1e3:8.3f} ms")


if __name__ == "__main__":
    main()

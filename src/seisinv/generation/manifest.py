"""The ``manifest.csv`` of a generated dataset, written so that it only lists finished samples.

Each finished chunk first writes its own rows to ``OUT/.progress/chunk{c}.csv`` (atomically, after
its data files are in place); ``manifest.csv`` is then rebuilt from all chunk files under a file
lock and replaced atomically. Ranks and shards working in the same folder therefore never lose
each other's rows, and a chunk with a progress file is complete by construction.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
from collections.abc import Iterator
from pathlib import Path

from seisinv.data.format import MANIFEST_COLUMNS, MANIFEST_FILE
from seisinv.errors import DataError
from seisinv.io import write_text

PROGRESS_DIR = ".progress"


def _csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _read_rows(path: Path) -> list[dict]:
    try:
        with open(path, newline="") as handle:
            return list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable manifest rows ({exc})") from None


def chunk_record(root: Path, chunk: int) -> Path:
    """Path of the progress file that marks chunk ``chunk`` finished."""
    return root / PROGRESS_DIR / f"chunk{chunk:06d}.csv"


def chunk_done(root: Path, chunk: int) -> bool:
    return chunk_record(root, chunk).exists()


def record_chunk(root: Path, chunk: int, rows: list[dict]) -> None:
    """Mark ``chunk`` finished with its manifest ``rows`` (dicts keyed by MANIFEST_COLUMNS)."""
    write_text(chunk_record(root, chunk), _csv_text(rows))


@contextlib.contextmanager
def folder_lock(root: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``root/.progress/lock`` (serialises manifest rebuilds and
    the first-run set-up between ranks and shards sharing ``root``)."""
    lock_path = root / PROGRESS_DIR / "lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def rebuild_manifest(root: Path) -> int:
    """Rewrite ``root/manifest.csv`` from every finished chunk, rows in sample order.

    Returns:
        the number of rows written.
    """
    with folder_lock(root):
        rows: list[dict] = []
        for part in sorted((root / PROGRESS_DIR).glob("chunk*.csv")):
            rows.extend(_read_rows(part))
        rows.sort(key=lambda row: row["id"])
        write_text(root / MANIFEST_FILE, _csv_text(rows))
    return len(rows)


def read_manifest(root: Path) -> list[dict]:
    """Rows of ``root/manifest.csv`` as dicts (strings), in file order."""
    return _read_rows(root / MANIFEST_FILE)

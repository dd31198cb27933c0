"""Cross-validation folds keyed by sample id, stable under additions, saved as CSV.

A sample's fold comes from a hash of ``(seed, id)``, so it never depends on which other samples
exist: adding samples never moves the ones already assigned (plain assignment). Synthetic samples
(``seisinv generate``) get ``TRAIN_ONLY`` (-1) and are never validated on; a ``holdout`` fraction of
the real samples gets ``HOLDOUT`` (-2): kept out of both training and validation for a final test.

With ``families`` given, the real samples of each family are dealt round-robin over the folds in
hash order, so every fold holds each family within one sample of ``n / k``. That balance has a
price: a sample added to a family can move other samples *of that family* (other families keep
theirs). Save the assignment with ``write_folds`` and reuse it with ``read_folds`` to pin it.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

from seisinv.errors import DataError
from seisinv.io import write_text

TRAIN_ONLY = -1
HOLDOUT = -2


def _unit_hash(seed: int, key: str) -> float:
    """A uniform number in [0, 1) from ``(seed, key)``, identical across runs and platforms."""
    digest = hashlib.blake2b(f"{seed}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def assign_folds(
    ids: Sequence[str],
    k: int,
    seed: int = 0,
    families: Sequence[str | None] | None = None,
    synthetic: Sequence[bool] | None = None,
    holdout: float = 0.0,
) -> dict[str, int]:
    """Assign each sample id a fold in ``0 .. k-1``, ``TRAIN_ONLY`` (-1) or ``HOLDOUT`` (-2).

    Args:
        ids: sample ids (unique).
        k: number of validation folds (>= 2).
        seed: changes the whole assignment.
        families: per-id family (aligned with ``ids``) to balance folds by family; None = plain.
        synthetic: per-id flag; True -> ``TRAIN_ONLY``.
        holdout: fraction of real samples set aside as ``HOLDOUT`` (chosen by hash, stable).

    Returns:
        ``{id: fold}`` in the order of ``ids``.
    """
    if k < 2:
        raise DataError(f"assign_folds: k = {k}; need at least 2 folds")
    if not 0 <= holdout < 1:
        raise DataError(f"assign_folds: holdout = {holdout} must lie in [0, 1)")
    ids = [str(i) for i in ids]
    if len(set(ids)) != len(ids):
        raise DataError("assign_folds: sample ids are not unique")
    for name, values in (("families", families), ("synthetic", synthetic)):
        if values is not None and len(values) != len(ids):
            raise DataError(f"assign_folds: {len(values)} {name} for {len(ids)} ids")
    synthetic = list(synthetic) if synthetic is not None else [False] * len(ids)

    folds: dict[str, int] = {}
    groups: dict[str, list[tuple[float, str]]] = {}
    for position, sample_id in enumerate(ids):
        if synthetic[position]:
            folds[sample_id] = TRAIN_ONLY
            continue
        # Independent hashes for the holdout draw and the fold draw.
        if _unit_hash(seed, "holdout\x00" + sample_id) < holdout:
            folds[sample_id] = HOLDOUT
            continue
        u = _unit_hash(seed, sample_id)
        if families is None:
            folds[sample_id] = min(int(u * k), k - 1)
        else:
            groups.setdefault(str(families[position] or ""), []).append((u, sample_id))
    for family, members in groups.items():
        start = int(_unit_hash(seed, "family\x00" + family) * k)  # small families spread out
        for rank, (_, sample_id) in enumerate(sorted(members)):
            folds[sample_id] = (start + rank) % k
    return {sample_id: folds[sample_id] for sample_id in ids}


def split_indices(ids: Sequence[str], folds: dict[str, int], fold: int) -> tuple[list, list]:
    """Positions of the training and validation samples for validation fold ``fold``.

    Training: every sample whose fold is neither ``fold`` nor ``HOLDOUT`` (synthetic included);
    validation: the samples of ``fold``. Raises ``DataError`` for ids missing from ``folds``.
    """
    missing = [i for i in ids if i not in folds]
    if missing:
        raise DataError(f"{len(missing)} sample ids have no fold (first: {missing[0]!r}); "
                        "assign folds again or add them")
    train = [p for p, i in enumerate(ids) if folds[i] not in (fold, HOLDOUT)]
    valid = [p for p, i in enumerate(ids) if folds[i] == fold]
    return train, valid


def write_folds(path: str | Path, folds: dict[str, int]) -> None:
    """Write ``id,fold`` CSV rows (atomically)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "fold"])
    writer.writerows(folds.items())
    write_text(path, buffer.getvalue())


def read_folds(path: str | Path) -> dict[str, int]:
    """Read a CSV written by ``write_folds``; ``DataError`` naming the line on bad content."""
    path = Path(path)
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or {"id", "fold"} - set(reader.fieldnames):
                raise DataError(f"{path}: expected a CSV with columns id,fold")
            folds = {}
            for line, row in enumerate(reader, start=2):
                try:
                    folds[row["id"]] = int(row["fold"])
                except (TypeError, ValueError):
                    raise DataError(f"{path} line {line}: fold {row['fold']!r} is not an "
                                    "integer") from None
    except FileNotFoundError:
        raise DataError(f"{path}: folds file not found") from None
    return folds

"""Output directories that always match what produced them: one writer at a time, a record of
the inputs and settings, and no output written over or inside an input.

Every writing command (generate, simulate, train, predict, ensemble, fwi, experiment) opens its
output through this module::

    from seisinv.outdir import claim_output, dataset_identity

    provenance = {"data": dataset_identity([data_dir]), "tta": ["flip"], ...}
    with claim_output(out, "predict", provenance, inputs=[data_dir], overwrite=False):
        ...  # write into out

``claim_output`` is ``lock_output`` + ``check_out_not_inside_inputs`` + ``refuse_foreign`` +
``compare``/``record`` of the provenance:

- **Lock** (``lock_output``): ``OUT/.seisinv-lock`` (``.<name>.seisinv-lock`` beside a file
  output) held with ``flock`` while the command runs; it records ``{"pid", "host", "command"}``.
  A second writer fails at once with a ``LockedError`` naming the holder's PID. The kernel drops
  the lock when its process dies (even by ``kill -9``), so a stale lock file is simply taken over.
  Within one process the lock is re-entrant (the CLI and the library may both take it).
- **Provenance** (``record``/``compare``): ``OUT/provenance.json`` holds a dict of everything that
  changes the results: input dataset identity (``dataset_identity``: resolved paths and a cheap
  fingerprint of file names, sizes and mtimes), checkpoint checksums (``checkpoint_identity``),
  and every result-changing setting. A rerun with a different dict is refused, naming the keys
  that differ, unless ``overwrite=True``, which deletes the earlier output and starts again.
- **Overlap** (``check_out_not_inside_inputs``): the output may not be an input, lie inside one,
  or contain one.
- **Foreign folders** (``refuse_foreign``): a non-empty folder without this command's
  ``provenance.json`` is refused (never deleted, even with ``overwrite``), except an older
  output of the command made before provenance records existed (``Writes``: its marker file
  and nothing the command does not write), which ``overwrite`` clears and starts again in.
- **No stubs**: when a claim is refused or the command fails before writing anything but the
  lock and the record, the folders this call created are removed again.

Library errors name Python arguments (``out``); the CLI shows them as flags (``--out``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seisinv.errors import ArgumentError
from seisinv.io import sha256_file

log = logging.getLogger(__name__)

LOCK_NAME = ".seisinv-lock"
RECORD_NAME = "provenance.json"
RECORD_FORMAT = 1
SMALL_FILE = 64 * 1024  # bytes; dataset_identity hashes files up to this size instead of mtimes

# Locks this process holds: resolved lock path -> (open file, depth).
_HELD: dict[Path, list] = {}


class OutputError(ArgumentError):
    """An output path that cannot be used: locked, overlapping an input, foreign, or made by
    other inputs/settings. ``argument`` is the Python argument it concerns (``out``)."""

    def __init__(self, message: str, argument: str = "out") -> None:
        super().__init__(message, argument)


class LockedError(OutputError):
    """Another live process is writing the same output."""


@dataclass(frozen=True)
class Writes:
    """What a command writes at the top of its output folder, to recognise its outputs made
    before ``provenance.json`` existed: a folder holding ``marker`` and nothing outside
    ``names`` (e.g. a prediction folder: ``manifest.json`` with ``velocity/``). ``overwrite``
    deletes exactly ``names`` there."""

    marker: str
    names: tuple[str, ...]


# ---- the lock -------------------------------------------------------------------------------
def lock_path(out: str | os.PathLike, is_file: bool = False, name: str = "") -> Path:
    """Where the lock of output ``out`` lives: ``out/.seisinv-lock`` for a folder,
    ``.<name>.seisinv-lock`` beside a file output. ``name`` separates independent writers of one
    folder (e.g. shards of ``generate``)."""
    out = Path(out)
    suffix = f".{name}" if name else ""
    if is_file:
        return out.with_name(f".{out.name}{LOCK_NAME}{suffix}")
    return out / f"{LOCK_NAME}{suffix}"


def read_lock(path: str | os.PathLike) -> dict:
    """The holder recorded in a lock file ({} when unreadable)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def _describe_holder(holder: dict) -> str:
    if not holder:
        return "another process"
    where = f" on {holder['host']}" if holder.get("host") not in (None, socket.gethostname()) else ""
    command = f" ({holder['command']})" if holder.get("command") else ""
    return f"PID {holder.get('pid', '?')}{where}{command}"


@contextlib.contextmanager
def lock_output(
    out: str | os.PathLike, command: str, *, is_file: bool = False, name: str = "",
    argument: str = "out",
) -> Iterator[Path]:
    """Hold the exclusive lock of output ``out`` for the duration of the block.

    Creates ``out`` (a folder) or its parent (a file output) when missing; on leaving, the lock
    file is removed and, if this call created the folder and it is still empty, so is the folder.

    Args:
        out: the output folder, or the output file when ``is_file``.
        command: recorded in the lock file and shown to a second writer, e.g. "seisinv predict".
        is_file: ``out`` is a file; the lock lives beside it.
        name: an independent lock within one folder (shards writing disjoint files).
        argument: the Python argument name used in error messages.

    Yields:
        The lock file path.

    Raises:
        LockedError: another live process holds the lock (the message names its PID).
        OutputError: ``out`` (or its parent) cannot be created or is not a folder.
    """
    out = Path(out)
    folder = out.parent if is_file else out
    created = _make_folder(folder, argument, out)
    path = lock_path(out, is_file, name)
    key = path.resolve()
    if key in _HELD:  # re-entrant within this process
        _HELD[key][1] += 1
        try:
            yield path
        finally:
            _HELD[key][1] -= 1
        return
    try:
        handle = _acquire(path, command, argument, out)
    except BaseException:
        _remove_empty(created)
        raise
    _HELD[key] = [handle, 1]
    try:
        yield path
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            path.unlink()
        handle.close()  # closing releases the flock
        _remove_empty(created)


def _make_folder(folder: Path, argument: str, out: Path) -> list[Path]:
    """mkdir -p ``folder``; returns the folders created, outermost first."""
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{argument} {out}: {folder} exists and is not a folder", argument)
    created = []
    for parent in [folder, *folder.parents]:
        if parent.exists():
            break
        created.append(parent)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{argument} {out}: cannot create folder {folder} "
                          f"({exc.strerror or exc})", argument) from None
    return created[::-1]


def _remove_empty(created: list[Path]) -> None:
    for folder in reversed(created):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only succeeds when empty


def _acquire(path: Path, command: str, argument: str, out: Path):
    for _ in range(10):
        try:
            # Unbuffered: a full disk fails in write() below, never later in close().
            handle = open(path, "a+b", buffering=0)  # noqa: SIM115 - held for the lock's life
        except OSError as exc:
            raise OutputError(f"{argument} {out}: cannot create the lock file {path.name} "
                              f"({exc.strerror or exc})", argument) from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise OutputError(f"{argument} {out}: cannot lock {path.name} "
                                  f"({exc.strerror or exc})", argument) from None
            holder = read_lock(path)
            raise LockedError(
                f"{argument} {out}: in use by {_describe_holder(holder)}; wait for it to finish "
                "or choose another output", argument) from None
        # The file may have been unlinked by the previous holder between our open and flock:
        # then we hold a lock nobody else can see; start over on the new file.
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            handle.close()
            continue
        handle.seek(0)
        stale = read_lock(path)
        if stale:
            log.info("%s: taking over the lock of %s, which is no longer running", out,
                     _describe_holder(stale))
        try:
            handle.truncate()
            handle.write((json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                      "command": command}) + "\n").encode())
        except OSError as exc:  # a full disk already
            handle.close()
            with contextlib.suppress(OSError):
                path.unlink()
            raise OutputError(f"{argument} {out}: cannot write the lock file {path.name} "
                              f"({exc.strerror or exc}); nothing was written", argument) from None
        return handle
    raise OutputError(f"{argument} {out}: could not take the lock {path.name}", argument)


# ---- provenance -----------------------------------------------------------------------------
def dataset_identity(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> dict:
    """A cheap identity of input files or folders: resolved paths plus a fingerprint.

    The fingerprint is a sha256 over every visible file's relative path, size and modification
    time (files up to ``SMALL_FILE`` bytes: their content instead; no data file is read), with the
    file count and total size alongside. Replacing, editing or adding a file changes it; moving
    the whole dataset changes ``paths``.

    Returns:
        ``{"paths": [...], "files": n, "bytes": total, "fingerprint": "sha256 hex"}``.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    digest = hashlib.sha256()
    count = total = 0
    resolved = []
    for root in paths:
        root = Path(root).resolve()
        resolved.append(str(root))
        for file in _visible_files(root):
            stat = file.stat()
            rel = file.name if file == root else str(file.relative_to(root))
            # Small files (manifests, YAML) by content: rewriting them unchanged (a no-op
            # `generate` rerun rebuilds manifest.csv) must not look like new data.
            stamp = sha256_file(file) if stat.st_size <= SMALL_FILE else stat.st_mtime_ns
            digest.update(f"{rel}\0{stat.st_size}\0{stamp}\n".encode())
            count += 1
            total += stat.st_size
    return {"paths": resolved, "files": count, "bytes": total, "fingerprint": digest.hexdigest()}


def _visible_files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    if not root.is_dir():
        return
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(folder) / name


def checkpoint_identity(folder: str | os.PathLike) -> dict:
    """Identity of a checkpoint directory: its resolved path and the sha256 of every file, as
    its own ``manifest.json`` records them (hashed here when it has none)."""
    folder = Path(folder).resolve()
    manifest = folder / "manifest.json"
    files: dict[str, str] = {}
    with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
        for name, meta in json.loads(manifest.read_text()).get("files", {}).items():
            files[name] = meta["sha256"]
    if not files:
        for file in _visible_files(folder):
            files[str(file.relative_to(folder))] = sha256_file(file)
    return {"path": str(folder), "sha256": files}


def record_path(out: str | os.PathLike, is_file: bool = False) -> Path:
    out = Path(out)
    return out.with_name(f".{out.name}.{RECORD_NAME}") if is_file else out / RECORD_NAME


def read_record(out: str | os.PathLike, is_file: bool = False) -> dict | None:
    """The provenance recorded for ``out`` (None when there is none)."""
    path = record_path(out, is_file)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        return data["provenance"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OutputError(f"out {out}: unreadable provenance record {path.name} ({exc})") from None


def record(out: str | os.PathLike, provenance: dict, command: str = "",
           is_file: bool = False) -> Path:
    """Write ``provenance`` (JSON-serialisable) as the record of ``out`` (atomically)."""
    from seisinv import __version__
    from seisinv.io import write_json

    path = record_path(out, is_file)
    write_json(path, {"format": RECORD_FORMAT, "command": command,
                      "seisinv_version": __version__, "provenance": _plain(provenance)})
    return path


def differences(earlier: dict, now: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two records (missing counts as None). Both are
    compared as JSON would store them (tuples as lists), so a record read back from disk equals
    the one it was written from."""
    if not prefix:
        earlier, now = _plain(earlier), _plain(now)
    found = []
    for key in sorted(set(earlier) | set(now), key=str):
        a, b = earlier.get(key), now.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            found += differences(a, b, name + ".")
        elif a != b:
            found.append(name)
    return found


def compare(out: str | os.PathLike, provenance: dict, is_file: bool = False) -> list[str]:
    """The keys of ``provenance`` that differ from the record of ``out`` ([] when equal or when
    ``out`` has no record yet)."""
    earlier = read_record(out, is_file)
    if earlier is None:
        return []
    return differences(earlier, provenance)


def _plain(obj: Any) -> Any:
    """JSON round trip, so tuples compare equal to the lists read back."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def describe_differences(earlier: dict, now: dict, keys: list[str]) -> str:
    """One phrase naming the differing ``keys`` (from ``differences``) with both values; a
    changed fingerprint or checksum reads "(files changed)"."""
    def get(d: dict, dotted: str):
        for part in dotted.split("."):
            d = d.get(part) if isinstance(d, dict) else None
        return d

    parts = []
    for key in keys[:6]:
        a, b = get(earlier, key), get(now, key)
        if ".sha256" in key:  # file names hold dots: name the checksummed thing only
            parts.append(f"{key.split('.sha256', 1)[0]} (files changed)")
        elif key.endswith("fingerprint"):
            parts.append(f"{key.rsplit('.', 1)[0]} (files changed)")
        else:
            parts.append(f"{key} {_short(a)} (now {_short(b)})")
    more = f" and {len(keys) - 6} more" if len(keys) > 6 else ""
    return ", ".join(dict.fromkeys(parts)) + more


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


# ---- overlap and foreign folders ------------------------------------------------------------
def check_out_not_inside_inputs(
    out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None], argument: str = "out",
) -> None:
    """Refuse an output that is an input, lies inside one, or contains one.

    Raises:
        OutputError: naming the output and the input it overlaps.
    """
    target = Path(out).resolve()
    for item in inputs:
        if item is None:
            continue
        source = Path(item).resolve()
        if target == source:
            raise OutputError(f"{argument} {out}: is the input {item}; writing there would "
                              "replace it. Choose another output", argument)
        if source in target.parents:
            raise OutputError(f"{argument} {out}: lies inside the input {item}; choose an "
                              "output outside the input", argument)
        if target in source.parents:
            raise OutputError(f"{argument} {out}: contains the input {item}; choose an "
                              "output that holds no input", argument)


def refuse_foreign(out: str | os.PathLike, command: str, own: Iterable[str] = (),
                   argument: str = "out", writes: Writes | None = None,
                   overwrite: bool = False) -> bool:
    """Refuse a non-empty folder that is not an output of ``command``.

    A folder is ``command``'s own when it holds ``provenance.json`` written by it; ``own`` lists
    further names that may exist before the record does (files of a first run killed early).
    A folder without a record that ``writes`` recognises as an older output of ``command`` is
    refused too, unless ``overwrite``.

    Returns:
        True when ``out`` is such an older output and ``overwrite`` asks to start again in it
        (the caller clears ``writes.names`` under its lock).
    """
    out = Path(out)
    if not out.is_dir():
        return False
    allowed = {RECORD_NAME, *own}
    # Locks and the temporaries of atomic writes (``.<name>.<random>.tmp``, seisinv.io) of a
    # concurrent writer of the same command are not foreign content.
    present = [p.name for p in out.iterdir() if not p.name.startswith(LOCK_NAME)
               and not (p.name.startswith(".") and p.name.endswith(".tmp"))]
    if not present:
        return False
    if RECORD_NAME in present:
        with contextlib.suppress(OSError, ValueError):
            made_by = json.loads((out / RECORD_NAME).read_text()).get("command", "")
            if made_by and made_by != command:
                raise OutputError(f"{argument} {out}: holds the output of {made_by!r}, not of "
                                  f"{command!r}; choose another output", argument)
        return False
    others = sorted(set(present) - allowed)
    if not others:
        return False
    if writes is not None and writes.marker in present:
        unrelated = sorted(set(others) - set(writes.names))
        if unrelated:
            raise OutputError(
                f"{argument} {out}: an older output of {command!r} that also holds files it "
                f"does not write ({_listed(unrelated)}); move them away or choose another "
                "output", argument)
        if overwrite:
            return True
        raise OutputError(
            f"{argument} {out}: an output of {command!r} from before provenance records (no "
            f"{RECORD_NAME}), so it cannot be resumed safely; pass overwrite=True to start "
            "again in it, or choose another output", argument)
    older = ("; an output of a seisinv without provenance records must be deleted or moved"
             if {"manifest.json", "generate.yaml"} & set(others) else "")
    raise OutputError(
        f"{argument} {out}: not empty and not an output of {command!r} (found "
        f"{_listed(others)}); choose an empty or new folder{older}", argument)


def _listed(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def clear_output(out: str | os.PathLike, is_file: bool = False,
                 only: Iterable[str] | None = None) -> None:
    """Delete an earlier output (keeping its lock): the folder's contents (``only``: just these
    names in it), or the file with its record and partial files."""
    out = Path(out)
    if is_file:
        for path in (out, record_path(out, True), *out.parent.glob(f".{out.name}.*")):
            if path.name.startswith(f".{out.name}{LOCK_NAME}"):
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        return
    selected = None if only is None else set(only)
    for path in out.iterdir():
        if path.name.startswith(LOCK_NAME) or (selected is not None and path.name not in selected):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


@contextlib.contextmanager
def claim_output(
    out: str | os.PathLike,
    command: str,
    provenance: dict,
    *,
    inputs: Iterable[str | os.PathLike | None] = (),
    overwrite: bool = False,
    own: Iterable[str] = (),
    writes: Writes | None = None,
    is_file: bool = False,
    lock_name: str = "",
    argument: str = "out",
) -> Iterator[Path]:
    """Lock ``out``, check it may be written, compare or record ``provenance``; see the module
    docstring.

    Args:
        out: output folder (or file when ``is_file``).
        command: e.g. "seisinv predict"; recorded, and shown to a concurrent writer.
        provenance: everything that changes the results (JSON-serialisable).
        inputs: paths the command reads; ``out`` may not overlap them.
        overwrite: delete an earlier output made with other provenance (or an older output
            without a record, see ``writes``) and start again.
        own: names a first run of ``command`` may leave before its record (see ``refuse_foreign``).
        writes: what ``command`` writes, to recognise its outputs older than provenance
            records; without it such a folder is refused as foreign.
        is_file: ``out`` is a single file.
        lock_name: an independent lock within ``out`` (see ``lock_output``).

    Yields:
        ``out`` as a Path.

    Raises:
        OutputError: overlap with an input, a foreign folder, other provenance (naming the
            keys that differ), or a path that cannot be created.
        LockedError: another process is writing ``out``.
    """
    out = Path(out)
    check_out_not_inside_inputs(out, inputs, argument)
    if is_file and out.exists() and not out.is_file():
        raise OutputError(f"{argument} {out}: exists and is not a file", argument)
    if not is_file and out.exists() and not out.is_dir():
        raise OutputError(f"{argument} {out}: exists and is not a folder", argument)
    older = False
    if not is_file:
        own = tuple(own)
        older = refuse_foreign(out, command, own, argument, writes, overwrite)
    elif out.exists() and read_record(out, True) is None:
        raise OutputError(f"{argument} {out}: exists and was not written by {command!r}; "
                          "choose another output", argument)
    with lock_output(out, command, is_file=is_file, name=lock_name, argument=argument) as lock:
        try:
            if older:
                log.warning("%s: deleting an older output of %s (no %s), as overwrite asks",
                            out, command, RECORD_NAME)
                clear_output(out, only=[*writes.names, *own])
            changed = compare(out, provenance, is_file)
            if changed:
                if not overwrite:
                    earlier = read_record(out, is_file) or {}
                    raise OutputError(
                        f"{argument} {out}: was made from other inputs or settings: "
                        f"{describe_differences(earlier, _plain(provenance), changed)}; rerun with the same "
                        "ones to resume, choose another output, or pass overwrite=True to "
                        "start again", argument)
                log.warning("%s: deleting the earlier output (%s differ), as overwrite asks",
                            out, ", ".join(changed[:3]))
                clear_output(out, is_file)
            if changed or read_record(out, is_file) is None:
                record(out, provenance, command, is_file)
            yield out
        except BaseException:
            # No result yet: remove the record and metadata this run (or an earlier failed one)
            # wrote; lock_output then removes the folder if this call created it.
            _remove_stub(out, is_file)
            raise
        finally:
            del lock


# Files a command writes before its first result: a first run that fails holding only these
# wrote nothing of value, and they are removed with it.
STUB_NAMES = (RECORD_NAME, "manifest.json", "fwi_config.json", "ensemble.json", "survey.yaml",
              "generate.yaml", ".progress")


def _remove_stub(out: Path, is_file: bool) -> None:
    """After a failed first run: remove the record, metadata stubs and empty folders if no
    result was written."""
    if is_file:
        if not out.exists():
            with contextlib.suppress(OSError):
                record_path(out, True).unlink()
        return

    def empty_tree(path: Path) -> bool:
        return path.is_dir() and all(empty_tree(p) for p in path.iterdir())

    with contextlib.suppress(OSError):
        entries = [p for p in out.iterdir() if not p.name.startswith(LOCK_NAME)]
        if all(p.name in STUB_NAMES or empty_tree(p) for p in entries):
            for p in entries:
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink()

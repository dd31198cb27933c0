"""Checkpoint directories: weights in safetensors, training state without pickle, atomic writes.

A checkpoint directory holds::

    model.safetensors    the trained weights (state dict of the unwrapped model)
    ema.safetensors      the EMA weights (when EMA is on)
    state.safetensors    every tensor of the training state (optimiser moments, RNG states, ...)
    state.json           the structure of that state: counters, optimiser groups, scaler, survey,
                         fitted pipeline, model config; tensors appear as {"__tensor__": key}
    config.yaml          the resolved TrainConfig
    manifest.json        sha256 and size of every file above, written last

Nothing is unpickled when reading. A directory is written under a temporary name and renamed
into place, so a reader sees the old checkpoint or the new one, never a half-written one; the
manifest's checksums turn a corrupted file into a ``CheckpointError`` before any weight is loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from seisinv.errors import CheckpointError
from seisinv.io import publish_mode, sha256_file, write_json, write_yaml

FORMAT_VERSION = 1
MODEL_FILE, EMA_FILE = "model.safetensors", "ema.safetensors"
STATE_TENSORS, STATE_JSON = "state.safetensors", "state.json"
CONFIG_FILE, MANIFEST = "config.yaml", "manifest.json"


# ---- nested state <-> (JSON, flat tensors) ------------------------------------------------
def flatten_state(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "s") -> Any:
    """Replace tensors / arrays inside nested dicts, lists and tuples by references.

    Tensors go into ``tensors`` under a unique key and become ``{"__tensor__": key}``; numpy
    arrays become ``{"__ndarray__": key}``; dicts with non-string keys (optimiser state is keyed
    by int) become ``{"__items__": [[key, value], ...]}``. The result is plain JSON.
    """
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": prefix}
    if isinstance(obj, np.ndarray):
        tensors[prefix] = torch.from_numpy(np.ascontiguousarray(obj).copy())
        return {"__ndarray__": prefix}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: flatten_state(v, tensors, f"{prefix}.{k}") for k, v in obj.items()}
        return {
            "__items__": [
                [k, flatten_state(v, tensors, f"{prefix}.{i}")]
                for i, (k, v) in enumerate(obj.items())
            ]
        }
    if isinstance(obj, (list, tuple)):
        return [flatten_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix} in a checkpoint")


def unflatten_state(obj: Any, tensors: dict[str, torch.Tensor], source: str = "state") -> Any:
    """Inverse of ``flatten_state``.

    Raises:
        CheckpointError: a reference to a tensor that ``tensors`` lacks.
    """
    if isinstance(obj, dict):
        for marker in ("__tensor__", "__ndarray__"):
            if marker in obj:
                key = obj[marker]
                if key not in tensors:
                    raise CheckpointError(
                        f"{source}: tensor {key!r} is missing from {STATE_TENSORS}"
                    )
                return tensors[key] if marker == "__tensor__" else tensors[key].numpy()
        if "__items__" in obj:
            return {k: unflatten_state(v, tensors, source) for k, v in obj["__items__"]}
        return {k: unflatten_state(v, tensors, source) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unflatten_state(v, tensors, source) for v in obj]
    return obj


# ---- writing ------------------------------------------------------------------------------


def _plain_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # clone: safetensors refuses tensors that share memory (tied weights).
    return {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}


def save_checkpoint(
    folder: str | os.PathLike,
    model_state: dict[str, torch.Tensor],
    ema_state: dict[str, torch.Tensor] | None,
    state: dict,
    config: dict,
) -> Path:
    """Write a checkpoint directory atomically (temporary directory, then rename).

    Args:
        folder: the checkpoint directory to create or replace (e.g. ``run/checkpoints/last``).
        model_state: the model's state dict.
        ema_state: the EMA model's state dict, or None.
        state: nested training state (counters, optimiser, RNG...), tensors allowed anywhere.
        config: the resolved TrainConfig as a plain dict.

    Returns:
        The folder.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        save_file(_plain_state_dict(model_state), str(tmp / MODEL_FILE))
        if ema_state is not None:
            save_file(_plain_state_dict(ema_state), str(tmp / EMA_FILE))
        tensors: dict[str, torch.Tensor] = {}
        structure = flatten_state(state, tensors)
        save_file(tensors, str(tmp / STATE_TENSORS))
        write_json(tmp / STATE_JSON, {"format": FORMAT_VERSION, "state": structure})
        write_yaml(tmp / CONFIG_FILE, config)
        files = sorted(p.name for p in tmp.iterdir() if not p.name.startswith("."))
        # mkdtemp makes 0700 and some writers 0600: give the usual 0777 / 0666 minus the umask.
        publish_mode(tmp, directory=True)
        for name in files:
            publish_mode(tmp / name)
        write_json(
            tmp / MANIFEST,
            {
                "format": FORMAT_VERSION,
                "files": {
                    n: {"sha256": sha256_file(tmp / n), "bytes": (tmp / n).stat().st_size}
                    for n in files
                },
            },
        )
        publish_mode(tmp / MANIFEST)
        _swap_in(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def clean_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the ``.<name>.*.tmp`` directories that saves killed mid-write left in ``folder``
    (e.g. ``RUN/checkpoints``); returns what was removed.

    A ``<name>.old`` directory is removed only when ``<name>`` itself is complete (a save killed
    between its two renames leaves ``.old`` as the only copy, which ``resolve_checkpoint_dir``
    reads).
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for path in sorted(folder.iterdir()):
        stale = path.name.startswith(".") and path.name.endswith(".tmp")
        if path.name.endswith(".old") and (path.with_name(path.name[:-4]) / MANIFEST).exists():
            stale = True
        if stale and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def link_checkpoint(source: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """Make ``folder`` a copy of the checkpoint directory ``source``, atomically.

    Files are hard links where the file system allows (checkpoint files are never modified in
    place, only replaced by a new directory, so a link costs no space and stays valid), else
    copies. Used for the checkpoint history and to publish ``best`` from a stretch's best.
    """
    source, folder = resolve_checkpoint_dir(source), Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        for path in source.iterdir():
            if path.name.startswith("."):
                continue
            try:
                os.link(path, tmp / path.name)
            except OSError:
                shutil.copy2(path, tmp / path.name)
        publish_mode(tmp, directory=True)
        _swap_in(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


# ---- reading ------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    """A verified checkpoint read from disk (nothing loaded into a model yet).

    Attributes:
        folder: where it was read from.
        model: the model's state dict.
        ema: the EMA state dict, or None.
        state: the nested training state.
        config: the resolved TrainConfig as a plain dict.
    """

    folder: Path
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor] | None
    state: dict
    config: dict


def resolve_checkpoint_dir(folder: str | os.PathLike) -> Path:
    """The directory to read: ``folder`` itself, or ``folder.old`` left by a save killed mid-rename.

    Raises:
        CheckpointError: neither exists.
    """
    folder = Path(folder)
    if (folder / MANIFEST).exists():
        return folder
    old = folder.with_name(folder.name + ".old")
    if not folder.exists() and (old / MANIFEST).exists():
        return old
    raise CheckpointError(f"{folder}: not a seisinv checkpoint directory ({MANIFEST} missing)")


def verify_checkpoint(folder: str | os.PathLike) -> Path:
    """Check that every file of the manifest is present with its recorded size and sha256.

    Raises:
        CheckpointError: naming the missing or corrupted file.
    """
    folder = resolve_checkpoint_dir(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{folder / MANIFEST}: unreadable checkpoint manifest ({exc})"
        ) from None
    for name in (MODEL_FILE, STATE_TENSORS, STATE_JSON, CONFIG_FILE):
        if name not in files:
            raise CheckpointError(f"{folder}: manifest does not list {name}")
    for name, meta in files.items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"{path}: missing from the checkpoint")
        if path.stat().st_size != meta["bytes"] or sha256_file(path) != meta["sha256"]:
            raise CheckpointError(
                f"{path}: corrupted (size or sha256 differs from {MANIFEST}); "
                "use another checkpoint (e.g. checkpoints/best or an earlier copy)"
            )
    return folder


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None


def read_checkpoint(folder: str | os.PathLike, with_state: bool = True) -> Checkpoint:
    """Verify and read a checkpoint directory into memory (CPU tensors).

    Args:
        folder: the checkpoint directory.
        with_state: also read the optimiser / RNG state (not needed for inference).

    Raises:
        CheckpointError: missing or corrupted files, unreadable JSON/YAML, unknown format.
    """
    folder = verify_checkpoint(folder)
    model = _load_tensors(folder / MODEL_FILE)
    ema = _load_tensors(folder / EMA_FILE) if (folder / EMA_FILE).exists() else None
    try:
        meta = json.loads((folder / STATE_JSON).read_text())
        config = yaml.safe_load((folder / CONFIG_FILE).read_text())
    except (OSError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise CheckpointError(f"{folder}: unreadable state.json or config.yaml ({exc})") from None
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(
            f"{folder / STATE_JSON}: checkpoint format {meta.get('format')!r}, "
            f"this seisinv reads format {FORMAT_VERSION}"
        )
    tensors = _load_tensors(folder / STATE_TENSORS) if with_state else {}
    structure = meta["state"]
    if not with_state:
        # Keep only the parts that hold no optimiser tensors (survey, pipeline, model config);
        # the pipeline's tensors are small, so read just those.
        pipeline_keys = _referenced_keys(structure.get("pipeline"))
        if pipeline_keys:
            all_tensors = _load_tensors(folder / STATE_TENSORS)
            tensors = {k: all_tensors[k] for k in pipeline_keys if k in all_tensors}
        structure = {
            k: structure[k]
            for k in ("survey", "pipeline", "model", "counters", "val")
            if k in structure
        }
    state = unflatten_state(structure, tensors, source=str(folder / STATE_JSON))
    return Checkpoint(folder=folder, model=model, ema=ema, state=state, config=config or {})


def _referenced_keys(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        for marker in ("__tensor__", "__ndarray__"):
            if marker in obj:
                return [obj[marker]]
        return [k for v in obj.values() for k in _referenced_keys(v)]
    if isinstance(obj, list):
        return [k for v in obj for k in _referenced_keys(v)]
    return []


def check_state_dict(
    module: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str
) -> None:
    """Check keys and shapes of ``state_dict`` against ``module`` before anything is loaded.

    Raises:
        CheckpointError: listing missing keys, unexpected keys, and shape mismatches.
    """
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = [
        f"{k} {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            parts.append(f"shape mismatch: {'; '.join(wrong[:3])}")
        raise CheckpointError(f"{source}: does not match the model: {'; '.join(parts)}")


def load_weights(module: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Check, then load ``state_dict`` into ``module`` (all or nothing)."""
    check_state_dict(module, state_dict, source)
    module.load_state_dict(state_dict, strict=True)


def _swap_in(tmp: Path, folder: Path) -> None:
    """Replace ``folder`` by the finished ``tmp`` folder: the old one moves aside to ``.old``
    first, so a kill at any point leaves either the old or the new checkpoint whole."""
    old = folder.with_name(folder.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)

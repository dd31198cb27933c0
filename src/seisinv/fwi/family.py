"""Each sample's velocity family for FWI, from a trained family classifier applied to its start.

``--prior auto`` chooses a prior per family (``seisinv.fwi.priors.choose_prior``); on test data
the family is unknown, so a ``family_classifier`` run (``seisinv train`` with ``task: family``)
names it from the starting map (a network's answer). The dataset's label, when there is one, is
the fallback without a classifier.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch

from seisinv.errors import ConfigError


def _load_classifier(run: str, device: str) -> torch.nn.Module:
    """The run's classifier, loaded once per checkpoint version: the cache key includes the
    checkpoint folder's manifest time, so a run retrained in the same process is reloaded."""
    from seisinv.training.checkpoint import MANIFEST
    from seisinv.training.run import find_checkpoint

    manifest = find_checkpoint(run, "best") / MANIFEST
    stamp = manifest.stat().st_mtime_ns if manifest.exists() else 0
    return _load_classifier_version(run, device, stamp)


@functools.lru_cache(maxsize=4)
def _load_classifier_version(run: str, device: str, stamp: int) -> torch.nn.Module:
    from seisinv.training import load_run

    model = load_run(run, device=device).model
    if not list(getattr(model, "families", None) or []):
        raise ConfigError(f"classifier {run!r}: the run's model has no 'families' list (train "
                          "it with task: family, model family_classifier)")
    return model


def start_families(classifier: str | torch.nn.Module, start: torch.Tensor) -> list[str]:
    """The family a classifier names for each ``(batch, nz, nx)`` start (survey units).

    Args:
        classifier: a family-classifier run directory, or a loaded model with ``families``
            (``forward(velocity (B, nz, nx)) -> (B, len(families))`` logits).
        start: starting maps, depth first, survey units.

    Returns:
        One family name per sample (the argmax of the logits).
    """
    from seisinv.models.family_classifier import classify

    model = (_load_classifier(str(classifier), str(start.device))
             if not isinstance(classifier, torch.nn.Module) else classifier)
    parameter = next(iter(model.parameters()), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    return classify(model, start.detach().to(device=device, dtype=torch.float32))


def sample_families(start: torch.Tensor, labels: Sequence[str | None] | None,
                    classifier: str | torch.nn.Module | None) -> tuple[list, list]:
    """``(family, source)`` lists per sample: the classifier's answer when one is given, else
    the dataset's label (source ``"label"``), else ``(None, None)``."""
    if classifier is not None:
        names = start_families(classifier, start)
        return names, ["classifier"] * len(names)
    labels = list(labels) if labels is not None else [None] * start.shape[0]
    labels = [label or None for label in labels]
    return labels, ["label" if label else None for label in labels]

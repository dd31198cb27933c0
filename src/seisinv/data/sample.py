"""The record every reader returns: one sample's gathers and, when known, its velocity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sample:
    """One seismic sample.

    Attributes:
        id: unique sample id within its dataset (folder name, ``<file stem>_<index>``, or Kaggle id).
        gathers: (shots, time, receivers) float32 pressure records.
        velocity: (nz, nx) float32 velocity in the survey's units, depth first; None for test data.
        family: velocity family ("flat", "curvefault", ...) when known, else None.
        survey: name of the survey the sample belongs to.
        synthetic: True for samples made by seisinv's generator (never placed in validation folds).
    """

    id: str
    gathers: np.ndarray
    velocity: np.ndarray | None = None
    family: str | None = None
    survey: str = "openfwi"
    synthetic: bool = False

"""Shared test fixtures. Tests run on the CPU with one thread per process and tiny grids."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data beside the checkout; tests using it skip when it is absent (users' machines)."""
    if not SHARED_DATA.exists():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_survey():
    """A small OpenFWI-like survey (32 x 32 at 10 m, 300 samples at 1 ms, 3 shots, 16 receivers)."""
    from seisinv.survey import OPENFWI

    return OPENFWI.replace(
        name="tiny",
        nz=32,
        nx=32,
        nt=300,
        source_x=(0.0, 150.0, 310.0),
        receiver_x=tuple(20.0 * i for i in range(16)),
    )

"""Moved to ``seisinv.metrics``; kept only until benchmarks/accuracy.py is updated."""

from seisinv.metrics import *  # noqa: F403
from seisinv.metrics import mae_per_sample, mape_per_sample, ssim_per_sample  # noqa: F401

"""Host-device synchronisations: one helper that reads device values, and a way to count them.

A GPU runs ahead of the Python that feeds it only while nothing asks for a value it has not
computed yet. ``.item()``, ``float(t)``, ``bool(t)`` (an ``if`` on a tensor), ``.tolist()`` and
``.numpy()`` each wait for the device. The training loop keeps losses, gradient norms and the
non-finite count on the device and reads them together through ``to_host`` once per logging
interval (and before a checkpoint is written).

``SyncCounter`` counts those reads: on CUDA it uses ``torch.cuda.set_sync_debug_mode("warn")``,
which flags every synchronising CUDA call; elsewhere (CPU: nothing really waits) it counts every
host read of a tensor (the Python methods above), which is what would synchronise on a GPU.
``benchmarks/train_syncs.py`` prints the count per optimiser step.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Sequence

import torch

_HOST_METHODS = ("item", "tolist", "numpy", "__float__", "__int__", "__bool__", "__index__")
# torch's own code reads host-resident bookkeeping tensors by design (AdamW's step counts, the
# DataLoader's seeds), which never wait for a GPU; the CPU count leaves them out.
_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep


def to_host(values: Sequence[torch.Tensor]) -> list[float]:
    """Read several scalar tensors (any devices) with one transfer: ``[float, ...]``.

    The tensors are stacked on the device of the first one and copied once, so reading a step's
    loss, its terms, the gradient norm and the non-finite count costs one synchronisation.
    """
    if not values:
        return []
    device = values[0].device
    stacked = torch.stack([v.detach().reshape(()).to(device, torch.float64) for v in values])
    return stacked.tolist()


class SyncCounter:
    """Count host-device synchronisations made inside the ``with`` block (main thread only).

    Usage::

        with SyncCounter(device) as syncs:
            ...training steps...
        syncs.count          # synchronisations seen
        syncs.where          # the first few call sites ("file:line"), to find them

    On CUDA the count is CUDA's own (every synchronising call, whoever makes it). On other
    devices every host read of a tensor's values from the main thread counts, except reads made
    by torch's own code (host-resident bookkeeping such as AdamW's step counters, which stays on
    the CPU on a GPU run too); DataLoader workers run in other processes and are not counted.
    """

    def __init__(self, device: torch.device | str = "cpu", keep_sites: int = 10) -> None:
        self.device = torch.device(device)
        self.count = 0
        self.where: list[str] = []
        self._keep = keep_sites
        self._saved: dict[str, object] = {}
        self._warnings = None
        self._records: list = []
        self._mode = 0

    def _note(self, site: str) -> None:
        self.count += 1
        if len(self.where) < self._keep:
            self.where.append(site)

    def __enter__(self) -> SyncCounter:
        if self.device.type == "cuda":
            self._mode = torch.cuda.get_sync_debug_mode()
            self._warnings = warnings.catch_warnings(record=True)
            self._records = self._warnings.__enter__()
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            return self
        main = threading.main_thread()
        counter = self

        def wrap(name, original):
            def counted(tensor, *args, **kwargs):
                caller = sys._getframe(1)
                if (threading.current_thread() is main and not getattr(counted, "busy", False)
                        and not caller.f_code.co_filename.startswith(_TORCH_DIR)):
                    counter._note(f"{caller.f_code.co_filename}:{caller.f_lineno} ({name})")
                    # A method implemented through another one (tolist -> item) counts once.
                    counted.busy = True
                    try:
                        return original(tensor, *args, **kwargs)
                    finally:
                        counted.busy = False
                return original(tensor, *args, **kwargs)

            return counted

        for name in _HOST_METHODS:
            original = getattr(torch.Tensor, name)
            self._saved[name] = original
            setattr(torch.Tensor, name, wrap(name, original))
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.set_sync_debug_mode(self._mode)
            for record in self._records:
                if "synchroniz" in str(record.message):
                    self._note(f"{record.filename}:{record.lineno}")
            self._warnings.__exit__(*exc)
            return
        for name, original in self._saved.items():
            setattr(torch.Tensor, name, original)
        self._saved = {}

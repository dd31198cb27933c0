"""The GPU path: CUDA against CPU, and batch sizes taken from the device's memory. Tests marked
``cuda`` skip on machines without a GPU (CI has none); the CPU fallbacks are checked here too."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seisinv.generation.common import MAX_GPU_BATCH, auto_batch
from seisinv.geology import generate_velocity
from seisinv.inference.predict import CPU_PREDICT_BATCH, auto_predict_batch
from seisinv.physics import simulate
from seisinv.physics.forward import simulate_bytes_per_sample
from seisinv.survey import OPENFWI

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class _Run:
    """The part of a LoadedRun that batch sizing reads: a device, a survey and ``predict``."""

    def __init__(self, device, survey):
        self.device, self.survey = torch.device(device), survey
        self.layer = torch.nn.Conv2d(survey.n_shots, 1, 3, padding=1).to(self.device)

    def predict(self, gathers):
        x = torch.as_tensor(gathers, device=self.device)
        shape = (self.survey.nz, self.survey.nx)
        return 2000.0 + torch.nn.functional.adaptive_avg_pool2d(self.layer(x), shape)[:, 0]


def test_predict_batch_on_a_cpu_is_the_fixed_default(tiny_survey):
    assert auto_predict_batch(_Run("cpu", tiny_survey)) == CPU_PREDICT_BATCH


@pytest.mark.cuda
@needs_cuda
def test_simulate_on_cuda_matches_the_cpu(tiny_survey):
    v = generate_velocity("curvefault", 2, tiny_survey, seed=0)
    cpu = simulate(v, tiny_survey, device="cpu").numpy()
    gpu = simulate(v, tiny_survey, device="cuda").cpu().numpy()
    assert np.linalg.norm(gpu - cpu) / np.linalg.norm(cpu) < 1e-4


@pytest.mark.cuda
@needs_cuda
def test_generate_batch_fits_the_gpus_free_memory():
    batch = auto_batch(OPENFWI, 500, "cuda")
    free, _ = torch.cuda.mem_get_info()
    assert 1 <= batch <= MAX_GPU_BATCH
    assert batch * simulate_bytes_per_sample(OPENFWI) <= free


@pytest.mark.cuda
@needs_cuda
def test_predict_batch_fits_the_gpus_free_memory(tiny_survey):
    batch = auto_predict_batch(_Run("cuda", tiny_survey))
    assert batch > CPU_PREDICT_BATCH


def test_torchrun_ranks_predict_disjoint_shares_into_one_store(tmp_path, tiny_survey,
                                                               monkeypatch):
    from helpers import ListSource

    from seisinv.data.sample import Sample
    from seisinv.inference.predict import predict
    from seisinv.inference.store import PredictionStore

    rng = np.random.default_rng(0)
    samples = [Sample(id=f"s{i}", gathers=rng.standard_normal(tiny_survey.gather_shape,
                                                              np.float32))
               for i in range(5)]
    source = ListSource(samples, tiny_survey)
    store = PredictionStore(tmp_path / "p", tiny_survey, source="test")
    run = _Run("cpu", tiny_survey)
    done = []
    for rank in (1, 0):  # rank 1 first: the split must not depend on what is already stored
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        done.append(predict(run, source, store, batch=None, progress=False))
    assert done == [2, 3]
    assert sorted(store.ids()) == [f"s{i}" for i in range(5)]

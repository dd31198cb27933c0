"""Distributed training on the CPU: two gloo processes must take the same step as one process.

The worker runs exactly what the training loop runs (``wrap_model``, ``EpochSampler``,
``forward_backward`` with gradient accumulation) on its shard; DDP averages the gradients, which
must equal the gradients of one process on the combined batch.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.data import DistributedSampler

from seisinv.survey import OPENFWI
from seisinv.training.config import LossConfig, LossTerm
from seisinv.training.distributed import EpochSampler, shard_indices
from seisinv.training.losses import Loss, LossContext
from seisinv.training.steps import forward_backward

SURVEY = OPENFWI.replace(
    name="tiny",
    nz=8,
    nx=8,
    nt=40,
    source_x=(0.0, 70.0),
    receiver_x=tuple(10.0 * i for i in range(8)),
)
N_SAMPLES, MICRO_BATCH, SEED = 8, 2, 3


class TinyNet(torch.nn.Module):
    """(batch, shots, time, receivers) -> (batch, nz, nx), no batch statistics."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(SURVEY.n_shots, 4, 3, padding=1)
        self.norm = torch.nn.GroupNorm(2, 4)
        self.head = torch.nn.Linear(4 * 4 * 4, SURVEY.nz * SURVEY.nx)

    def forward(self, gathers: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.adaptive_avg_pool2d(torch.relu(self.norm(self.conv(gathers))), 4)
        return SURVEY.vmin + (SURVEY.vmax - SURVEY.vmin) * torch.sigmoid(
            self.head(x.flatten(1)).view(-1, SURVEY.nz, SURVEY.nx)
        )


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    gathers = torch.randn(N_SAMPLES, *SURVEY.gather_shape, generator=generator)
    velocity = 1500 + 3000 * torch.rand(N_SAMPLES, SURVEY.nz, SURVEY.nx, generator=generator)
    return gathers, velocity


def _model() -> TinyNet:
    torch.manual_seed(SEED)
    return TinyNet()


def _loss() -> Loss:
    terms = [LossTerm(name="l1"), LossTerm(name="mse", weight=0.5)]
    return Loss(LossConfig(terms=terms), LossContext(SURVEY))


def _join_as(rank: int, world: int, port: int) -> None:
    """Set the variables torchrun would set for ``rank`` of ``world`` on localhost."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)


def _worker(rank: int, world: int, port: int, out: str) -> None:
    _join_as(rank, world, port)
    import torch.distributed as dist
    from safetensors.torch import save_file

    from seisinv.runtime import init_distributed
    from seisinv.training.distributed import all_reduce_sum, gather_objects, wrap_model

    info = init_distributed(torch.device("cpu"))
    assert info.world_size == world and dist.is_initialized()
    model = _model()
    ddp = wrap_model(model, torch.device("cpu"))
    sampler = EpochSampler(N_SAMPLES, seed=SEED, rank=rank, world_size=world)
    sampler.set_epoch(1)
    indices = list(sampler)
    gathers, velocity = _data()
    # Two micro-batches per process: exercises no_sync accumulation before the all-reduce.
    batches = [
        {
            "gathers": gathers[indices[i : i + MICRO_BATCH]],
            "velocity": velocity[indices[i : i + MICRO_BATCH]],
        }
        for i in range(0, len(indices), MICRO_BATCH)
    ]
    forward_backward(ddp, batches, _loss(), torch.device("cpu"))
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters()}
    counts = all_reduce_sum(torch.tensor([float(len(indices))]))
    everyone = gather_objects({"rank": rank, "indices": indices})
    grads["_count"] = counts
    grads["_indices"] = torch.tensor(sorted(i for part in everyone for i in part["indices"]))
    save_file(grads, str(Path(out) / f"rank{rank}.safetensors"))
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_average_to_the_combined_batch_gradient(tmp_path):
    from safetensors.torch import load_file

    # fork: the children inherit the imported modules instead of importing torch again.
    mp.start_processes(
        _worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True, start_method="fork"
    )
    ranks = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(2)]

    model = _model()
    gathers, velocity = _data()
    forward_backward(
        model, [{"gathers": gathers, "velocity": velocity}], _loss(), torch.device("cpu")
    )
    for name, param in model.named_parameters():
        assert torch.allclose(ranks[0][name], ranks[1][name]), f"{name}: ranks disagree"
        assert torch.allclose(ranks[0][name], param.grad, rtol=1e-4, atol=1e-6), name
        assert param.grad.abs().sum() > 0
    assert float(ranks[0]["_count"]) == N_SAMPLES
    assert ranks[0]["_indices"].tolist() == list(range(N_SAMPLES))


@pytest.mark.parametrize(("n", "world"), [(8, 2), (7, 2), (10, 3)])
def test_epoch_sampler_matches_distributed_sampler_and_resumes(n, world):
    dataset = list(range(n))
    for epoch in (0, 5):
        for rank in range(world):
            ours = EpochSampler(n, seed=SEED, rank=rank, world_size=world)
            ours.set_epoch(epoch)
            theirs = DistributedSampler(dataset, num_replicas=world, rank=rank, seed=SEED)
            theirs.set_epoch(epoch)
            assert ours.order() == list(theirs)
            assert len(ours) == len(theirs)
            ours.set_epoch(epoch, start=2)
            assert list(ours) == list(theirs)[2:] and len(ours) == len(theirs) - 2
    orders = []
    for epoch in (0, 1):
        sampler = EpochSampler(n, seed=SEED)
        sampler.set_epoch(epoch)
        orders.append(list(sampler))
        assert sorted(orders[-1]) == dataset
    assert orders[0] != orders[1]


def test_validation_shards_cover_every_sample_once():
    shards = [shard_indices(11, rank, 3) for rank in range(3)]
    assert sorted(i for shard in shards for i in shard) == list(range(11))


# ---- the whole loop under DDP ------------------------------------------------------------------
@pytest.fixture(scope="module")
def loop_data(tmp_path_factory, tiny_survey) -> dict[str, Path]:
    """The tiny OpenFWI-layout dataset of the single-process tests (``test_training.py``)."""
    from test_training import write_dataset

    return write_dataset(tmp_path_factory.mktemp("ddp-data"), tiny_survey)


def _loop_config(data: dict, batch_size: int):
    from test_training import tiny_config

    return tiny_config(
        data,
        "data.limit=8",
        "data.val_limit=3",
        f"batch_size={batch_size}",
        "epochs=2",
        "model.name=inversionnet",
        "model.options={width: 0.125, norm: none}",
        "ema.decay=0.5",
    )


def _train_worker(rank: int, world: int, port: int, data: dict, run_dir: str) -> None:
    _join_as(rank, world, port)
    import torch.distributed as dist

    from seisinv.training.trainer import train

    train(_loop_config(data, batch_size=2), run_dir)
    dist.destroy_process_group()


def test_two_process_training_matches_one_process_with_the_combined_batch(loop_data, tmp_path):
    import seisinv.models  # noqa: F401  (imported before fork: the workers inherit it)
    from seisinv.training import checkpoint as ckpt
    from seisinv.training.trainer import train

    single = train(_loop_config(loop_data, batch_size=4), tmp_path / "single")
    mp.start_processes(
        _train_worker,
        args=(2, _free_port(), loop_data, str(tmp_path / "ddp")),
        nprocs=2,
        join=True,
        start_method="fork",
    )
    a = ckpt.read_checkpoint(tmp_path / "single" / "checkpoints" / "last")
    b = ckpt.read_checkpoint(tmp_path / "ddp" / "checkpoints" / "last")
    assert a.state["counters"]["step"] == b.state["counters"]["step"] == single.total_steps == 4
    assert (a.state["counters"]["world_size"], b.state["counters"]["world_size"]) == (1, 2)
    for key in a.model:
        assert torch.allclose(a.model[key], b.model[key], rtol=1e-4, atol=1e-6), key
        assert torch.allclose(a.ema[key], b.ema[key], rtol=1e-4, atol=1e-6), key
    # Validation sharded over two processes still counts each of the 3 samples once.
    assert b.state["val"]["n"] == a.state["val"]["n"] == 3
    assert b.state["val"]["mae"] == pytest.approx(a.state["val"]["mae"], rel=1e-4)


# ---- the diffusion loss under DDP ------------------------------------------------------------
def _diffusion_worker(rank: int, world: int, port: int, out: str) -> None:
    """One step of the ``diffusion`` loss through ``forward_backward`` under DDP, and the same
    micro-batch's gradient of an unwrapped copy from the same random draws."""
    _join_as(rank, world, port)
    import copy

    import torch.distributed as dist
    from safetensors.torch import save_file

    from seisinv.models import create_model
    from seisinv.models.sizes import size_options
    from seisinv.runtime import init_distributed
    from seisinv.training.distributed import wrap_model

    init_distributed(torch.device("cpu"))
    torch.manual_seed(SEED)
    model = create_model("diffusion_vel", SURVEY, **size_options("diffusion_vel", "tiny"))
    local = copy.deepcopy(model)
    loss = Loss(LossConfig(terms=[LossTerm(name="diffusion")]), LossContext(SURVEY, None, model))
    local_loss = Loss(LossConfig(terms=[LossTerm(name="diffusion")]),
                      LossContext(SURVEY, None, local))
    gathers, velocity = _data()
    mine = slice(rank * 2, rank * 2 + 2)
    batch = [{"gathers": gathers[mine], "velocity": velocity[mine]}]
    torch.manual_seed(100 + rank)  # the DDPM draws (step, noise) of this rank
    forward_backward(local, batch, local_loss, torch.device("cpu"))
    torch.manual_seed(100 + rank)
    forward_backward(wrap_model(model, torch.device("cpu")), batch, loss, torch.device("cpu"))
    grads = {f"ddp.{n}": p.grad.detach().clone() for n, p in model.named_parameters()}
    grads.update({f"local.{n}": p.grad.detach().clone() for n, p in local.named_parameters()})
    save_file(grads, str(Path(out) / f"rank{rank}.safetensors"))
    dist.destroy_process_group()


def test_diffusion_loss_trains_under_ddp_with_averaged_gradients(tmp_path):
    """Two gloo processes: the ``diffusion`` term's gradients are all-reduced (both ranks hold
    the mean of the two ranks' own gradients), as for any loss."""
    from safetensors.torch import load_file

    import seisinv.models  # noqa: F401  (imported before fork: the workers inherit it)

    mp.start_processes(_diffusion_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2,
                       join=True, start_method="fork")
    ranks = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(2)]
    names = [k[len("ddp."):] for k in ranks[0] if k.startswith("ddp.")]
    assert names
    for name in names:
        mean = (ranks[0][f"local.{name}"] + ranks[1][f"local.{name}"]) / 2
        for rank in ranks:
            assert torch.allclose(rank[f"ddp.{name}"], mean, rtol=1e-4, atol=1e-7), name
    assert any(not torch.equal(ranks[0][f"local.{n}"], ranks[1][f"local.{n}"]) for n in names)

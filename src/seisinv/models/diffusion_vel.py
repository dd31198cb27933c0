"""Conditional diffusion velocity model in the spirit of DiffusionVel (seed 004).

A denoising U-Net over velocity maps, conditioned on a seismic encoder's features:

- **Maps.** Velocity ``v`` (survey units) is normalised to ``x = 2 (v - vmin) / (vmax - vmin) - 1``
  in [-1, 1] and replicate-padded to a grid divisible by ``2**levels``.
- **Seismic encoder.** The gathers ``(batch, shots, time, receivers)`` are resampled to
  ``encoder_time`` time samples (shots as channels), reduced along time by stride-(2, 1)
  convolution blocks and adaptively pooled to the padded map grid: ``cond_channels`` maps
  aligned with the velocity grid.
- **Denoiser.** A U-Net of residual blocks (GroupNorm, SiLU, 3 x 3 convolutions) with a
  sinusoidal time-step embedding added in every block; its input is ``x_t`` concatenated with
  the conditioning maps, and the conditioning is pooled into every level. It predicts the clean
  map ``x0`` through a tanh (the "x0 parameterisation" of DDPM; the noise follows from it).
- **Training (DDPM).** ``training_loss(gathers, velocity)``: a random step ``t`` per sample,
  ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps``, loss ``mean((x0_hat - x0)^2)`` per sample.
  The registered loss term ``diffusion`` uses it, so ``seisinv train`` trains the model: the
  loop calls ``model(gathers, velocity)``, which returns it (under DDP through the wrapper).
- **Sampling (DDIM).** ``sample(gathers, n_samples, steps, eta)`` runs ``steps`` DDIM updates
  from Gaussian noise (``eta=0``: deterministic given the noise); ``predict_with_spread`` returns
  the mean and standard deviation of the samples (prediction and its uncertainty, survey units).
- **forward.** Eval mode: the mean of ``n_samples`` DDIM samples with ``sample_steps`` steps,
  drawn from a generator seeded with ``sample_seed`` (reproducible predictions). Training mode: a
  one-step estimate (the denoiser at the last step on seeded noise), cheap and differentiable,
  so the ordinary distance losses and the model contract work as for every other model.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from seisinv.models.layers import conv_block
from seisinv.models.output import check_gathers
from seisinv.models.registry import MODELS
from seisinv.survey import Survey

Schedule = Literal["linear", "cosine"]


def noise_schedule(kind: str, timesteps: int) -> torch.Tensor:
    """``abar_t`` (cumulative product of ``1 - beta``), ``(timesteps,)`` float64, decreasing.

    ``linear``: betas from 1e-4 to 0.02 scaled to 1000 steps (Ho et al. 2020, DDPM);
    ``cosine``: Nichol & Dhariwal 2021 (offset 0.008, betas capped at 0.999).
    """
    if kind == "linear":
        scale = 1000.0 / timesteps
        betas = torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)
        return torch.cumprod(1.0 - betas.clamp(max=0.999), dim=0)
    if kind == "cosine":
        s = 0.008
        steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
        return torch.cumprod(1.0 - betas, dim=0)
    raise ValueError(f"schedule {kind!r}; use 'linear' or 'cosine'")


def ddim_timesteps(timesteps: int, steps: int) -> list[int]:
    """``steps`` distinct, descending time indices from ``timesteps - 1`` to 0 (even spacing)."""
    steps = max(1, min(steps, timesteps))
    grid = torch.linspace(timesteps - 1, 0, steps).round().long().tolist()
    return list(dict.fromkeys(grid))


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding ``(batch, dim)`` of integer steps ``t`` (Vaswani et al. / DDPM)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / max(1, half))
    angles = t.float()[:, None] * freqs[None]
    embedding = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    return F.pad(embedding, (0, dim - 2 * half))


def _groups(channels: int) -> int:
    return math.gcd(channels, 8)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, time embedding added in between, 1 x 1 skip."""

    def __init__(self, in_channels: int, out_channels: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(in_channels), in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.emb = nn.Linear(emb_dim, out_channels)
        self.norm2 = nn.GroupNorm(_groups(out_channels), out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.skip = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class SeismicEncoder(nn.Module):
    """Gathers ``(batch, shots, time, receivers)`` -> ``(batch, channels, gz, gx)`` maps."""

    def __init__(self, n_shots: int, time: int, width: int, channels: int, grid) -> None:
        super().__init__()
        self.time = time
        layers, c = [], n_shots
        length = time
        while length > 2 * grid[0] and len(layers) < 6:
            layers.append(conv_block(c, width, (7, 3), (2, 1), (3, 1), norm="instance"))
            c, length = width, (length + 1) // 2
        layers += [conv_block(c, width, 3, 1, 1, norm="instance")]
        self.convs = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(tuple(grid))
        self.project = nn.Conv2d(width, channels, 1)

    def forward(self, gathers: torch.Tensor) -> torch.Tensor:
        image = F.interpolate(
            gathers, size=(self.time, gathers.shape[-1]), mode="bilinear", align_corners=False
        )
        return self.project(self.pool(self.convs(image)))


class Denoiser(nn.Module):
    """``(x_t, t, cond)`` -> ``x0_hat`` in [-1, 1], all maps on the padded grid."""

    def __init__(self, base: int, levels: int, cond_channels: int, emb_dim: int) -> None:
        super().__init__()
        self.emb_dim = emb_dim
        self.time_mlp = nn.Sequential(
            nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        widths = [base * 2**i for i in range(levels + 1)]
        self.stem = nn.Conv2d(1 + cond_channels, widths[0], 3, 1, 1)
        self.cond_in = nn.ModuleList(nn.Conv2d(cond_channels, w, 1) for w in widths)
        self.down = nn.ModuleList(ResBlock(widths[i], widths[i], emb_dim) for i in range(levels))
        self.pool = nn.ModuleList(
            nn.Conv2d(widths[i], widths[i + 1], 3, 2, 1) for i in range(levels)
        )
        self.middle = ResBlock(widths[-1], widths[-1], emb_dim)
        self.up = nn.ModuleList(
            ResBlock(widths[i + 1] + widths[i], widths[i], emb_dim) for i in reversed(range(levels))
        )
        self.out = nn.Sequential(
            nn.GroupNorm(_groups(widths[0]), widths[0]), nn.SiLU(), nn.Conv2d(widths[0], 1, 3, 1, 1)
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.emb_dim))
        h = self.stem(torch.cat([x, cond], dim=1)) + self.cond_in[0](cond)
        skips = []
        for level, (block, pool) in enumerate(zip(self.down, self.pool, strict=True)):
            h = block(h, emb)
            skips.append(h)
            h = pool(h)
            h = h + self.cond_in[level + 1](F.adaptive_avg_pool2d(cond, h.shape[-2:]))
        h = self.middle(h, emb)
        for block, skip in zip(self.up, reversed(skips), strict=True):
            h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = block(torch.cat([h, skip], dim=1), emb)
        return torch.tanh(self.out(h))


class DiffusionVel(nn.Module):
    """Gathers ``(batch, shots, time, receivers)`` -> velocity ``(batch, nz, nx)`` survey units.

    Built by ``build_diffusion_vel``; see the module docstring.
    """

    def __init__(
        self,
        n_shots: int,
        nz: int,
        nx: int,
        vmin: float,
        vmax: float,
        timesteps: int,
        schedule: str,
        sample_steps: int,
        n_samples: int,
        eta: float,
        sample_seed: int,
        base_channels: int,
        levels: int,
        cond_channels: int,
        encoder_time: int,
        encoder_channels: int,
    ) -> None:
        super().__init__()
        self.n_shots, self.nz, self.nx, self.vmin, self.vmax = n_shots, nz, nx, vmin, vmax
        self.timesteps, self.sample_steps, self.n_samples = timesteps, sample_steps, n_samples
        self.eta, self.sample_seed = eta, sample_seed
        m = 2**levels
        self.grid = (math.ceil(nz / m) * m, math.ceil(nx / m) * m)
        self.register_buffer("abar", noise_schedule(schedule, timesteps).float(), persistent=False)
        self.encoder = SeismicEncoder(
            n_shots, encoder_time, encoder_channels, cond_channels, self.grid
        )
        self.denoiser = Denoiser(base_channels, levels, cond_channels, 4 * base_channels)

    # --- units -------------------------------------------------------------------------------
    def normalise(self, velocity: torch.Tensor) -> torch.Tensor:
        """``(batch, nz, nx)`` survey units -> ``(batch, 1, *grid)`` in [-1, 1], padded."""
        x = 2.0 * (velocity.float() - self.vmin) / (self.vmax - self.vmin) - 1.0
        pad = (0, self.grid[1] - self.nx, 0, self.grid[0] - self.nz)
        return F.pad(x[:, None], pad, mode="replicate") if any(pad) else x[:, None]

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., 1, *grid)`` in [-1, 1] -> ``(..., nz, nx)`` survey units (padding dropped)."""
        # float32 even under bf16/fp16 autocast (half precision would quantise velocities).
        x = x[..., 0, : self.nz, : self.nx].float().clamp(-1.0, 1.0)
        return self.vmin + (self.vmax - self.vmin) * (x + 1.0) / 2.0

    def condition(self, gathers: torch.Tensor) -> torch.Tensor:
        """The seismic encoder's maps ``(batch, cond_channels, *grid)``."""
        check_gathers(gathers, self.n_shots, "diffusion_vel")
        return self.encoder(gathers.float())

    # --- DDPM training ---------------------------------------------------------------------
    def training_loss(self, gathers: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
        """Per-sample DDPM loss ``(batch,)``: mean squared error of the predicted clean map.

        Args:
            gathers: ``(batch, shots, time, receivers)``, after the data pipeline.
            velocity: ``(batch, nz, nx)`` target, survey units.
        """
        x0 = self.normalise(velocity)
        batch = x0.shape[0]
        t = torch.randint(0, self.timesteps, (batch,), device=x0.device)
        abar = self.abar[t][:, None, None, None]
        x_t = abar.sqrt() * x0 + (1.0 - abar).sqrt() * torch.randn_like(x0)
        x0_hat = self.denoiser(x_t, t, self.condition(gathers))
        error = (x0_hat - x0)[..., : self.nz, : self.nx]
        return error.pow(2).mean(dim=(1, 2, 3))

    # --- DDIM sampling ---------------------------------------------------------------------
    def _generator(self, device: torch.device, seed: int | None) -> torch.Generator | None:
        if seed is None:
            return None
        return torch.Generator(device=device).manual_seed(seed)

    def sample(
        self,
        gathers: torch.Tensor,
        n_samples: int | None = None,
        steps: int | None = None,
        eta: float | None = None,
        seed: int | None = None,
    ) -> torch.Tensor:
        """DDIM samples ``(n_samples, batch, nz, nx)`` in survey units.

        Args:
            gathers: ``(batch, shots, time, receivers)``.
            n_samples, steps, eta: default to the model's ``n_samples``, ``sample_steps``,
                ``eta`` options (``eta=0``: deterministic DDIM; 1: DDPM-like noise).
            seed: seeds the noise (None: the global generator).
        """
        n = self.n_samples if n_samples is None else n_samples
        eta = self.eta if eta is None else eta
        cond = self.condition(gathers)
        batch = cond.shape[0]
        cond = cond.repeat(n, 1, 1, 1)
        generator = self._generator(cond.device, seed)
        shape = (n * batch, 1, *self.grid)
        x = torch.randn(shape, generator=generator, device=cond.device)
        times = ddim_timesteps(self.timesteps, self.sample_steps if steps is None else steps)
        for i, t in enumerate(times):
            t_batch = torch.full((n * batch,), t, device=cond.device, dtype=torch.long)
            x0 = self.denoiser(x, t_batch, cond).float()
            if i == len(times) - 1:
                x = x0
                break
            a_t, a_prev = self.abar[t], self.abar[times[i + 1]]
            eps = (x - a_t.sqrt() * x0) / (1.0 - a_t).sqrt()
            sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).clamp(min=0).sqrt()
            x = a_prev.sqrt() * x0 + (1 - a_prev - sigma**2).clamp(min=0).sqrt() * eps
            if eta > 0:
                x = x + sigma * torch.randn(shape, generator=generator, device=cond.device)
        return self.denormalise(x).reshape(n, batch, self.nz, self.nx)

    def predict_with_spread(
        self, gathers: torch.Tensor, n_samples: int | None = None, steps: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, std)``, each ``(batch, nz, nx)`` survey units, over DDIM samples.

        The inference side's uncertainty hook; seeded with ``sample_seed`` (reproducible).
        """
        samples = self.sample(gathers, n_samples, steps, seed=self.sample_seed)
        std = samples.std(dim=0) if samples.shape[0] > 1 else torch.zeros_like(samples[0])
        return samples.mean(dim=0), std

    def forward(self, gathers: torch.Tensor, velocity: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, shots, time, receivers)`` -> ``(batch, nz, nx)`` velocity, depth first.

        Eval: the mean of the DDIM samples. Training: the one-step estimate (see module doc).
        With ``velocity`` ``(batch, nz, nx)`` survey units: ``training_loss(gathers, velocity)``,
        ``(batch,)`` (the training loop's call for the ``diffusion`` loss term, so that under DDP
        the loss is computed inside the wrapper's forward and its gradients are all-reduced).
        """
        if velocity is not None:
            return self.training_loss(gathers, velocity)
        if not self.training:
            return self.predict_with_spread(gathers)[0]
        cond = self.condition(gathers)
        generator = self._generator(cond.device, self.sample_seed)
        noise = torch.randn((cond.shape[0], 1, *self.grid), generator=generator, device=cond.device)
        t = torch.full((cond.shape[0],), self.timesteps - 1, device=cond.device, dtype=torch.long)
        return self.denormalise(self.denoiser(noise, t, cond))


@MODELS.register("diffusion_vel")
def build_diffusion_vel(
    survey: Survey,
    *,
    pretrained: bool = False,
    timesteps: int = 1000,
    schedule: Schedule = "linear",
    sample_steps: int = 20,
    n_samples: int = 4,
    eta: float = 0.0,
    sample_seed: int = 0,
    base_channels: int = 32,
    levels: int = 3,
    cond_channels: int = 16,
    encoder_time: int = 256,
    encoder_channels: int = 32,
) -> DiffusionVel:
    """Conditional DDPM/DDIM velocity model sized for ``survey``.

    Args:
        survey: gives shots, the (nz, nx) grid and the velocity range.
        pretrained: accepted for a uniform interface; no pretrained weights exist (True fails).
        timesteps: diffusion steps T of training (DDPM: 1000).
        schedule: "linear" (DDPM) or "cosine" (improved DDPM) noise schedule.
        sample_steps: DDIM steps at prediction time.
        n_samples: samples averaged for the prediction (their std is the uncertainty).
        eta: DDIM stochasticity (0 deterministic given the initial noise).
        sample_seed: seed of the prediction-time noise (reproducible predictions).
        base_channels, levels: denoiser U-Net width and depth (grid padded to 2**levels).
        cond_channels: channels of the conditioning maps.
        encoder_time: time samples the gathers are resampled to in the seismic encoder.
        encoder_channels: width of the seismic encoder.
    """
    if pretrained:
        raise ValueError("diffusion_vel has no pretrained weights; use pretrained=False")
    noise_schedule(schedule, 2)
    if min(timesteps, sample_steps, n_samples, base_channels, levels, cond_channels) < 1:
        raise ValueError(
            "timesteps, sample_steps, n_samples, base_channels, levels and cond_channels "
            "must be >= 1"
        )
    if min(encoder_time, encoder_channels) < 1 or not 0.0 <= eta <= 1.0:
        raise ValueError("encoder_time and encoder_channels must be >= 1 and eta in [0, 1]")
    return DiffusionVel(
        survey.n_shots,
        survey.nz,
        survey.nx,
        survey.vmin,
        survey.vmax,
        timesteps,
        schedule,
        sample_steps,
        n_samples,
        eta,
        sample_seed,
        base_channels,
        levels,
        cond_channels,
        encoder_time,
        encoder_channels,
    )

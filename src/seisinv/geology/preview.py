"""A PNG grid of example maps per family (matplotlib, Agg backend): depth axis down, metres on
both axes, one colour bar in the survey's velocity units."""

from __future__ import annotations

import os
from pathlib import Path

from seisinv.errors import SeisinvError
from seisinv.geology.sampling import check_family, generate_velocity
from seisinv.io import atomic_open
from seisinv.survey import Survey


def preview_families(
    families: list[str],
    survey: Survey,
    out: str | os.PathLike,
    *,
    examples: int = 4,
    seed: int = 0,
    dpi: int = 80,
) -> Path:
    """Draw ``examples`` maps of each family (one row per family) and write them to ``out`` (PNG).

    Maps come from ``generate_velocity(family, examples, survey, seed)``; all panels share one
    colour scale ``[survey.vmin, survey.vmax]``. Returns the written path.
    """
    if not families:
        raise SeisinvError("preview: name at least one family")
    for family in families:
        check_family(family)
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise SeisinvError(f"preview output {out}: expected a .png file name")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width, depth = survey.nx * survey.dx, survey.nz * survey.dz
    panel_h = 2.0 * min(max(depth / width, 0.5), 3.0)
    fig, axes = plt.subplots(
        len(families), examples, figsize=(2.0 * examples + 1.0, panel_h * len(families) + 0.3),
        squeeze=False, constrained_layout=True,
    )
    image = None
    for row, family in enumerate(families):
        maps = generate_velocity(family, examples, survey, seed)
        for col in range(examples):
            ax = axes[row, col]
            # extent puts depth 0 at the top: imshow's origin="upper" draws row 0 first.
            image = ax.imshow(
                maps[col], cmap="viridis", vmin=survey.vmin, vmax=survey.vmax, aspect="equal",
                extent=(0.0, width, depth, 0.0), interpolation="nearest",
            )
            ax.tick_params(labelsize=6)
            ax.set_title(family, fontsize=8)
            if col == 0:
                ax.set_ylabel("depth (m)", fontsize=7)
            if row == len(families) - 1:
                ax.set_xlabel("x (m)", fontsize=7)
    bar = fig.colorbar(image, ax=axes, shrink=0.8)
    bar.set_label(f"velocity ({survey.units})")
    try:
        with atomic_open(out, "wb") as handle:
            fig.savefig(handle, format="png", dpi=dpi)
    except OSError as exc:
        raise SeisinvError(f"cannot write preview {out}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return out

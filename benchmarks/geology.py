"""Geology as OpenFWI draws it: fit, compare and the realism benchmark (issue 13).

Three subcommands, all reading real OpenFWI velocity maps from an ``.npz`` of
``{family: (n, 70, 70) float32 m/s}`` (default ``../shared/data/openfwi_real_train_maps.npz``,
keys ``FlatVel_A`` and ``CurveVel_A``) or an OpenFWI-layout dataset folder (``--real DIR``,
family taken from ``--family``):

``fit``      prints the FlatVel / CurveVel tables of ``seisinv/geology/openfwi.py`` measured from
             the real maps (layer counts, per-position thickness, velocity means, fold relief and
             spectrum), so the fitted numbers in the code can be checked and refitted.
``compare``  prints, per family and statistic (``seisinv.geology.stats``), the 5th / 50th / 95th
             percentiles of the real maps and of as many generated maps, and writes side-by-side
             example figures and value histograms to ``docs/img/geology_*.png``.
``realism``  (default) trains the ``tiny-openfwi`` recipe twice with the same seeds and settings:
             once on N generated maps of the matching seisinv families, once on N real maps;
             both are scored on the same held-out real maps (the last ``--n-test`` of each
             family, never trained on), MAE in m/s per family, and the ratio generated / real
             (target <= 1.05). Gathers are simulated with the ``openfwi`` preset on the CPU.

Usage::

    python benchmarks/geology.py realism              # default size: 18.5 min measured on a busy 2-core CPU
    python benchmarks/geology.py realism --quick      # smoke run (32 maps, 2 epochs)
    python benchmarks/geology.py compare
    python benchmarks/geology.py fit

Seeds: generated maps use ``--seed`` (samples ``sample_seed(seed, i)``); both trainings use
``--train-seed``; a rerun with the same arguments gives the same table up to CPU floating-point
nondeterminism in training.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REAL = ROOT.parent / "shared" / "data" / "openfwi_real_train_maps.npz"
RECIPE = "tiny-openfwi"


def load_real(path: Path, family: str | None) -> dict[str, np.ndarray]:
    """``{family: (n, 70, 70) float32 m/s}`` from an .npz of families or an OpenFWI folder."""
    from seisinv.survey import OPENFWI

    if not path.exists():
        sys.exit(f"{path}: not found (give --real FILE.npz or an OpenFWI dataset folder)")
    if path.suffix == ".npz":
        with np.load(path) as data:
            maps = {key: np.asarray(data[key], np.float32) for key in data.files}
        return {k: v for k, v in maps.items() if family is None or k == family}
    from seisinv.data import open_dataset

    source = open_dataset(path, OPENFWI)
    maps = np.stack([source[i].velocity for i in range(len(source))]).astype(np.float32)
    return {family or path.name: maps}


# ---------------------------------------------------------------------------------------- fit
def fit(real: dict[str, np.ndarray]) -> None:
    """Print the layer tables measured from layered real maps (FlatVel-like: one column)."""
    for name, maps in real.items():
        print(f"== {name}: {len(maps)} maps")
        counts = np.array([len(np.unique(m)) for m in maps])
        values, times = np.unique(counts, return_counts=True)
        print("distinct velocities per map:",
              {int(v): int(t) for v, t in zip(values, times, strict=True)})
        if np.all(maps == maps[:, :, :1]):  # flat layers: read the stack from column 0
            by_n: dict[int, list] = {}
            for m in maps:
                column = m[:, 0]
                tops = np.concatenate([[0], np.flatnonzero(np.diff(column)) + 1, [len(column)]])
                by_n.setdefault(len(tops) - 1, []).append((np.diff(tops), column[tops[:-1]]))
            for n in sorted(by_n):
                thick = np.array([t for t, _ in by_n[n]])
                values = np.array([v for _, v in by_n[n]])
                print(f"  {n} layers: p={len(thick) / len(maps):.3f}  first {thick[:, 0].mean():.1f}"
                      f" +- {thick[:, 0].std():.1f} [{thick[:, 0].min()}, {thick[:, 0].max()}]"
                      f"  middle {thick[:, 1:-1].mean():.1f} +- {thick[:, 1:-1].std():.1f}"
                      f"  velocity means {np.round(values.mean(axis=0)).astype(int).tolist()}")
            continue
        relief, spectra = [], []
        for m in maps:
            tops = [(m < v).sum(axis=0) for v in np.unique(m)[1:]]
            inside = [t for t in tops if ((t > 0) & (t < m.shape[0])).all()]
            if inside:
                curve = inside[0] - inside[0].mean()
                relief.append(curve.std())
                power = np.abs(np.fft.rfft(curve * np.hanning(len(curve)))) ** 2
                spectra.append(power / power.sum())
        print("  fold relief std (cells) deciles:",
              np.round(np.quantile(relief, np.linspace(0, 1, 11)), 2).tolist())
        print("  fold power share at 0..6 cycles:", np.round(np.mean(spectra, 0)[:7], 3).tolist())


# ------------------------------------------------------------------------------------ compare
def compare(real: dict[str, np.ndarray], seed: int, img: Path | None) -> None:
    """Statistic table real vs generated per family; figures to ``img`` (None: no figures)."""
    from seisinv.geology import generate_velocity
    from seisinv.geology.stats import summarise, value_histogram
    from seisinv.survey import OPENFWI

    generated = {k: generate_velocity(k, len(v), OPENFWI, seed) for k, v in real.items()}
    for name, maps in real.items():
        ours = summarise(generated[name])
        theirs = summarise(maps)
        print(f"\n{name} ({len(maps)} real maps vs {len(maps)} generated, seed {seed}): "
              "5th / 50th / 95th percentile")
        print(f"| statistic | real | seisinv `{name}` |\n|---|---|---|")
        for stat in theirs:
            fmt = "{:.3g} / {:.3g} / {:.3g}"
            print(f"| {stat} | {fmt.format(*theirs[stat])} | {fmt.format(*ours[stat])} |")
        bins = 6
        edges = np.linspace(OPENFWI.vmin, OPENFWI.vmax, bins + 1)
        rh = value_histogram(maps, bins, (OPENFWI.vmin, OPENFWI.vmax))
        gh = value_histogram(generated[name], bins, (OPENFWI.vmin, OPENFWI.vmax))
        print("| velocity bin (m/s) | real share | generated share |\n|---|---|---|")
        for k in range(bins):
            print(f"| {edges[k]:.0f}-{edges[k + 1]:.0f} | {rh[k]:.3f} | {gh[k]:.3f} |")
    if img is not None:
        write_figures(real, generated, img)


def write_figures(real: dict, generated: dict, img: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from seisinv.geology.stats import STATISTICS
    from seisinv.io import atomic_open
    from seisinv.survey import OPENFWI

    img.mkdir(parents=True, exist_ok=True)
    for name in real:
        fig, axes = plt.subplots(2, 6, figsize=(12, 4.4), constrained_layout=True)
        for row, (label, maps) in enumerate((("real", real[name]), ("seisinv", generated[name]))):
            for col in range(6):
                ax = axes[row, col]
                ax.imshow(maps[col * 37 % len(maps)], vmin=OPENFWI.vmin, vmax=OPENFWI.vmax,
                          cmap="viridis", interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if col == 0:
                    ax.set_ylabel(f"{label} {name}", fontsize=8)
        with atomic_open(img / f"geology_{name}_maps.png", "wb") as handle:
            fig.savefig(handle, format="png", dpi=70)
        plt.close(fig)
        fig, axes = plt.subplots(1, 4, figsize=(12, 2.8), constrained_layout=True)
        picks = ["layer count (centre column)", "vertical gradient (units/cell)",
                 "lateral gradient (units/cell)", "interface relief (cells)"]
        for ax, stat in zip(axes, picks, strict=True):
            r = STATISTICS[stat](real[name].astype(np.float64))
            g = STATISTICS[stat](generated[name].astype(np.float64))
            bins = np.histogram_bin_edges(np.concatenate([r, g]), bins=20)
            ax.hist(r, bins=bins, alpha=0.6, label="real")
            ax.hist(g, bins=bins, alpha=0.6, label="seisinv")
            ax.set_title(stat, fontsize=8)
            ax.tick_params(labelsize=7)
        axes[0].legend(fontsize=7)
        with atomic_open(img / f"geology_{name}_stats.png", "wb") as handle:
            fig.savefig(handle, format="png", dpi=70)
        plt.close(fig)
        print(f"wrote {img}/geology_{name}_maps.png and geology_{name}_stats.png")


# ------------------------------------------------------------------------------------ realism
def simulate_to(out: Path, velocity: np.ndarray, batch: int = 8) -> None:
    """Gathers for ``velocity`` (n, 70, 70) m/s with the openfwi preset, OpenFWI layout."""
    from seisinv.data.writers import write_stacked
    from seisinv.physics import simulate
    from seisinv.survey import OPENFWI

    if (out / "model" / "model1.npy").exists():
        return
    gathers = np.concatenate([simulate(velocity[i:i + batch], OPENFWI, device="cpu").numpy()
                              for i in range(0, len(velocity), batch)])
    write_stacked(out / "data" / "data1.npy", gathers, velocity, OPENFWI)


def train_and_score(train_dir: Path, run_dir: Path, tests: dict[str, Path], args) -> dict:
    """Train ``RECIPE`` on ``train_dir``; MAE (m/s) per test family of the best checkpoint."""
    from seisinv.data import open_dataset
    from seisinv.metrics import mae
    from seisinv.training import load_config, load_run, train

    overrides = [f"data.train=[{train_dir}]", f"epochs={args.epochs}", "batch_size=16",
                 "device=cpu", f"seed={args.train_seed}", "logging.progress=false",
                 "logging.tensorboard=false"]
    if not (run_dir / "checkpoints" / "best").exists():
        train(load_config(RECIPE, overrides), run_dir, echo=None)
    loaded = load_run(run_dir, device="cpu")
    scores = {}
    for family, test_dir in tests.items():
        source = open_dataset(test_dir, loaded.survey)
        pred, true = [], []
        for start in range(0, len(source), 16):
            samples = [source[i] for i in range(start, min(start + 16, len(source)))]
            gathers = np.stack([s.gathers for s in samples])
            pred.append(np.asarray(loaded.predict(gathers), np.float32))
            true.append(np.stack([s.velocity for s in samples]))
        scores[family] = mae(np.concatenate(pred), np.concatenate(true))
    return scores


def realism(real: dict[str, np.ndarray], args) -> None:
    import torch

    from seisinv.geology import generate_velocity
    from seisinv.survey import OPENFWI

    torch.set_num_threads(args.threads)
    families = sorted(real)
    n_test = args.n_test
    per_family = [args.n // len(families) + (k < args.n % len(families))
                  for k in range(len(families))]
    for name, count in zip(families, per_family, strict=True):
        if len(real[name]) < count + n_test:
            sys.exit(f"{name}: {len(real[name])} real maps, need {count} + {n_test}")
    # Folder names carry every size and seed, so a rerun reuses only what it would redo.
    out = args.out / f"n{args.n}-test{n_test}-seed{args.seed}"
    started = time.perf_counter()
    tests = {}
    for name in families:
        tests[name] = out / "test" / name
        simulate_to(tests[name], real[name][-n_test:])
    real_train = np.concatenate([real[k][:c] for k, c in zip(families, per_family, strict=True)])
    gen_train = np.concatenate([generate_velocity(k, c, OPENFWI, args.seed + i)
                                for i, (k, c) in enumerate(zip(families, per_family, strict=True))])
    simulate_to(out / "train-real", real_train)
    simulate_to(out / "train-generated", gen_train)
    simulated = time.perf_counter() - started
    print(f"gathers of {len(real_train) + len(gen_train) + n_test * len(families)} maps ready "
          f"(simulated now or earlier) in {simulated:.0f} s", flush=True)
    scores = {}
    for kind in ("generated", "real"):
        t0 = time.perf_counter()
        run_dir = out / f"run-{kind}-epochs{args.epochs}-train-seed{args.train_seed}"
        scores[kind] = train_and_score(out / f"train-{kind}", run_dir, tests, args)
        print(f"trained and scored on {kind} maps in {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"\nrealism: tiny-openfwi, {args.n} training maps ({', '.join(f'{c} {k}' for k, c in zip(families, per_family, strict=True))}), "
          f"{args.epochs} epochs, batch 16, train seed {args.train_seed}, generation seed "
          f"{args.seed} (+ family index), test: last {n_test} real maps per family, no TTA; "
          f"{time.perf_counter() - started:.0f} s in all")
    print("| test family | MAE trained on generated (m/s) | MAE trained on real (m/s) | ratio |")
    print("|---|---:|---:|---:|")
    for name in families:
        g, r = scores["generated"][name], scores["real"][name]
        print(f"| {name} | {g:.1f} | {r:.1f} | {g / r:.3f} |")
    g_all = np.mean([scores["generated"][k] for k in families])
    r_all = np.mean([scores["real"][k] for k in families])
    print(f"| all (mean) | {g_all:.1f} | {r_all:.1f} | {g_all / r_all:.3f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="realism",
                        choices=("realism", "compare", "fit"))
    parser.add_argument("--real", type=Path, default=DEFAULT_REAL,
                        help=".npz of {family: maps} or an OpenFWI dataset folder")
    parser.add_argument("--family", default=None, help="only this family (or the folder's name)")
    parser.add_argument("--n", type=int, default=600, help="training maps (both trainings)")
    parser.add_argument("--n-test", type=int, default=100, help="held-out real maps per family")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=13, help="generation seed")
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=Path("/tmp/seisinv-geology-bench"))
    parser.add_argument("--img", type=Path, default=ROOT / "docs" / "img",
                        help="compare: figure folder ('-' for none)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 32 maps, 2 epochs")
    args = parser.parse_args(argv)
    real = load_real(args.real, args.family)
    if args.command == "fit":
        fit(real)
    elif args.command == "compare":
        compare(real, args.seed, None if str(args.img) == "-" else args.img)
    else:
        if args.quick:
            args.n, args.n_test, args.epochs = 32, 8, 2
        realism(real, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

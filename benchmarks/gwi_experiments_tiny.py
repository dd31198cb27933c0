"""Tiny-size CPU figures of the packaged Kaggle GWI experiments (not Kaggle figures).

Builds a Kaggle-layout training tree with ``seisinv generate`` (``--per-family`` samples of
FlatVel_A, CurveVel_A, FlatFault_A, CurveFault_A on the OpenFWI survey, both file-name styles) and
a two-sample test folder, runs each experiment at ``--size tiny`` with ``train.steps=--steps``
per run, and prints the validation MAE / MAPE of each experiment's validation ensemble on fold 0
beside the training-mean-map baseline (``seisinv.evaluation.baselines.mean_map``). Fitted
ensembles (gwi-4th-place, gwi-sota-xattn) fit their weights on that same fold: their figure is
in-sample. Tiny models for a few hundred steps: the figures say that the pipelines learn, not
how good the full-size solutions are.

Usage::

    python benchmarks/gwi_experiments_tiny.py --out /tmp/gwi-tiny --steps 40
    python benchmarks/gwi_experiments_tiny.py --out /tmp/gwi-tiny --steps 200 \
        --only gwi-convnext-unet,gwi-4th-place
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

from seisinv.survey import OPENFWI

EXPERIMENTS = ("gwi-convnext-unet", "gwi-4th-place", "gwi-sota-xattn", "gwi-vit")
FAMILIES = ("FlatVel_A", "CurveVel_A", "FlatFault_A", "CurveFault_A")
TEST_IDS = ("000039dca2", "0001026c8a")


def make_tree(root: Path, per_family: int) -> Path:
    """``root/train_samples`` (Kaggle layout) and ``root/test``; reused when present."""
    from seisinv.generation.job import GenerateSpec, run_generate

    train = root / "train_samples"
    if (root / "test").is_dir():
        return train
    for seed, family in enumerate(FAMILIES):
        out = root / "generated" / family
        run_generate(GenerateSpec(survey=OPENFWI, families=(family,), n=per_family, seed=seed,
                                  per_file=per_family), out, device="cpu", progress=False)
        data = sorted((out / "data").glob("*.npy"))[0]
        model = sorted((out / "model").glob("*.npy"))[0]
        if "Fault" in family:
            targets = (train / family / "seis2_1_0.npy", train / family / "vel2_1_0.npy")
        else:
            targets = (train / family / "data" / "data1.npy", train / family / "model" / "model1.npy")
        for source, target in zip((data, model), targets, strict=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    shutil.rmtree(root / "generated")
    (root / "test").mkdir()
    gathers = np.load(train / "CurveVel_A" / "data" / "data1.npy")
    for sample_id, sample in zip(TEST_IDS, gathers[: len(TEST_IDS)], strict=True):
        np.save(root / "test" / f"{sample_id}.npy", sample)
    return train


def scores(out: Path, train: Path) -> tuple[float, float, float, float, int]:
    """(ensemble MAE, MAPE, mean-map MAE, MAPE, n) on the validation fold 0."""
    from seisinv.data import open_dataset
    from seisinv.data.folds import read_folds
    from seisinv.evaluation.baselines import mean_map
    from seisinv.inference.store import PredictionStore
    from seisinv.metrics import mae_per_sample, mape_per_sample

    pool = open_dataset(str(train), OPENFWI, require_velocity=True)
    folds = read_folds(out / "folds.csv")
    val = [i for i, s in enumerate(pool.ids) if folds.get(s) == 0]
    rest = [i for i, s in enumerate(pool.ids) if folds.get(s) not in (0, None)]
    truth = np.stack([pool[i].velocity for i in val])
    store = PredictionStore(out / "validation" / "ensemble")
    pred = np.stack([store.read(pool.ids[i]) for i in val])
    base = np.broadcast_to(mean_map(pool[i].velocity for i in rest), truth.shape)
    return (float(mae_per_sample(pred, truth).mean()), float(mape_per_sample(pred, truth).mean()),
            float(mae_per_sample(base, truth).mean()), float(mape_per_sample(base, truth).mean()),
            len(val))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/gwi-tiny"))
    parser.add_argument("--steps", type=int, default=40, help="training steps per run")
    parser.add_argument("--per-family", type=int, default=10, help="training samples per family")
    parser.add_argument("--only", default=",".join(EXPERIMENTS))
    args = parser.parse_args()

    from seisinv.experiment import load_experiment, run_experiment

    train = make_tree(args.out / "tree", args.per_family)
    print(f"| experiment (tiny, {args.steps} steps/run) | val n | ensemble MAE m/s | MAPE % | "
          "mean-map MAE m/s | MAPE % | wall s |")
    print("|---|---|---|---|---|---|---|")
    for name in args.only.split(","):
        out = args.out / f"{name}-steps{args.steps}"
        shutil.rmtree(out, ignore_errors=True)
        overrides = [f"train.steps={args.steps}"]
        tic = time.perf_counter()
        run_experiment(load_experiment(name, "tiny", overrides), [train],
                       args.out / "tree" / "test", out, size="tiny", overrides=overrides,
                       device="cpu", progress=False, echo=lambda line: None)
        wall = time.perf_counter() - tic
        mae, mape, base_mae, base_mape, n = scores(out, train)
        print(f"| {name} | {n} | {mae:.1f} | {100 * mape:.2f} | {base_mae:.1f} | "
              f"{100 * base_mape:.2f} | {wall:.0f} |", flush=True)


if __name__ == "__main__":
    main()

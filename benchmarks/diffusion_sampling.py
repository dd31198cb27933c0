"""Cost of the diffusion velocity model: one DDPM training step vs DDIM prediction per step count.

For ``diffusion_vel`` at a given size on the OpenFWI survey (gathers 5 x 1000 x 70), prints the
milliseconds per sample of ``training_loss`` forward + backward, and of ``predict_with_spread``
(``n_samples`` DDIM samples) for each number of DDIM steps, plus the mean spread of the samples
(untrained weights: the spread only shows that the samples differ, not calibration).

    python benchmarks/diffusion_sampling.py                      # full size, steps 1,5,20
    python benchmarks/diffusion_sampling.py --size tiny --steps 1,3,10 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="full", choices=("tiny", "full", "default"))
    parser.add_argument("--steps", default="1,5,20", help="comma-separated DDIM step counts")
    parser.add_argument("--samples", type=int, default=4, help="DDIM samples per prediction")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch

    from seisinv.models import count_parameters, create_model, size_options
    from seisinv.survey import OPENFWI

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    options = {} if args.size == "default" else size_options("diffusion_vel", args.size)
    model = create_model("diffusion_vel", OPENFWI, **options).to(device)
    gathers = torch.randn(args.batch, *OPENFWI.gather_shape, device=device)
    velocity = torch.full((args.batch, OPENFWI.nz, OPENFWI.nx), 3000.0, device=device)

    def timed(step) -> float:
        step()  # warm-up
        samples = []
        for _ in range(args.repeats):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            samples.append((time.perf_counter() - start) * 1000 / args.batch)
        return statistics.median(samples)

    def train_step() -> None:
        model.train().zero_grad(set_to_none=True)
        model.training_loss(gathers, velocity).mean().backward()

    print(
        f"diffusion_vel size={args.size} params={count_parameters(model):,} device={device} "
        f"threads={args.threads} batch={args.batch}"
    )
    print(f"training_loss fwd+bwd: {timed(train_step):.1f} ms/sample")
    model.eval()
    for steps in (int(s) for s in args.steps.split(",")):
        spread = {}

        def predict(steps=steps, spread=spread) -> None:
            with torch.no_grad():
                _, std = model.predict_with_spread(gathers, n_samples=args.samples, steps=steps)
            spread["mean"] = float(std.mean())

        ms = timed(predict)
        print(
            f"DDIM steps={steps:3d} samples={args.samples}: {ms:.1f} ms/sample, "
            f"mean spread {spread['mean']:.1f} m/s"
        )


if __name__ == "__main__":
    main()

"""Supervised STDP against the issue's targets and the published numbers (science.md section 4).

Run:  .venv/bin/python benchmarks/stdp_targets.py iris srtio3 --epochs 10 [--noise 0.2] [--seeds 5]

For each seed: split the dataset with that seed, train :class:`memsnn.learning.stdp.SupervisedSTDP`
(input coding from :meth:`STDPParams.for_dataset`) in-situ on the device preset (``none``: the float
baseline of the same rule) for ``--epochs`` epochs, and score the final epoch on the test split -
clean, or with Gaussian noise of standard deviation ``--noise`` added to the [0, 1] features (then
clipped). Prints each seed and the mean, standard deviation, minimum and maximum in %.

Targets (issue 5, in-situ srtio3): Iris >= 97 % (published 99.11 %), breast cancer >= 95 %
(97.9 %), Iris with 20 % input noise >= 90 % (93.4 %), digits >= 88 %. The published paper does not
say how its 20 % noise was made; here it is Gaussian with sigma = 0.2 of the feature range.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from memsnn.experiments.datasets import load_dataset
from memsnn.learning.loop import accuracy, fit
from memsnn.learning.stdp import STDPParams, SupervisedSTDP


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", help="iris, breast_cancer, digits, fashion_mnist")
    ap.add_argument("device", help="device preset for in-situ learning, or 'none' for float weights")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--noise", type=float, default=0.0, help="Gaussian input noise sigma at test time")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    device = None if a.device == "none" else a.device
    accs = []
    for seed in range(a.seeds):
        t0 = time.perf_counter()
        ds = load_dataset(a.dataset, seed=seed)
        params = STDPParams.for_dataset(ds.image_shape is not None, ds.n_features)
        m = SupervisedSTDP(ds.n_features, ds.n_classes, params, device=device, seed=seed)
        hist = fit(m, ds, epochs=a.epochs, progress=False, seed=seed)
        acc = float(hist.test_acc.iloc[-1])
        if a.noise > 0:
            g = torch.Generator().manual_seed(1000 + seed)
            x = (ds.x_test + a.noise * torch.randn(ds.x_test.shape, generator=g)).clamp(0, 1)
            acc = accuracy(m, x, ds.y_test)
        accs.append(100 * acc)
        print(f"seed {seed}: {100 * acc:.2f} %  pulses {m.counters().get('pulses', 0):.0f}  "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    print(f"{a.dataset} on {a.device}, noise {a.noise:g}, {a.epochs} epochs, {a.seeds} seeds: "
          f"mean {np.mean(accs):.2f} %  std {np.std(accs):.2f}  min {min(accs):.2f}  max {max(accs):.2f}")


if __name__ == "__main__":
    main()

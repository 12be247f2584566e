"""CSDP on sklearn digits: float (SGD, Adam) against in-situ (srtio3, SGD and sign updates).

Run: ``.venv/bin/python benchmarks/csdp_digits.py [epochs]``; prints one row per method with the
final test accuracy, pulses and programming energy. Single-threaded, CPU.
"""

from __future__ import annotations

import sys
import time

import torch

from memsnn.experiments.datasets import load_dataset
from memsnn.learning.csdp import CSDP
from memsnn.learning.loop import fit


def main(epochs: int = 8) -> None:
    torch.set_num_threads(1)
    ds = load_dataset("digits")
    runs = [("float-sgd", dict()), ("float-adam", dict(optimizer="adam")),
            ("srtio3-sgd", dict(device="srtio3")), ("srtio3-sign", dict(device="srtio3", optimizer="sign"))]
    for name, kw in runs:
        t0 = time.perf_counter()
        m = CSDP(ds.n_features, ds.n_classes, hidden=(128,), seed=0, **kw)
        h = fit(m, ds, epochs=epochs, progress=False)
        print(f"{name:12s} test_acc last {h.test_acc.iloc[-1]:.3f} best {h.test_acc.max():.3f} "
              f"train_acc {h.train_acc.iloc[-1]:.3f} pulses {int(h.pulses.iloc[-1])} "
              f"energy {h.energy_J.iloc[-1] * 1e9:.1f} nJ  {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8)

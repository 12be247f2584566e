"""How the pulse scheduler's step and quantisation change in-situ learning on digits / srtio3.

Each rule is built as ``memsnn compare`` builds it (:func:`memsnn.experiments.methods.build_method`:
128 hidden neurons, rate code T = 25, in-situ SGD learning rate 0.05 for ``sg``) and trained for
``--epochs`` epochs per seed, once per scheduler variant. A variant is a comma-separated list of
:class:`~memsnn.learning.scheduler.SchedulerParams` fields changed from the rule's own default
scheduler (``default`` changes nothing). Prints, per rule and variant, the final test accuracy of
each seed, their mean and the training pulses.

Run:  .venv/bin/python benchmarks/scheduler_variants.py --rules sg,csdp --seeds 0 1 2 \\
          --variants default k_max=8 quantisation=accumulate

Measured 2026-11-23, 1 thread, 10 epochs (benchmarks/README.md has the table): sg default
(state-aware, stochastic, k_max=1, cosine-annealed lr) 90.9 +- 0.9 % over seeds 0-4, 90.1 +- 1.0 %
with a constant lr (``--lr-final none``) and 83.6 +- 1.6 % with that and k_max=8 (the default
before); csdp nominal 63.3 / 77.3 / 82.0 %, default
(state-aware) 74.4 / 82.9 / 73.8 %, accumulate 77.6 / 73.1 / 80.4 % with a tenth of the pulses.
About 25-35 s (sg) and 50-100 s (csdp) per run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from memsnn.crossbar.coding import Encoder
from memsnn.experiments.datasets import load_dataset
from memsnn.experiments.methods import build_method
from memsnn.learning.loop import fit
from memsnn.learning.scheduler import SchedulerParams


def parse_variant(text: str) -> dict[str, object]:
    """``"step=nominal,k_max=4"`` -> ``{"step": "nominal", "k_max": 4}``; ``"default"`` -> ``{}``."""
    if text == "default":
        return {}
    out: dict[str, object] = {}
    for item in text.split(","):
        if "=" not in item:
            raise SystemExit(f"variant {text!r}: {item!r} is not FIELD=VALUE (or use 'default')")
        key, value = (s.strip() for s in item.split("=", 1))
        out[key] = int(value) if value.isdigit() else value
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", default="sg,csdp", help="comma-separated: stdp, sg, ssdp, csdp")
    ap.add_argument("--variants", nargs="+", default=["default", "quantisation=accumulate"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--device", default="srtio3")
    ap.add_argument("--lr-final", default=None,
                    help="sg / ssdp: InSituSGParams.lr_final (fraction of lr reached by cosine annealing; "
                         "'none': constant lr; default: the rule's default)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    variants = [(v, parse_variant(v)) for v in a.variants]
    for _, changes in variants:  # bad fields or values fail here, before any training
        SchedulerParams.from_dict(changes)
    for rule in a.rules.split(","):
        for name, changes in variants:
            accs, pulses = [], []
            for seed in a.seeds:
                ds = load_dataset("digits", seed=seed)
                extra = {"lr": 0.05} if rule in ("sg", "ssdp") else {}
                if rule in ("sg", "ssdp") and a.lr_final is not None:
                    extra["lr_final"] = None if a.lr_final == "none" else float(a.lr_final)
                m = build_method(rule, True, ds, device=a.device, encoder=Encoder(num_steps=25), hidden=(128,),
                                 rule_params=extra, scheduler=changes, seed=seed, epochs=a.epochs)
                t0 = time.perf_counter()
                h = fit(m, ds, epochs=a.epochs, progress=False, seed=seed)
                accs.append(100 * float(h.test_acc.iloc[-1]))
                pulses.append(float(h.pulses.iloc[-1]))
                print(f"{rule:5s} {name:28s} seed {seed}: {accs[-1]:.1f} %  pulses {pulses[-1]:.3g}  "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
            print(f"{rule:5s} {name:28s} mean {np.mean(accs):.1f} % (std {np.std(accs):.1f})  "
                  f"mean pulses {np.mean(pulses):.3g}", flush=True)


if __name__ == "__main__":
    main()

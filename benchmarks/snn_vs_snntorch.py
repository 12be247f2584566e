"""Spiking-network inference on crossbars (memsnn) vs snnTorch's digital ``Leaky`` network.

Run:  .venv/bin/python benchmarks/snn_vs_snntorch.py [--batch 128] [--steps 50] [--threads 2] [--device cpu|cuda]
      [--baseline COMMIT]

``--baseline COMMIT`` adds the two crossbar networks as memsnn had them at that commit (its
``memsnn`` package extracted with ``git archive`` and imported as ``memsnn_baseline``, as in
``crossbar_vs_aihwkit.py``), timed in the same rotation: a before / after under the same load.

Both run a 784-512-10 fully connected SNN for T = 50 steps on a batch of 128 rate-coded inputs
(the same spikes and the same trained-shape weights):

- snnTorch: ``nn.Linear -> snn.Leaky -> nn.Linear -> snn.Leaky`` stepped through time, the way its
  tutorials run it (float weights, no device).
- memsnn: the same network with both synapse layers on ``srtio3`` crossbars (256x256 tiles), with
  read noise (1 % per read and per input vector) and an 8-bit ADC and DAC per tile, programmed
  directly from the weights. Twice: with the preset's read noise relative to each device's
  conductance (its variance needs a second GEMM, fused into the first for spike inputs) and with
  ``read_noise_type="absolute"`` (1 % of the window; the variance follows from the input's norm).

memsnn runs multi-step (``mode="multi"``, the default: one VMM per layer over all ``T * B`` rows,
then the fused LIF time loop); the per-step memsnn crossbar network (``mode="step"``, stepped like
snnTorch) is shown beside it. Times are medians of alternating calls under ``torch.no_grad()``;
the ratio is memsnn / snnTorch (issue 15's targets: crossbars with read noise and ADC <= 1.0, the
float multi-step network <= 0.6). The float network reads its spikes event-driven on the CPU
(its default ``EventLinear`` synapses: only the weight rows of active inputs are summed);
"memsnn digital, dense GEMM" is the same network with ``spike_read = "dense"`` on each layer, which
does every layer's multiply-adds as snnTorch does, so the two rows separate the multi-step loop's
gain from the event-driven read's.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn


def build_snntorch(w1: torch.Tensor, w2: torch.Tensor, beta: float):
    import snntorch as snn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(784, 512, bias=False), nn.Linear(512, 10, bias=False)
            with torch.no_grad():
                self.fc1.weight.copy_(w1.t())
                self.fc2.weight.copy_(w2.t())
            self.lif1, self.lif2 = snn.Leaky(beta=beta), snn.Leaky(beta=beta)

        def forward(self, x):
            mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
            out = []
            for t in range(x.shape[0]):
                spk1, mem1 = self.lif1(self.fc1(x[t]), mem1)
                spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                out.append(spk2)
            return torch.stack(out)

    return Net()


def crossbar_networks(pkg: str, digital, dev: torch.device) -> dict:
    """The memsnn crossbar networks of package ``pkg`` (``"memsnn"`` or ``"memsnn_baseline"``),
    programmed with the weights of the float network ``digital``: relative and absolute read
    noise, multi-step, and absolute read noise per step."""
    import importlib

    xb = importlib.import_module(f"{pkg}.crossbar")
    net_mod = importlib.import_module(f"{pkg}.crossbar.network")
    make_device = importlib.import_module(f"{pkg}.device_models").make_device
    neurons = importlib.import_module(f"{pkg}.crossbar.neurons")
    w1, w2 = digital.weights()
    src = net_mod.SpikingNetwork([784, 512, 10], neuron=neurons.LIFParams(beta=digital.neurons[0].beta), seed=0)
    with torch.no_grad():
        src.synapses[0].weight.copy_(w1.t())
        src.synapses[1].weight.copy_(w2.t())
    kw = dict(method="direct", params=xb.CrossbarParams(tile_rows=256, tile_cols=256),
              periphery=xb.PeripheryParams(dac_bits=8, adc_bits=8, adc_bound=12.0), device=dev)
    rel, _ = src.to_crossbars("srtio3", **kw)
    absolute, _ = src.to_crossbars(make_device("srtio3", read_noise_type="absolute"), **kw)
    step, _ = src.to_crossbars(make_device("srtio3", read_noise_type="absolute"), **kw)
    step.mode = "step"
    return {"relative noise": rel, "absolute noise": absolute, "absolute, per step": step}


def main() -> None:
    from memsnn.crossbar.network import SpikingNetwork
    from memsnn.crossbar.neurons import LIFParams

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--device", default="cpu", help="torch device of both networks (cpu, cuda)")
    ap.add_argument("--baseline", default=None, metavar="COMMIT", help="also time memsnn's crossbar networks as of this commit")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    beta = 0.9
    digital = SpikingNetwork([784, 512, 10], neuron=LIFParams(beta=beta), seed=0)
    w1, w2 = digital.weights()
    ref = build_snntorch(w1, w2, beta).to(dev)
    nets = {f"memsnn srtio3, {k}": v for k, v in crossbar_networks("memsnn", digital, dev).items()}
    tmp = None
    if args.baseline:
        from crossbar_vs_aihwkit import load_baseline  # this script's directory is on sys.path

        tmp = tempfile.TemporaryDirectory()
        load_baseline(args.baseline, Path(tmp.name))
        torch.set_num_threads(args.threads)  # importing memsnn sets its own default
        base_nets = crossbar_networks("memsnn_baseline", digital, dev)
        nets.update({f"@{args.baseline[:9]} srtio3, {k}": v for k, v in base_nets.items() if "step" not in k})
    digital = digital.to(dev)
    x = (torch.rand(args.steps, args.batch, 784, generator=torch.Generator().manual_seed(0)) < 0.2).float().to(dev)

    def timed(f):
        def g():
            out = f()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            return out
        return g

    dense = copy.deepcopy(digital)
    for syn in dense.synapses:  # the same network with its GEMMs instead of the event-driven reads
        syn.spike_read = "dense"
    calls = {"snnTorch Leaky (digital)": lambda: ref(x), "memsnn digital": lambda: digital(x),
             "memsnn digital, dense GEMM": lambda: dense(x)}
    calls.update({k: (lambda net=net: net(x)) for k, net in nets.items()})
    runs = {k: timed(f) for k, f in calls.items()}
    times = {k: [] for k in runs}
    with torch.no_grad():
        for f in runs.values():
            f()
        for _ in range(args.repeats):
            for k, f in runs.items():
                t = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t)
    base = statistics.median(times["snnTorch Leaky (digital)"])
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    print(f"784-512-10, T={args.steps}, batch {args.batch}, {args.threads} threads, {name}, torch {torch.__version__}")
    print(f"{'network':44s} {'time':>10s} {'vs snnTorch':>12s}")
    for k, v in times.items():
        m = statistics.median(v)
        print(f"{k:44s} {m * 1e3:8.1f}ms {m / base:11.2f}x")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()

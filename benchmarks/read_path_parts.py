"""Where the time of one crossbar layer's multi-step read goes: GEMM, read-noise normals, the rest.

Run:  .venv/bin/python benchmarks/read_path_parts.py [--threads 2] [--repeats 15] [--noise absolute|relative]

The first layer of ``snn_vs_snntorch.py``'s network: a 784x512 srtio3 crossbar (256x256 tiles,
8-bit DAC / ADC) reading ``T * B = 6400`` rows of rate-coded spikes (20 %). Timed in rotation
(medians, ms): the per-tile GEMMs of the 13 row chunks alone; the 13.1 M read-noise
normals as torch's serial sampler draws them (``torch.randn`` with one generator) and as the
crossbar's :class:`~memsnn.crossbar.noise_stream.NoiseStream` draws them (chunks on
``--threads`` threads); and the whole ``Crossbar.vmm``. The gap between the whole read and the
first two parts is the elementwise work (noise addition, ADC, tile sums).
"""

from __future__ import annotations

import argparse

import torch


def main() -> None:
    from memsnn.crossbar import Crossbar, CrossbarParams, PeripheryParams
    from memsnn.device_models import make_device

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--noise", default="absolute", choices=("absolute", "relative"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)  # after memsnn's import, which sets its own default
    xbar = Crossbar(784, 512, make_device("srtio3", read_noise_type=args.noise),
                    params=CrossbarParams(tile_rows=256, tile_cols=256),
                    periphery=PeripheryParams(dac_bits=8, adc_bits=8, adc_bound=12.0))
    xbar.program(torch.rand(784, 512, generator=torch.Generator().manual_seed(0)) * 0.2 - 0.1, method="direct")
    x = (torch.rand(6400, 784, generator=torch.Generator().manual_seed(1)) < 0.2).float()
    g = xbar._scaled(xbar._cached(), "gdiff", xbar.periphery.v_read / xbar.periphery.x_max)
    gen = torch.Generator().manual_seed(0)
    width = xbar.n_tiles[0] * xbar.out_features
    parts = {
        "GEMMs (13 row chunks of 512)": lambda: [xbar._tile_mm(x[i:i + 512], g) for i in range(0, 6400, 512)],
        "normals, torch.randn (serial)": lambda: torch.randn(6400, width, generator=gen),
        f"normals, NoiseStream ({args.threads} threads)": lambda: xbar.noise_stream.draw(6400),
        "whole Crossbar.vmm": lambda: xbar.vmm(x, binary=True),
    }
    from crossbar_vs_aihwkit import timeit_rotation  # this script's directory is on sys.path

    with torch.no_grad():
        medians = timeit_rotation(list(parts.values()), args.repeats)
    print(f"784x512 srtio3, {args.noise} read noise, 6400 spike rows, {args.threads} threads, torch {torch.__version__}")
    for k, m in zip(parts, medians):
        print(f"{k:42s} median {m * 1e3:7.1f} ms")

if __name__ == "__main__":
    main()

"""memsnn against aihwkit, side by side: the validation report of issue 8.

Run:  .venv/bin/python benchmarks/aihwkit_validation.py [--out runs] [--seeds 20] [--epochs 8] [--skip-training]

Writes a new ``runs/aihwkit-validation-*`` directory (never an existing one) with ``report.md`` and
one CSV per check, and prints the summary tables:

1. export fidelity - every memsnn preset exported to aihwkit (piecewise, and soft bounds where the
   law has them), stepped with the same pulse trains on both sides
   (:func:`memsnn.interop.aihwkit_export.fidelity_report`), with a PNG per export;
2. import - every aihwkit preset imported into memsnn, noise-free trajectories of 300 up then 300
   down pulses compared pulse by pulse;
3. drift statistics - memsnn ``pcm`` vs ``PCMLikeNoiseModel`` at 1 h and 1 day
   (:func:`memsnn.interop.validation.drift_statistics`, as used and with matched conventions);
4. pulse response - imported ``ReRamESPresetDevice`` vs aihwkit's mean step curve
   (:func:`memsnn.interop.validation.step_curves`, 16 384 devices per side);
5. training - in-situ SG on digits with the rram soft-bounds device on the native and the aihwkit
   backend (:func:`memsnn.interop.validation.training_agreement`; about 6 minutes for 20 seeds).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def _table(df: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """A markdown table (no extra dependency)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = [format(v, floatfmt) if isinstance(v, (float, np.floating)) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def export_fidelity(out: Path) -> pd.DataFrame:
    from memsnn.interop.aihwkit_export import export_device

    rows = []
    for preset, kinds in (("srtio3", ("piecewise", "softbounds")), ("ideal", ("piecewise",)), ("pcm", ("piecewise",)),
                          ("rram", ("softbounds", "piecewise"))):
        for kind in kinds:
            t0 = time.perf_counter()
            exp = export_device(preset, kind=kind, n_devices=256, max_pulses=1000, seed=0)
            rep = exp.fidelity
            rep.plot(out / f"fidelity_{preset}_{kind}.png", title=f"{preset} -> aihwkit {type(exp.device).__name__}")
            rows.append({"preset": preset, "kind": kind, **rep.summary(), "not_carried": len(exp.not_carried),
                         "seconds": time.perf_counter() - t0})
    return pd.DataFrame(rows)


def import_trajectories() -> pd.DataFrame:
    from aihwkit.simulator.presets import devices as presets

    from memsnn.interop.aihwkit_backend import apply_slots, make_tile
    from memsnn.interop.aihwkit_export import noise_free
    from memsnn.interop.aihwkit_import import import_device

    rows = []
    for name in ("ReRamESPresetDevice", "ReRamSBPresetDevice", "CapacitorPresetDevice", "EcRamPresetDevice",
                 "EcRamMOPresetDevice", "IdealizedPresetDevice", "GokmenVlasovPresetDevice", "PCMPresetDevice",
                 "ReRamArrayOMPresetDevice", "ReRamArrayHfO2PresetDevice"):
        dev = getattr(presets, name)()
        res = import_device(dev, g_min=10e-6, g_max=110e-6)
        m = res.model
        quiet = type(m)(m.params.replace(step_std=0.0, write_noise_std=0.0, step_dtod=0.0, up_down_dtod=0.0,
                                         g_min_dtod=0.0, g_max_dtod=0.0, g_init=m.params.g_min))
        signs = [1] * 300 + [-1] * 300
        st = quiet.init_state((1,), dtype=torch.float64)
        g_m = [float(quiet.conductance_longterm(st)[0])]
        tile = make_tile(noise_free(dev), 1, 1)
        tile.set_weights(torch.tensor([[res.w_min]]), apply_weight_scaling=False)
        w_a = [res.w_min]
        for s in signs:
            st = quiet.apply_pulses(st, torch.tensor([s], dtype=torch.int32))
            g_m.append(float(quiet.conductance_longterm(st)[0]))
            apply_slots(tile, torch.ones(1, 1), torch.full((1, 1), float(s)))
            w_a.append(float(tile.get_weights(apply_weight_scaling=False)[0]))
        err = np.abs(np.asarray(g_m) - res.to_conductance(np.asarray(w_a))) / m.params.window
        rows.append({"aihwkit preset": name, "memsnn model": m.preset, "max error (window)": float(err.max()),
                     "rms error (window)": float(np.sqrt((err**2).mean())), "not carried": len(res.not_carried)})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs", help="parent of the new run directory (default runs/)")
    ap.add_argument("--seeds", type=int, default=20, help="seeds of the training check (default 20)")
    ap.add_argument("--epochs", type=int, default=8, help="epochs of the training check (default 8)")
    ap.add_argument("--skip-training", action="store_true", help="skip the (6-minute) training check")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args(argv)
    for name in ("seeds", "epochs", "threads"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    torch.set_num_threads(args.threads)

    from memsnn.experiments.rundir import new_run_dir
    from memsnn.interop.validation import drift_statistics, step_curves, training_agreement

    out = new_run_dir(args.out, "aihwkit-validation")
    sections = [f"# memsnn vs aihwkit validation\n\n`{' '.join(['benchmarks/aihwkit_validation.py'] + (argv or sys.argv[1:]))}`, "
                f"torch {torch.__version__}, {args.threads} thread(s), {time.strftime('%Y-%m-%d %H:%M')}\n"]

    def record(title: str, df: pd.DataFrame, csv: str, note: str = "") -> None:
        df.to_csv(out / csv, index=False)
        print(f"\n== {title}\n{df.to_string(index=False)}")
        sections.append(f"## {title}\n\n{note}\n\n{_table(df)}\n")

    t0 = time.perf_counter()
    record("Export fidelity (errors in units of the window)", export_fidelity(out), "export_fidelity.csv",
           "Same pulse trains on both sides: the noise-free mean device (nominal) and 256 devices with every spread "
           "on (mean, and the median ratio of the spreads aihwkit / memsnn).")
    record("Import: noise-free trajectories, 300 up + 300 down pulses", import_trajectories(), "import.csv")
    for matched in (False, True):
        df = drift_statistics(matched=matched)
        record(f"Drift statistics, pcm vs PCMLikeNoiseModel ({'matched conventions' if matched else 'as used'})",
               df, f"drift_{'matched' if matched else 'as_used'}.csv",
               "Means and standard deviations in uS over 20 000 devices per level; z = difference / its standard error. "
               "Tolerance: " + ("|z| < 5." if matched else "3 % on the mean, 6 % on the spread (the nu convention)."))
    df = step_curves()
    record("Pulse response: imported ReRamESPresetDevice vs aihwkit (16 384 devices)", df.round(4), "step_curves.csv",
           "Mean change per pulse in units of dw_min; tolerance |z_mean| < 5; nominal = noise-free mean device.")
    if not args.skip_training:
        df = training_agreement(seeds=tuple(range(args.seeds)), epochs=args.epochs)
        piv = df.pivot(index="seed", columns="backend", values="test_acc")
        summary = pd.DataFrame({"backend": ["native", "aihwkit"],
                                "mean test accuracy (last 3 epochs)": [piv.native.mean(), piv.aihwkit.mean()],
                                "std over seeds": [piv.native.std(), piv.aihwkit.std()],
                                "mean wall s": [df[df.backend == b].wall_s.mean() for b in ("native", "aihwkit")]})
        df.to_csv(out / "training_runs.csv", index=False)
        record(f"Training: in-situ SG, digits, rram, {args.seeds} seeds x {args.epochs} epochs", summary,
               "training.csv", f"Difference of the means: {100 * (piv.aihwkit.mean() - piv.native.mean()):+.2f} points "
               f"(target: within 2); paired per-seed difference std {100 * (piv.aihwkit - piv.native).std():.1f} points.")
    sections.append(f"Total time {time.perf_counter() - t0:.0f} s.\n")
    (out / "report.md").write_text("\n".join(sections))
    print(f"\nwrote {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``memsnn`` command line. Each subcommand validates its input before any long work starts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main", "build_parser"]


def _cmd_devices(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..device_models import PRESETS

    rows = []
    for name, cls in PRESETS.items():
        row = cls().key_numbers()
        row["source"] = cls.source
        rows.append(row)
    table = pd.DataFrame(rows).set_index("preset")
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_colwidth", 60):
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    print("\nunits: conductances and steps in nS at the window middle; c2c, read noise relative; "
          "tau in s; energy per SET pulse in pJ")
    if args.plot:
        from ..device_models.plots import plot_device

        out = Path(args.plot)
        names = args.preset or list(PRESETS)
        for name in names:
            if name not in PRESETS:
                raise SystemExit(f"error: unknown preset {name!r}; choose from {', '.join(PRESETS)}")
        # refuse before any work if a plot would be overwritten
        if not args.overwrite:
            clash = [out / f"{n}_{kind}.png" for n in names for kind in ("pulse_response", "volatile", "drift")]
            clash = [str(p) for p in clash if p.exists()]
            if clash:
                raise SystemExit(f"error: {len(clash)} plot(s) already exist, e.g. {clash[0]}; pass --overwrite to replace them")
        for name in names:
            for path in plot_device(PRESETS[name](), out, overwrite=args.overwrite):
                print(f"wrote {path}")
    return 0


def _parse_pairs(items: Sequence[str], option: str, example: str) -> dict[str, str]:
    """``["KEY=VALUE", ...]`` from a repeatable option -> ``{KEY: VALUE}`` (both stripped)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"{option} {item!r} must look like KEY=VALUE, e.g. {example}")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _parse_fixed(items: Sequence[str]) -> dict[str, float]:
    fixed = {}
    for key, value in _parse_pairs(items, "--fix", "r_dtod=0.1").items():
        try:
            fixed[key] = float(value)
        except ValueError:
            raise ValueError(f"--fix {key}={value}: {value!r} is not a number") from None
    return fixed


def _cmd_fit_device(args: argparse.Namespace) -> int:
    from ..device_models.fitting import fit_device
    from ..files import check_writable

    out = Path(args.out)
    plot = Path(args.plot) if args.plot else out.with_suffix(".png")
    check_writable(out, args.overwrite)
    check_writable(plot, args.overwrite)
    fit = [s.strip() for s in args.fit.split(",") if s.strip()] if args.fit else None
    result = fit_device(args.data, args.model, fit=fit, fixed=_parse_fixed(args.fix), noise=not args.no_noise)
    for name, value in result.values.items():
        print(f"{name:>18s} = {value:.6g} +- {result.stderr[name]:.2g}")
    for name, pop in result.population.items():  # several devices
        field = f" -> {pop['dtod_field']} = {pop['dtod']:.3g}" if pop["dtod_field"] else " (no d2d field in the preset)"
        print(f"{name:>18s}: spread between {len(result.devices)} devices {pop['sd_between']:.3g}{field}")
    print(f"{'rmse':>18s} = {result.rmse:.4g} S (one step ahead) over {len(result.data)} points ({result.message})")
    print(f"method: {result.method}")
    result.save_json(out, overwrite=args.overwrite)
    result.plot(plot, overwrite=args.overwrite)
    print(f"wrote {out} and {plot}")
    return 0 if result.success else 1


def _cmd_export_maps(args: argparse.Namespace) -> int:
    from ..crossbar.maps import export_maps  # noqa: F401  (fail early if missing)
    from ..crossbar.storage import load_crossbars

    formats = tuple(s.strip() for s in args.format.split(",") if s.strip())
    allowed = ("csv", "npz", "png")
    bad = [f for f in formats if f not in allowed]
    if bad or not formats:
        raise ValueError(f"--format {args.format!r}: each format must be one of {', '.join(allowed)}")
    layers = load_crossbars(args.source)
    out = Path(args.out)
    written = []
    for name, xbar in layers.items():
        at = None if args.at is None else xbar.time + args.at
        written += xbar.export_maps(out, formats=formats, name=name.replace("/", "_"), overwrite=args.overwrite, at=at)
    for path in written:
        print(f"wrote {path}")
    print(f"{len(layers)} crossbar(s), {len(written)} file(s)")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .trained import evaluate_run

    out = None
    if args.out:
        from ..files import check_writable

        out = check_writable(args.out, args.overwrite)  # refuse before any work
    table = evaluate_run(args.run_dir, times=tuple(args.at), jitter=tuple(args.jitter))
    show = table.copy()
    for col in show.columns:
        if col != "method":
            show[col] = 100 * show[col].astype(float)
    print(show.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    same = (table.test_acc == table.recorded_test_acc).all()
    print(f"accuracies in %; acc_at_<t>s: t seconds after the end of training; test_acc "
          f"{'equals' if same else 'DIFFERS FROM'} the run's recorded test accuracy")
    if out is not None:
        from ..files import atomic_path

        with atomic_path(out, args.overwrite) as tmp:
            table.to_csv(tmp, index=False)
        print(f"wrote {out}")
    return 0 if same else 1


def _csv_list(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _task_params(items: list[str] | None) -> dict | None:
    """``--task-param KEY=VALUE`` options as a mapping; values read as numbers (int before float)
    where they are one, else kept as text. ValueError naming a malformed item."""
    if not items:
        return None
    from .config import _parse_scalar

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"--task-param {item!r} is not KEY=VALUE (e.g. --task-param delay=50)")
        if key.strip() in out:
            raise ValueError(f"--task-param {key.strip()!r} given more than once")
        out[key.strip()] = _parse_scalar(value)
    return out


def _say_dataset(cfg, given_label: str | None, data) -> None:
    """Print what a CSV dataset became: its label column and how it was chosen, its size."""
    from .datasets import check_csv_header, is_csv_path

    if not is_csv_path(cfg.dataset):
        return
    _, how = check_csv_header(cfg.dataset, given_label)
    how = "--label-column" if given_label is not None else f"{how}; --label-column NAME picks another"
    print(f"dataset {cfg.dataset}: label column {cfg.label_column!r} ({how}), {data.n_features} features, "
          f"{data.n_classes} classes, {len(data.y_train)} train / {len(data.y_test)} test samples")


def _cmd_exsitu(args: argparse.Namespace) -> int:
    from .datasets import dataset_slug
    from .exsitu import ExSituConfig, load_data, run_exsitu
    from .rundir import new_run_dir

    fields = {"dataset": args.dataset, "label_column": args.label_column, "epochs": args.epochs, "hidden": args.hidden, "num_steps": args.steps,
              "seed": args.seed, "limit": args.limit}
    if args.presets:
        fields["presets"] = _csv_list(args.presets)
    if args.methods:
        fields["methods"] = _csv_list(args.methods)
    cfg = ExSituConfig(**{k: v for k, v in fields.items() if v is not None})  # validates everything first
    data = load_data(cfg)  # every data check before a run directory exists
    _say_dataset(cfg, args.label_column, data)
    out = new_run_dir(args.out, f"exsitu-{dataset_slug(cfg.dataset)}")
    print(f"run directory: {out}")
    result = run_exsitu(cfg, out_dir=out, progress=not args.quiet, data=data)
    print(f"digital test accuracy: {100 * result.digital_accuracy:.2f} %")
    print(result.summary().to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from .compare import CompareConfig, load_data, run_compare, temporal_note
    from .datasets import dataset_slug
    from .rundir import new_run_dir

    fields = {"dataset": args.dataset, "label_column": args.label_column, "device": args.device, "epochs": args.epochs, "seed": args.seed,
              "limit": args.limit, "task_params": _task_params(args.task_param), "backend": args.backend, "input_noise": args.input_noise,
              "spike_drop": args.spike_drop, "spike_insert": args.spike_insert, "train_noise": args.train_noise or None}
    if args.rules:
        fields["rules"] = _csv_list(args.rules)
    fields = {k: v for k, v in fields.items() if v is not None}
    cfg = CompareConfig.quick(**fields) if args.quick else CompareConfig(**fields)  # validates first
    data = load_data(cfg)  # every data check before a run directory exists
    _say_dataset(cfg, args.label_column, data)
    note = temporal_note(data, cfg.rules)
    if note:
        print(note)
    out = new_run_dir(args.out, f"compare-{dataset_slug(cfg.dataset)}-{cfg.device}")
    print(f"run directory: {out}")
    result = run_compare(cfg, out_dir=out, progress=not args.quiet, data=data)
    show = result.table.copy()
    for col in ("test_acc", "acc_jitter", "acc_after_drift", "acc_noisy"):
        if col in show:
            show[col] = 100 * show[col]
    show["energy_J"] = show["energy_J"].map(lambda v: f"{v:.3g}")
    print(show.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"accuracies in %; acc_jitter: input spikes jittered by {cfg.jitter:g} steps (std); after_drift: after "
          f"{cfg.drift_time:g} s; pulses_per_synapse_epoch: training pulses per weight per epoch; files in {out}")
    if cfg.noise() is not None:
        print(f"acc_noisy: input noise {cfg.noise().describe()}"
              f"{' (also during training)' if cfg.train_noise else ' (evaluation only)'}")
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from .config import example_toml, load_config, write_example

    if args.check:
        cfg = load_config(args.check)  # raises ConfigError listing every problem
        print(f"{args.check}: valid ({cfg.rule.name} {'in-situ' if cfg.rule.insitu else 'float'} on "
              f"{cfg.data.dataset}, device {cfg.device.preset})")
        return 0
    if not args.example:
        raise ValueError("memsnn config: pass --example (print or --out a documented example) or --check FILE")
    if args.out:
        print(f"wrote {write_example(args.out, overwrite=args.overwrite)}")
    else:
        print(example_toml(), end="")
    return 0


def _parse_sets(items: Sequence[str]) -> dict[str, str]:
    return _parse_pairs(items, "--set", "device.read_noise_std=0.02")


def _cmd_run(args: argparse.Namespace) -> int:
    from .config import load_config
    from .datasets import load_dataset
    from .rundir import new_run_dir
    from .runner import run_experiment

    cfg = load_config(args.config)
    if args.set:
        cfg = cfg.with_overrides(_parse_sets(args.set))  # validated before any work
    data = load_dataset(seed=cfg.seed, **cfg.data.load_kwargs())  # every data check before a run directory
    name = cfg.name or f"{cfg.rule.name}-{cfg.data.dataset}-{cfg.device.preset if cfg.rule.insitu else 'float'}"
    out = new_run_dir(args.out, "".join(c if c.isalnum() or c in "._-" else "_" for c in name))
    print(f"run directory: {out}")
    metrics = run_experiment(cfg, out, progress=not args.quiet, data=data)
    for key, value in metrics.items():
        if isinstance(value, float):
            print(f"{key:>30s}  {value:.4g}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .config import load_config
    from .sweep import parse_grid, run_sweep

    try:
        seeds = tuple(int(s) for s in _csv_list(args.seeds))
    except ValueError:
        raise ValueError(f"--seeds {args.seeds!r} must be comma-separated integers, e.g. 0,1,2") from None
    cfg = load_config(args.config)
    if args.set:
        cfg = cfg.with_overrides(_parse_sets(args.set))
    grid = parse_grid(args.grid)  # every point is validated by run_sweep before the first run
    executor = "dask" if args.scheduler else args.executor
    summary = run_sweep(cfg, grid, Path(args.out), mode=args.mode, seeds=seeds, executor=executor,
                        workers=args.workers, scheduler=args.scheduler, progress=not args.quiet,
                        retry_failed=args.retry_failed)
    print(summary)
    return 0 if not (summary.failed or summary.lost) else 1


def _seed_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in _csv_list(text))
    except ValueError:
        raise ValueError(f"--seeds {text!r} must be comma-separated integers, e.g. 0,1,2") from None


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import load_rows, markdown, run_reproduce
    from .rundir import new_run_dir

    rows = _csv_list(args.rows) if args.rows else None
    if args.list:
        for row in load_rows(rows):
            pub = "-" if row.published is None else f"{row.published:g} %"
            print(f"{row.name:24s} {row.task:40s} published {pub:10s} {row.work}")
        return 0
    seeds = _seed_list(args.seeds) if args.seeds else None
    load_rows(rows)  # every row validated before a directory is made
    out = Path(args.out) if args.out else new_run_dir("runs", "reproduce-quick" if args.quick else "reproduce")
    print(f"reproduce directory: {out} (run the same command with --out {out} to resume)")
    table = run_reproduce(out, rows=rows, seeds=seeds, quick=args.quick, workers=args.workers,
                          executor=args.executor, progress=not args.quiet)
    print(markdown(table))
    print(f"files: {out}/reproduce.csv, reproduce.md, reproduce.png")
    return 0


def _cmd_hetsyn(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .hetsyn import HetSynStudy, markdown, run_study
    from .rundir import new_run_dir

    study = HetSynStudy.quick() if args.quick else HetSynStudy()
    changes: dict = {}
    if args.tasks:
        changes["tasks"] = _csv_list(args.tasks)
    if args.models:
        changes["models"] = _csv_list(args.models)
    if args.seeds:
        changes["seeds"] = _seed_list(args.seeds)
    if args.delays:
        try:
            changes["delays"] = tuple(int(v) for v in _csv_list(args.delays))
        except ValueError:
            raise ValueError(f"--delays {args.delays!r} must be comma-separated integers (steps), e.g. 0,50,100") from None
    if args.device:
        changes["device"] = None if args.device == "none" else args.device
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    study = replace(study, **changes).check()  # every field checked before a directory is made
    out = Path(args.out) if args.out else new_run_dir("runs", "hetsyn-quick" if args.quick else "hetsyn")
    print(f"hetsyn directory: {out} (run the same command with --out {out} to resume)")
    summary = run_study(out, study, progress=not args.quiet)
    print(markdown(summary))
    print(f"files: {out}/hetsyn.md, hetsyn_summary.csv, hetsyn.csv, dmts_delay.png, dmts_noise.png, tau_distribution.png")
    return 0


def _cmd_ablate(args: argparse.Namespace) -> int:
    from .ablate import markdown, plan_ablation, run_ablation
    from .config import ExperimentConfig, load_config
    from .rundir import new_run_dir

    if args.config:
        cfg = load_config(args.config)
    else:  # the memsnn compare setting: digits, 128 hidden LIF neurons, T = 25, 10 epochs
        cfg = ExperimentConfig().with_overrides({"training.epochs": "10", "network.hidden": "[128]",
                                                 "encoder.num_steps": "25", "evaluation.times": "0"})
    if args.quick:
        cfg = cfg.with_overrides({"training.epochs": "2", "data.limit": "600"})
    if args.set:
        cfg = cfg.with_overrides(_parse_sets(args.set))
    on = _parse_pairs(args.on, "--on", "device.n_levels=32")
    rules = _csv_list(args.rules)
    seeds = _seed_list(args.seeds)
    plan_ablation(cfg, rules=rules, seeds=seeds, on=on, metric=args.metric, hardware=args.hardware)  # before any dir
    out = Path(args.out) if args.out else new_run_dir("runs", f"ablate-{cfg.data.dataset}-{cfg.device.preset}")
    print(f"ablation directory: {out} (run the same command with --out {out} to resume)")
    table = run_ablation(cfg, out, rules=rules, seeds=seeds, on=on, metric=args.metric, workers=args.workers,
                         executor=args.executor, progress=not args.quiet, hardware=args.hardware)
    print(markdown(table))
    print(f"files: {out}/ablation.csv, ablation.md, waterfall.png")
    return 0


def _cmd_results(args: argparse.Namespace) -> int:
    from .results import collect, format_summary

    df = collect(args.dir)  # rebuilds results.parquet / results.csv from DIR/runs (derived data)
    print(format_summary(df, by=args.by))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    print(f"wrote {write_report(args.sweep_dir, fmt=args.format, out=args.out, overwrite=args.overwrite)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memsnn", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="torch CPU threads (default 1: on the 2-core VM, memsnn compare --quick took 35 s with "
                             "1 thread and 68 s with 2 while another process ran; the arrays here are small)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("devices", help="table of device presets; --plot DIR writes characterisation PNGs")
    p.add_argument("--plot", metavar="DIR", help="write pulse-response, relaxation and drift plots here")
    p.add_argument("--preset", action="append", help="only this preset (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace existing plots")
    p.set_defaults(func=_cmd_devices)

    p = sub.add_parser("fit-device", help="fit a device model (law, c2c and read noise; with time / device "
                                          "columns relaxation, drift, d2d spread) to measured pulse data (CSV)")
    p.add_argument("data", help="CSV with columns pulse, polarity, conductance [, amplitude, width, time (s), device]")
    p.add_argument("--model", default="srtio3", help="preset whose law is fitted (default srtio3)")
    p.add_argument("--out", required=True, help="JSON file for the fitted parameters")
    p.add_argument("--plot", help="PNG of data against fit (default: next to --out)")
    p.add_argument("--fit", help="comma-separated parameters to fit (default: the preset's usual set)")
    p.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE", help="hold a parameter (repeatable)")
    p.add_argument("--no-noise", action="store_true",
                   help="hold step_std and read_noise_std at the preset's values instead of estimating them")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=_cmd_fit_device)

    p = sub.add_parser("export-maps", help="write G+, G- and weight maps (CSV, NPZ, PNG) of saved crossbars")
    p.add_argument("source", help="a saved crossbar (.pt), a multi-layer file, or a run directory")
    p.add_argument("--out", required=True, help="directory for the maps")
    p.add_argument("--format", default="csv,npz,png", help="comma-separated subset of csv,npz,png (default: all)")
    p.add_argument("--at", type=float, help="export the conductances this many seconds after the saved time (drift)")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.set_defaults(func=_cmd_export_maps)

    p = sub.add_parser("evaluate", help="reload a run's trained crossbars and report accuracy at later times, "
                                        "without training again")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run, sweep-run or compare directory (holds trained/)")
    p.add_argument("--at", type=float, nargs="+", default=[0.0], metavar="SECONDS",
                   help="seconds after the end of training (0 is always included)")
    p.add_argument("--jitter", type=float, nargs="+", default=[], metavar="STEPS",
                   help="also the accuracy with input spikes jittered by this std (time steps)")
    p.add_argument("--out", help="also write the table to this CSV file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("exsitu", help="train an SNN digitally, program it onto crossbars, evaluate under drift")
    p.add_argument("--dataset", default="digits",
                   help="digits, iris, breast_cancer, patterns_5x3, fashion_mnist, or a CSV file (PATH.csv)")
    p.add_argument("--label-column", metavar="NAME",
                   help="CSV: the column of class labels (default: 'label' if present, else the last column)")
    p.add_argument("--epochs", type=int, help="BPTT epochs (default 20)")
    p.add_argument("--hidden", type=int, help="hidden neurons (default 128)")
    p.add_argument("--steps", type=int, help="time steps (default 25)")
    p.add_argument("--presets", help="comma-separated device presets (default ideal,srtio3,pcm,rram)")
    p.add_argument("--methods", help="comma-separated programming methods (default write_verify,open_loop)")
    p.add_argument("--limit", type=int, help="keep the first N training samples (quick runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs", help="parent of the new run directory (default runs/)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_exsitu)

    p = sub.add_parser("compare", help="in-situ rules vs digital baselines on one dataset and device (the main job)")
    p.add_argument("--dataset",
                   help="digits (default), iris, breast_cancer, patterns_5x3, fashion_mnist, the temporal "
                        "seq_fashion_mnist, dmts, spike_patterns, or a CSV file (PATH.csv)")
    p.add_argument("--label-column", metavar="NAME",
                   help="CSV: the column of class labels (default: 'label' if present, else the last column)")
    p.add_argument("--task-param", action="append", metavar="KEY=VALUE",
                   help="an option of a generated temporal task (dmts, spike_patterns), e.g. delay=50; repeatable")
    p.add_argument("--device", help="device preset of the in-situ methods (default srtio3)")
    p.add_argument("--epochs", type=int, help="training epochs (default 10; --quick 2)")
    p.add_argument("--rules", help="comma-separated subset of stdp,sg,ssdp,csdp,logreg (default all)")
    p.add_argument("--backend", choices=("native", "aihwkit"),
                   help="crossbar backend of the in-situ methods (default native; aihwkit: AnalogTiles)")
    p.add_argument("--limit", type=int, help="keep the first N training samples")
    p.add_argument("--seed", type=int, help="seed (default 0)")
    p.add_argument("--input-noise", type=float, metavar="F",
                   help="column acc_noisy: Gaussian feature noise, std as a fraction of each feature's range (e.g. 0.2)")
    p.add_argument("--spike-drop", type=float, metavar="P", help="column acc_noisy: delete each input spike with probability P")
    p.add_argument("--spike-insert", type=float, metavar="P",
                   help="column acc_noisy: insert a spurious input spike in each empty slot with probability P")
    p.add_argument("--train-noise", action="store_true", help="also train every method under that input noise")
    p.add_argument("--quick", action="store_true", help="a small run that finishes in about a minute")
    p.add_argument("--out", default="runs", help="parent of the new run directory (default runs/)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_compare)
    p = sub.add_parser("config", help="experiment config files: a documented example, or check one")
    p.add_argument("--example", action="store_true", help="print a documented example config (or write it to --out)")
    p.add_argument("--out", help="write the example here instead of printing it")
    p.add_argument("--check", metavar="FILE", help="validate a config file and report every problem")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=_cmd_config)

    p = sub.add_parser("run", help="run one experiment from a TOML config into a new run directory")
    p.add_argument("config", help="TOML config (see memsnn config --example)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a dotted key, e.g. device.read_noise_std=0.02 (repeatable)")
    p.add_argument("--out", default="runs", help="parent of the new run directory (default runs/)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("sweep", help="run a config over a grid of overrides and seeds (resumable, local or Dask)")
    p.add_argument("config", help="base config TOML")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a dotted key and its values, e.g. device.read_noise_std=0,0.02,0.05 (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the base config (repeatable)")
    p.add_argument("--out", required=True, help="sweep directory (new, or the same sweep to resume it)")
    p.add_argument("--mode", choices=("product", "zip"), default="product", help="cartesian product or zipped lists")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds, one run per point and seed (default 0,1,2)")
    p.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="local processes, or Dask (a LocalCluster, or --scheduler ADDRESS)")
    p.add_argument("--workers", type=int, help="worker processes (default: all CPUs)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (implies dask)")
    p.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("reproduce", help="published numbers side by side with memsnn float and in-situ, over seeds")
    p.add_argument("--rows", help="comma-separated rows (file stems of examples/reproduce; default all)")
    p.add_argument("--seeds", help="comma-separated seeds (default 0,1,2,3,4; --quick 0,1)")
    p.add_argument("--quick", action="store_true", help="each row's short version (its [reproduce.quick] overrides)")
    p.add_argument("--workers", type=int, help="worker processes (default: all CPUs)")
    p.add_argument("--executor", choices=("local", "dask"), default="local", help="local processes or a Dask LocalCluster")
    p.add_argument("--out", help="reproduce directory: new, or an earlier one to resume (default: a new runs/reproduce-*)")
    p.add_argument("--list", action="store_true", help="list the rows and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_reproduce)

    p = sub.add_parser("hetsyn", help="LIF vs neuron- vs synapse-level time constants on temporal tasks, float and on a device")
    p.add_argument("--quick", action="store_true", help="one seed, delays 0 and 100, small splits (about 40 s)")
    p.add_argument("--tasks", help="comma-separated tasks: dmts, seq_fashion_mnist, waveform (default all)")
    p.add_argument("--models", help="comma-separated models: lif, layer, neuron, synapse (default all)")
    p.add_argument("--seeds", help="comma-separated seeds (default 0,1,2; --quick 0)")
    p.add_argument("--delays", help="comma-separated DMTS delays in steps (default 0,25,50,100,200; --quick 0,100)")
    p.add_argument("--device", help="device preset the trained networks are deployed on, or 'none' (default srtio3)")
    p.add_argument("--epochs", type=int, help="training epochs of the DMTS runs (default 20; --quick 8)")
    p.add_argument("--out", help="study directory: new, or an earlier one to resume (default: a new runs/hetsyn-*)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_hetsyn)

    p = sub.add_parser("ablate", help="turn a device's non-idealities on one at a time and report the accuracy after each")
    p.add_argument("config", nargs="?", help="base experiment TOML (default: digits on srtio3, the compare setting)")
    p.add_argument("--rules", default="stdp,sg,ssdp,csdp", help="comma-separated rules (default stdp,sg,ssdp,csdp)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the base config (repeatable)")
    p.add_argument("--on", action="append", default=[], metavar="KEY=VALUE",
                   help="the value a step turns on, e.g. device.n_levels=32 (repeatable)")
    p.add_argument("--metric", default="test_acc", help="metrics.json key scored (default test_acc)")
    p.add_argument("--hardware", action="store_true",
                   help="also turn on what the device leaves off: 64 levels, 1%% stuck, 7/8-bit DAC/ADC, IR drop")
    p.add_argument("--quick", action="store_true", help="2 epochs on 600 training samples")
    p.add_argument("--workers", type=int, help="worker processes (default: all CPUs)")
    p.add_argument("--executor", choices=("local", "dask"), default="local", help="local processes or a Dask LocalCluster")
    p.add_argument("--out", help="ablation directory: new, or an earlier one to resume (default: a new runs/ablate-*)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_ablate)

    p = sub.add_parser("results", help="mean and spread over seeds of a sweep's runs (rebuilds its results table)")
    p.add_argument("dir", metavar="DIR", help="a sweep directory (sweep.toml, runs/)")
    p.add_argument("--by", nargs="+", help="columns to group by (default: every swept key)")
    p.set_defaults(func=_cmd_results)

    p = sub.add_parser("report", help="HTML or Markdown report of a sweep directory: figures and tables")
    p.add_argument("sweep_dir", metavar="DIR", help="a sweep directory (sweep.toml, results.parquet, runs/)")
    p.add_argument("--format", choices=("html", "md"), default="html",
                   help="html: one self-contained file; md: report.md plus report_files/")
    p.add_argument("--out", help="report file (default DIR/report.html or DIR/report.md)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")
    p.set_defaults(func=_cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads < 1:
        print(f"error: --threads {args.threads} must be an integer >= 1", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileExistsError, FileNotFoundError, NotADirectoryError, IsADirectoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

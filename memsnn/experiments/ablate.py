"""``memsnn ablate``: which device non-ideality costs the in-situ accuracy, one step at a time.

For each rule, starting from the rule's float twin and a clean version of the target device, the
target device's non-idealities are turned on one at a time, cumulatively, and the accuracy is
measured after each step (:data:`STEPS`, in this order)::

    0  float          the rule on float weights (rule.insitu = false)
    1  clean device   in-situ on the target preset with every non-ideality below off: its window,
                      a linear law (device.nonlinearity = 0) where the preset has the knob,
                      symmetric SET / RESET (device.asymmetry = 1) where it has that knob, no c2c,
                      no d2d, continuous levels, no read noise, no stuck devices, no volatile part,
                      no drift, ideal DAC / ADC, no IR drop
    2  nonlinearity   device.nonlinearity (srtio3)
    3  asymmetry      device.asymmetry (srtio3, rram)
    4  c2c            device.step_std (rram also write_noise_std, pcm also reset_std)
    5  d2d            device.d2d_scale
    6  finite levels  device.n_levels
    7  read noise     device.read_noise_std (pcm: read_noise_scale)
    8  stuck devices  device.stuck_fraction
    9  volatile       device.volatile_ratio
    10 drift          device.drift_nu (pcm: drift_scale)
    11 ADC/DAC        periphery.dac_bits, periphery.adc_bits
    12 IR drop        crossbar.ir_drop

The order follows issue 13 (nonlinearity, asymmetry, c2c, d2d, finite levels, read noise, stuck
devices, drift, ADC/DAC, IR drop), with the volatile part as its own step before drift.

"On" values: what the base config sets (preset overrides and knobs, periphery, crossbar), else the
preset's default, so the last step is exactly the configured device (for the srtio3 preset: the
``memsnn compare`` in-situ setting) and the ladder splits the gap between float twin and in-situ.
A non-ideality that is off in the configured device (srtio3: continuous levels, no stuck devices,
ideal DAC / ADC, no IR drop) is a step marked ``off in device`` that runs nothing, unless
``on={key: value}`` gives its value or ``hardware=True`` takes the documented hardware values
(:data:`HARDWARE_VALUES`: 64 levels, 1 % stuck devices, 7-bit DAC / 8-bit ADC, approximate IR drop
at the crossbar's ``r_wire``); the ``source`` column says which. A step whose knob the preset lacks
(nonlinearity on rram, pcm, ideal; asymmetry on pcm, ideal) is ``n/a``. Steps that run nothing
repeat the previous step's accuracy.

Each rule is one resumable sweep (:func:`memsnn.experiments.sweep.run_sweep`, zip mode, the top-
level ``name`` labelling the step) in ``OUT/<rule>/``; then ``ablation.csv`` (accuracies in
[0, 1]), ``ablation.md`` (in %) and ``waterfall.png`` are written from the finished runs.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from ..files import atomic_path
from .config import ConfigError, ExperimentConfig

__all__ = ["STEPS", "HARDWARE_VALUES", "AblationStep", "ablation_steps", "plan_ablation", "run_ablation",
           "ablation_table"]

#: step name -> what it turns on (index = position in the ladder)
STEPS: tuple[tuple[str, str], ...] = (
    ("float", "the rule on float weights"),
    ("clean device", "target window, linear symmetric law, no noise, ideal periphery"),
    ("nonlinearity", "state-dependent pulse response"),
    ("asymmetry", "RESET step / SET step"),
    ("c2c", "cycle-to-cycle spread of each pulse"),
    ("d2d", "device-to-device spread"),
    ("finite levels", "finite number of conductance levels"),
    ("read noise", "noise on every read"),
    ("stuck devices", "devices stuck at g_min / g_max"),
    ("volatile", "volatile conductance that relaxes"),
    ("drift", "long-term conductance drift"),
    ("ADC/DAC", "input DAC and output ADC"),
    ("IR drop", "wire resistance"),
)
#: used where the preset's own default is off
HARDWARE_VALUES: dict[str, Any] = {"device.n_levels": 64, "device.stuck_fraction": 0.01,
                                   "periphery.dac_bits": 7, "periphery.adc_bits": 8, "crossbar.ir_drop": "approx"}
RULE_NAMES = ("stdp", "sg", "ssdp", "csdp")


@dataclass(frozen=True)
class AblationStep:
    """One rung: ``overrides`` are the full cumulative dotted overrides (the same keys at every
    step), ``added`` those this step turns on, ``source`` ``default`` / ``config`` / ``hardware
    value`` / ``n/a`` / ``off in device``."""

    index: int
    name: str
    description: str
    overrides: dict
    added: dict
    source: str

    @property
    def skipped(self) -> bool:
        """Nothing to turn on here (knob missing, or off in the device): no runs."""
        return self.source in ("n/a", "off in device")


def _step_keys(cfg: ExperimentConfig, hardware: bool = False) -> dict[str, list[tuple[str, Any, Any, str]]]:
    """Per step name: ``(key, off value, on value, source)`` for the base config's preset; the on
    value is None where the non-ideality is off in the device (and not taken from ``hardware``)."""
    preset = cfg.device.preset
    model = cfg.device_model()
    p = model.params
    set_params, knobs = cfg.device.params, cfg.device.knobs

    def on(key: str, default: Any) -> tuple[Any, str]:
        leaf = key.split(".", 1)[1]
        section = key.split(".", 1)[0]
        if section == "device" and leaf in knobs:
            return knobs[leaf], "config"
        if section == "device" and leaf in set_params:
            return set_params[leaf], "config"
        if section in ("periphery", "crossbar") and leaf in getattr(cfg, section):
            return getattr(cfg, section)[leaf], "config"
        if default is None or default == 0 or default == "none":
            if hardware and key in HARDWARE_VALUES:
                return HARDWARE_VALUES[key], "hardware value"
            return None, "off in device"
        return default, "default"

    noise_key = "device.read_noise_scale" if preset == "pcm" else "device.read_noise_std"
    drift_key = "device.drift_scale" if preset == "pcm" else "device.drift_nu"
    steps: dict[str, list[tuple[str, Any, Any, str]]] = {name: [] for name, _ in STEPS}

    def add(step: str, key: str, off: Any, default: Any) -> None:
        value, source = on(key, default)
        steps[step].append((key, off, value, source))

    if preset == "srtio3":
        add("nonlinearity", "device.nonlinearity", 0.0, 1.0 + p.c0 + p.c1 * p.v_set)
    if preset == "srtio3":
        add("asymmetry", "device.asymmetry", 1.0, p.reset_efficiency)
    elif preset == "rram":
        add("asymmetry", "device.asymmetry", 1.0, p.alpha_reset / p.alpha_set)
    add("c2c", "device.step_std", 0.0, p.step_std)
    if preset == "rram":  # the apparent write noise of aihwkit's ReRAM preset is per-pulse noise too
        add("c2c", "device.write_noise_std", 0.0, p.write_noise_std)
    if preset == "pcm":  # the spread of pcm's RESET level is per cycle
        add("c2c", "device.reset_std", 0.0, p.reset_std)
    add("d2d", "device.d2d_scale", 0.0, 1.0)
    add("finite levels", "device.n_levels", "none", p.n_levels)
    add("read noise", noise_key, 0.0, getattr(p, noise_key.split(".")[1]))
    add("stuck devices", "device.stuck_fraction", 0.0, p.p_stuck_min + p.p_stuck_max)
    add("volatile", "device.volatile_ratio", 0.0, p.volatile_ratio)
    add("drift", drift_key, 0.0, getattr(p, drift_key.split(".")[1]))
    add("ADC/DAC", "periphery.dac_bits", "none", None)
    add("ADC/DAC", "periphery.adc_bits", "none", None)
    add("IR drop", "crossbar.ir_drop", "none", "none")
    return steps


def _text(v: Any) -> str:
    return "none" if v is None else str(v)


def ablation_steps(base_cfg: ExperimentConfig, on: Mapping[str, Any] | None = None, *,
                   hardware: bool = False) -> list[AblationStep]:
    """The ladder of the module docstring for ``base_cfg``'s device; every step's config is built
    and validated here (errors name the step)."""
    if not isinstance(base_cfg, ExperimentConfig):
        raise TypeError(f"base_cfg must be an ExperimentConfig, got {type(base_cfg).__name__}")
    per_step = _step_keys(base_cfg, hardware)
    on = dict(on or {})
    known = {k for entries in per_step.values() for k, *_ in entries}
    bad = [k for k in on if k not in known]
    if bad:
        raise ValueError(f"on={bad!r}: not a key of this ablation on preset {base_cfg.device.preset!r}; "
                         f"allowed: {', '.join(sorted(known))}")
    current = {k: _text(off) for entries in per_step.values() for k, off, _, _ in entries}
    steps, errors = [], []
    for i, (name, desc) in enumerate(STEPS):
        added, sources = {}, []
        for key, _, value, source in per_step[name]:
            if key in on:
                value, source = on[key], "config"
            if source != "off in device":
                added[key] = _text(value)
            sources.append(source)
        current.update(added)
        overrides = {"rule.insitu": "false" if i == 0 else "true", **current}
        source = ("float twin" if i == 0 else "off" if i == 1 else
                  ("off in device" if sources else "n/a") if not added else
                  "hardware value" if "hardware value" in sources else
                  "config" if "config" in sources else "default")
        step = AblationStep(i, name, desc, dict(overrides), added, source)
        try:
            base_cfg.with_overrides(overrides)
        except ConfigError as err:
            errors.append(f"step {i} ({name}): {err}")
        steps.append(step)
    if errors:
        raise ValueError("the ablation cannot be built:\n  - " + "\n  - ".join(errors))
    return steps


def _label(step: AblationStep) -> str:
    return f"ablation-{step.index:02d}-{step.name.replace(' ', '_').replace('/', '_')}"


def plan_ablation(base_cfg: ExperimentConfig, *, rules: Sequence[str] = RULE_NAMES, seeds: Sequence[int] = (0,),
                  on: Mapping[str, Any] | None = None, metric: str = "test_acc", hardware: bool = False
                  ) -> dict[str, tuple[ExperimentConfig, list[AblationStep]]]:
    """Every rule's config and ladder, validated (bad rule, seeds, metric or ``on`` key: a
    ValueError naming it and what is allowed) - before any run or directory."""
    rules = tuple(rules)
    bad = [r for r in rules if r not in RULE_NAMES]
    if bad or not rules:
        raise ValueError(f"rules={list(rules)!r} is not allowed: each must be one of {', '.join(RULE_NAMES)}")
    seeds = tuple(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds={list(seeds)!r} is not allowed: must be integers >= 0, at least one")
    allowed = ["test_acc", *(f"acc_at_{t:g}s" for t in base_cfg.evaluation.times),
               *(f"acc_jitter_{s:g}" for s in base_cfg.evaluation.jitter)]
    if base_cfg.evaluation.noise() is not None:
        allowed.append("acc_noisy")
    if metric not in allowed:
        raise ValueError(f"metric={metric!r} is not allowed: must be one of {', '.join(allowed)}")
    plans = {}
    for rule in rules:
        if base_cfg.rule.params and rule != base_cfg.rule.name:
            raise ValueError(f"the base config's [rule.params] belong to rule {base_cfg.rule.name!r}; ablate rule "
                             f"{rule!r} with a config of its own, or drop the rule params")
        cfg = base_cfg.with_overrides({"rule.name": rule})
        plans[rule] = (cfg, ablation_steps(cfg, on, hardware=hardware))
    return plans


def run_ablation(base_cfg: ExperimentConfig, out: str | os.PathLike, *, rules: Sequence[str] = RULE_NAMES,
                 seeds: Sequence[int] = (0,), on: Mapping[str, Any] | None = None, metric: str = "test_acc",
                 workers: int | None = None, executor: str = "local", progress: bool = True,
                 hardware: bool = False) -> pd.DataFrame:
    """Run (or resume) the ablation of every rule into ``out``; returns the table (module docstring)."""
    from .sweep import run_sweep

    plans = plan_ablation(base_cfg, rules=rules, seeds=seeds, on=on, metric=metric, hardware=hardware)
    seeds = tuple(seeds)
    out = Path(out)
    for rule, (cfg, steps) in plans.items():
        run = [s for s in steps if not s.skipped]
        grid = {"name": [_label(s) for s in run]}
        for key in run[0].overrides:
            grid[key] = [s.overrides[key] for s in run]
        if progress:
            print(f"ablation of {rule}: {len(run)} steps x {len(seeds)} seeds", flush=True)
        run_sweep(cfg, grid, out / rule, mode="zip", seeds=seeds, workers=workers, executor=executor,
                  progress=progress)
    table = ablation_table(out, {r: s for r, (_, s) in plans.items()}, metric)
    with atomic_path(out / "ablation.csv", True) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out / "ablation.md", True) as tmp:
        tmp.write_text(markdown(table))
    plot_waterfall(table, out / "waterfall.png")
    return table


def ablation_table(out: str | os.PathLike, steps: Mapping[str, list[AblationStep]], metric: str = "test_acc"
                   ) -> pd.DataFrame:
    """One row per rule and step from the finished runs under ``out/<rule>/runs``."""
    out = Path(out)
    recs = []
    for rule, ladder in steps.items():
        runs: dict[str, list[dict]] = {}
        for path in (out / rule / "runs").glob("*/metrics.json"):
            m = json.loads(path.read_text())
            if m.get("status", "done") == "done":
                runs.setdefault(m.get("name"), []).append(m)
        prev = None
        for s in ladder:
            found = runs.get(_label(s), []) if not s.skipped else []
            if s.skipped and prev is not None:
                acc_mean, acc_std, n, wall = prev["acc_mean"], prev["acc_std"], prev["n_seeds"], 0.0
            else:
                vals = pd.Series([m[metric] for m in found], dtype=float)
                acc_mean = float(vals.mean()) if len(vals) else math.nan
                acc_std = float(vals.std(ddof=1)) if len(vals) > 1 else math.nan
                n, wall = len(vals), float(sum(m.get("wall_s", 0.0) for m in found))
            rec = {"rule": rule, "step": s.index, "name": s.name, "description": s.description, "source": s.source,
                   "overrides_added": ", ".join(f"{k}={v}" for k, v in s.added.items()) or "-",
                   "acc_mean": acc_mean, "acc_std": acc_std, "n_seeds": n,
                   "delta": math.nan if prev is None else acc_mean - prev["acc_mean"], "wall_s": wall}
            recs.append(rec)
            prev = rec
    return pd.DataFrame(recs)


def markdown(table: pd.DataFrame) -> str:
    """``ablation.md``: one table per rule, accuracies and changes in %."""
    lines = []
    for rule, g in table.groupby("rule", sort=False):
        lines += [f"### {rule}", "", "| step | turns on | source | accuracy % | change | seeds |",
                  "|---|---|---|---|---|---|"]
        for _, r in g.iterrows():
            acc = "-" if math.isnan(r.acc_mean) else f"{100 * r.acc_mean:.2f}"
            if not math.isnan(r.acc_std):
                acc += f" +- {100 * r.acc_std:.2f}"
            delta = "-" if math.isnan(r.delta) else f"{100 * r.delta:+.2f}"
            lines.append(f"| {r.step} {r['name']} | {r.overrides_added} | {r.source} | {acc} | {delta} | {r.n_seeds} |")
        lines.append("")
    return "\n".join(lines)


def plot_waterfall(table: pd.DataFrame, path: Path) -> Path:
    """One panel per rule: a bar from the previous step's accuracy to this step's, green up, red
    down, std over seeds as error bars, the float twin as a dotted line."""
    from .snn_plots import _plt

    plt = _plt()
    rules = list(dict.fromkeys(table.rule))
    fig, axes = plt.subplots(len(rules), 1, figsize=(9, 3.2 * len(rules)), squeeze=False)
    for ax, rule in zip(axes[:, 0], rules):
        g = table[table.rule == rule].reset_index(drop=True)
        acc = 100 * g.acc_mean
        for i in range(len(g)):
            lo = acc[i - 1] if i else 0.0
            color = "tab:gray" if i == 0 else ("tab:green" if acc[i] >= lo else "tab:red")
            ax.bar(i, acc[i] - lo, bottom=lo, color=color, width=0.7)
            if not math.isnan(g.acc_std[i]):
                ax.errorbar(i, acc[i], yerr=100 * g.acc_std[i], color="k", capsize=2, lw=0.8)
        ax.axhline(acc[0], color="k", ls=":", lw=1, label="float twin")
        ax.set_xticks(range(len(g)), g["name"], rotation=35, ha="right", fontsize=7)
        finite = acc.dropna()
        if len(finite):
            ax.set_ylim(max(0.0, finite.min() - 10), min(100.0, finite.max() + 5))
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"{rule}: non-idealities turned on one at a time (cumulative)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path, True) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path

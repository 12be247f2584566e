"""HetSyn on memristive crossbars: the synaptic filter in the device, or in K sub-arrays.

A trained :class:`~memsnn.crossbar.hetsyn.HetSynLinear` (float) is deployed with
:meth:`CrossbarHetSyn.from_float` in one of two realisations (``realisation=``); the neurons
(reset current, threshold) stay in the digital periphery and follow the same equations as the
float layer (:func:`~memsnn.crossbar.hetsyn.reset_current_step`).

``"device"``: the synaptic current lives in the device (science.md 1.1 and 5)
---------------------------------------------------------------------------------
Each weight is a differential pair ``G+ / G-`` programmed by write-verify as any crossbar weight.
A presynaptic spike is a sub-threshold pulse on its row: it leaves the long-term conductance
alone and adds a volatile conductance to every device of the row, which then relaxes with that
device's own time constant ``tau_d`` (the SrTiO3 volatile component, Weilenmann et al. 2024;
``tau`` set by a bias voltage, 1-10 s, arXiv 2509.22767)::

    g_vol(t) = rho_d g_vol(t-1) + a G x_i(t),   rho_d = exp(-dt_phys / tau_d)

``a`` (``facilitation``) is the volatile conductance one spike adds *relative to the device's
long-term conductance* ``G``. That it scales with ``G`` is our assumption (weight transmission
and short-term plasticity in one non-filamentary device, Weilenmann et al. 2024, without a
published law); it is what makes the device's volatile current carry the weight. Every step all
rows are read at ``v_read``; the column's long-term baseline ``v_read * sum_i (G+ - G-)`` is
removed before the ADC (a reference current calibrated at rest, assumed exact), so the ADC sees::

    I_j(t) = v_read * a * sum_i (G+_ij y+_ij(t) - G-_ij y-_ij(t)) + read noise
    y_ij(t) = rho_ij y_ij(t-1) + x_i(t)     (per device, from rest at the start of each sample)

which is ``sum_i I_ji(t)`` of the float layer when both devices have the synapse's decay; in
weight units the current is divided by ``v_read * a * window / scale``. Read noise is drawn per
device and step with the device model's std at the device's *total* conductance
``G (1 + a y)`` and summed per column (exact in distribution; the per-device state is
``[B, in, out]`` per step, computed in batch chunks under ``torch.no_grad``).

The tau map (``tau_map``): each device's bias ``V = ln(tau_target / tau_0) / tau_bias_coeff``,
clipped to ``[v_bias_min, v_bias_max]`` (default +-1 V, the published 1-10 s range for srtio3's
defaults), where ``tau_0`` is each device's zero-bias time constant:

- ``tau_program="open_loop"``: the preset's nominal ``tau_volatile`` (the device-to-device spread
  of ``tau``, 10 % for srtio3, stays as error);
- ``"verify"``: measured per device before the weights are written - ``tau_probe_pulses`` SET
  pulses build a volatile part, which is read (``tau_reads`` noisy reads averaged) right away,
  after ``tau_volatile`` seconds and after six time constants (the long-term baseline, moved
  back to the earlier reads along the nominal drift law); ``tau_0 = dt / ln(g_vol(0) / g_vol(dt))``. The probe pulses, reads and waiting time are
  counted; write-verify then puts the weights back on target.

Targets outside the tunable range are clipped (:meth:`CrossbarHetSyn.tau_report` says how many).
The bias is held by the periphery and the model has no published drift of ``tau``, so the tau
map does not drift; the long-term conductances do (the device's drift law), and a spike's
volatile increment follows the drifted ``G``. Each spike pulse costs ``energy_spike`` per device
(counted in :meth:`counters` beside the programming pulses and energy).

``"binned"``: K sub-arrays with leaky row integrators
-----------------------------------------------------
For a layer with ``K`` time-constant bins (``HetSynLinear(form="binned")``, or one tau:
``granularity="layer"``): sub-array ``k`` holds ``W * M_k`` (the synapses of bin ``k``) as
ordinary non-volatile weights; one leaky integrator per input row and bin in the periphery keeps
``h_k(t) = rho_k h_k(t-1) + x(t)`` (exact ``tau_k``, no device spread) and drives its sub-array's
rows through the DAC, scaled to ``[0, 1]`` by ``1 - rho_k``; the ``K`` column currents add up
after the ADCs. Every read goes through :meth:`~memsnn.crossbar.Crossbar.vmm` (read noise, DAC,
ADC), all ``T * B`` rows of a sub-array in one call. Bins with no synapse get no sub-array.

Time
----
``dt_phys = dt * time_scale`` is the physical duration of one step; the device's ``tau`` targets
are the float layer's ``tau * time_scale``. ``time_scale=None`` maps the geometric middle of the
trained effective taus onto the geometric middle of the device's tunable range (for srtio3,
``sqrt(1 s * 10 s)``), e.g. a task trained with ``dt = 1 ms`` and ``tau`` between 10 and 100 ms
runs with ``dt_phys = 0.1 s`` per step: a 50-step sample takes 5 s of device time. The tunable
range spans ``exp(tau_bias_coeff * (v_bias_max - v_bias_min))`` (10x for srtio3's defaults), so
train the float layer with ``tau_max / tau_min`` within that ratio to avoid clipping. Each
sample starts from rest: the volatile parts must relax between samples (about ``5 tau`` of the
longest device, which :meth:`CrossbarHetSyn.forward` assumes and does not add to the clock).

Forward passes are inference only (``torch.no_grad``); training happens on the float layer.
Recurrent layers are not realised on crossbars yet (a ValueError says so).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..device_models import DeviceModel, make_device
from ..files import atomic_path
from ..params import Params, param
from .array import Crossbar, CrossbarParams
from .hetsyn import HetSynLinear, HetSynParams, binned_traces, decay, reset_current_step
from .periphery import PeripheryParams, adc

__all__ = ["MemristiveHetSynParams", "CrossbarHetSyn", "REALISATIONS"]

Tensor = torch.Tensor

REALISATIONS = ("device", "binned")
_FORMAT = "memsnn.hetsyn_crossbar"


@dataclass(frozen=True)
class MemristiveHetSynParams(Params):
    """Settings of a HetSyn layer on crossbars (SI units; see the module docstring)."""

    _owner = "memristive HetSyn"

    realisation: str = param("device", check=None, choices=REALISATIONS, doc="synaptic filter in the device, or K sub-arrays with row integrators")
    time_scale: float | None = param(None, unit="s/s", check=">0", optional=True, doc="device seconds per task second (None: centre the taus in the tunable range)")
    facilitation: float = param(0.3, unit="1", check=">0", doc="volatile conductance a spike adds, relative to the device's long-term G")
    v_bias_min: float = param(-1.0, unit="V", check="any", doc="lowest bias voltage the periphery applies")
    v_bias_max: float = param(1.0, unit="V", check="any", doc="highest bias voltage")
    tau_program: str = param("verify", check=None, choices=("open_loop", "verify"), doc="tau map from the nominal tau_0, or from each device's measured tau_0")
    tau_reads: int = param(32, unit="1", check="int>=1", doc="noisy reads averaged per time point when measuring tau_0")
    tau_probe_pulses: int = param(40, unit="1", check="int>=1", doc="SET pulses that build the volatile part measured by 'verify'")
    compensate_drift: bool = param(True, check=None, choices=(True, False), doc="per-column digital gain: each column's summed conductances at programming over now")
    weight_method: str = param("write_verify", check=None, choices=("write_verify", "open_loop", "direct"), doc="how the weights are programmed")
    energy_spike: float = param(1e-13, unit="J", check=">=0", doc="energy of one sub-threshold spike pulse on one device (our assumption: 0.1x a SET pulse)")
    chunk_elems: int = param(1 << 22, unit="1", check="int>=1", doc="per-device states computed per batch chunk of at most this many elements")

    def _cross_checks(self):
        if not self.v_bias_min < self.v_bias_max:
            yield f"v_bias_min={self.v_bias_min!r} must be < v_bias_max={self.v_bias_max!r} (V)"


class CrossbarHetSyn(nn.Module):
    """A HetSyn layer whose synapses are memristor crossbars (module docstring).

    Build it with :meth:`from_float`. ``forward(x [T, B, in])`` returns ``(z, v)`` ``[T, B, out]``
    like :class:`~memsnn.crossbar.hetsyn.HetSynLinear`.

    Attributes:
        crossbars: ``{name: Crossbar}`` - ``"synapses"`` (device realisation) or ``"bin<k>"``.
        neuron: the float layer's :class:`HetSynParams` (threshold, ``tau_r``, ``dt`` in task s).
        tau_bins: task-time bin centres (s) of the binned realisation, else None.
        tau_target: ``[in, out]`` physical tau each synapse should have (s).
    """

    def __init__(self):  # use from_float / load
        super().__init__()
        self.crossbars: dict[str, Crossbar] = {}
        self.spike_pulses = 0
        self.tau_reads = 0
        self.tau_wait_s = 0.0

    # ------------------------------------------------------------------------------------------
    # construction
    # ------------------------------------------------------------------------------------------
    @classmethod
    def from_float(cls, layer: HetSynLinear, model: str | DeviceModel = "srtio3", *,
                   params: MemristiveHetSynParams | None = None, crossbar_params: CrossbarParams | None = None,
                   periphery: PeripheryParams | None = None, scale: float | None = None, seed: int = 0,
                   **overrides: Any) -> "CrossbarHetSyn":
        """Deploy a trained float layer: program the weights and the tau map (module docstring).

        Args:
            layer: the trained :class:`HetSynLinear` (feed-forward).
            model: device preset name or model (the device realisation needs a volatile part with a
                bias-set tau: ``volatile_ratio > 0`` and ``tau_bias_coeff != 0``, as ``srtio3``).
            params: :class:`MemristiveHetSynParams`; ``**overrides`` change its fields.
            crossbar_params, periphery: array and periphery settings of every sub-array.
            scale: weight of a full conductance window (None: ``max |W|``).
            seed: seeds the crossbars (device spread, noise).
        """
        p = MemristiveHetSynParams.resolve(params, overrides)
        if not isinstance(layer, HetSynLinear):
            raise TypeError(f"layer must be a HetSynLinear, got {type(layer).__name__}")
        if layer.recurrent:
            raise ValueError("recurrent HetSyn layers are not realised on crossbars yet: deploy a feed-forward layer")
        model = make_device(model) if isinstance(model, str) else model
        mp = model.params
        if p.realisation == "device" and (mp.volatile_ratio <= 0 or mp.tau_bias_coeff == 0):
            raise ValueError(f"realisation='device' needs a device with a bias-set volatile part (volatile_ratio > 0 and "
                             f"tau_bias_coeff != 0); preset {model.preset!r} has volatile_ratio={mp.volatile_ratio!r}, "
                             f"tau_bias_coeff={mp.tau_bias_coeff!r}: use realisation='binned' or a preset such as 'srtio3'")
        if p.realisation == "device" and crossbar_params is not None and crossbar_params.mapping != "differential":
            raise ValueError(f"realisation='device' needs the differential mapping (both devices of a pair carry the "
                             f"volatile signal); got mapping={crossbar_params.mapping!r}")
        if p.realisation == "binned" and layer.granularity == "neuron":
            raise ValueError("realisation='binned' needs K shared bins: a layer with granularity='synapse' and form='binned', or "
                             "granularity='layer'; granularity='neuron' gives one tau per neuron - use realisation='device'")
        if p.realisation == "binned" and layer.granularity == "synapse" and layer.form != "binned":
            raise ValueError(f"realisation='binned' needs a layer with form='binned' (got form={layer.form!r}); "
                             "use realisation='device' for any per-synapse tau")
        self = cls()
        self.params, self.neuron, self.model = p, layer.params, model
        self.in_features, self.out_features = layer.in_features, layer.out_features
        with torch.no_grad():
            w = layer.weight.detach().double().t().contiguous()  # [in, out]
            tau = layer.effective_tau().detach().double().expand(layer.out_features, layer.in_features).t().contiguous()
        self.scale = float(scale) if scale is not None else float(w.abs().max().clamp(min=1e-12))
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"scale={scale!r} must be a finite number > 0")
        self.time_scale = p.time_scale if p.time_scale is not None else self._auto_time_scale(tau)
        self.tau_target = tau * self.time_scale
        self.tau_bins = None
        kw = dict(params=crossbar_params, periphery=periphery, scale=self.scale, dtype=torch.float32)
        if p.realisation == "device":
            xbar = Crossbar(self.in_features, self.out_features, model, seed=seed, **kw)
            self._program_tau(xbar, self.tau_target.to(xbar.dtype))
            xbar.program(w.float(), method=p.weight_method)
            self.crossbars = {"synapses": xbar}
        else:
            if layer.granularity == "layer":
                self.tau_bins = layer.effective_tau().detach().double().reshape(1)
                index = torch.zeros(self.in_features, self.out_features, dtype=torch.long)
            else:
                self.tau_bins = layer.tau_bins.detach().double().clone()
                index = layer.bin_index().t()
            self.bin_of = index
            for k in range(self.tau_bins.numel()):
                mask = index == k
                if not bool(mask.any()):
                    continue
                xbar = Crossbar(self.in_features, self.out_features, model, seed=seed + 1000 * k, **kw)
                xbar.program((w * mask).float(), method=p.weight_method)
                self.crossbars[f"bin{k}"] = xbar
        self._ref0 = {k: self._column_sums(x) for k, x in self.crossbars.items()}
        settle = 10.0 * float(self.tau_target.max()) if mp.volatile_ratio > 0 else 0.0
        for xbar in self.crossbars.values():  # the programming's volatile parts relax before use
            xbar.advance(settle)
        return self

    @staticmethod
    def _column_sums(xbar: Crossbar) -> Tensor:
        """Each column's summed conductances, both devices of each pair (S, ``[out]``): the
        per-column drift reference (noise-free: the read of a column with every row at full
        scale, averaged over repeats)."""
        gp, gm = xbar.conductances()
        return gp.sum(0) + gm.sum(0)

    def drift_gain(self, name: str) -> Tensor | float:
        """Digital gain ``[out]`` of sub-array ``name`` undoing its drift since programming
        (1.0 with ``compensate_drift=False``)."""
        if not self.params.compensate_drift:
            return 1.0
        now = self._column_sums(self.crossbars[name])
        ref = self._ref0[name].to(now)
        return torch.where(now > 0, ref / now.clamp(min=1e-30), torch.ones_like(now))

    def _tunable_range(self) -> tuple[float, float]:
        """Physical tau range (s) the bias range reaches on the nominal device."""
        mp, p = self.model.params, self.params
        ends = (mp.tau_volatile * math.exp(mp.tau_bias_coeff * p.v_bias_min), mp.tau_volatile * math.exp(mp.tau_bias_coeff * p.v_bias_max))
        return min(ends), max(ends)

    def _auto_time_scale(self, tau: Tensor) -> float:
        mp = self.model.params
        if self.params.realisation == "binned" or mp.volatile_ratio <= 0:
            return 1.0
        lo, hi = self._tunable_range()
        return math.sqrt(lo * hi) / math.sqrt(float(tau.min()) * float(tau.max()))

    @property
    def dt_phys(self) -> float:
        """Physical duration of one time step (s)."""
        return self.neuron.dt * self.time_scale

    def _program_tau(self, xbar: Crossbar, target: Tensor) -> None:
        """Set each device's bias so that its volatile tau is ``target`` (module docstring)."""
        p, mp = self.params, self.model.params
        for name, state in xbar._arrays():
            if p.tau_program == "open_loop":
                tau0 = torch.full_like(target, mp.tau_volatile)
            else:
                tau0 = self._measure_tau0(xbar, name)
                state = getattr(xbar, name)
            bias = (torch.log(target / tau0) / mp.tau_bias_coeff).clamp(p.v_bias_min, p.v_bias_max)
            xbar._set_array(name, self.model.set_bias(state, bias))

    def _measure_tau0(self, xbar: Crossbar, name: str) -> Tensor:
        """Each device's zero-bias tau from three averaged noisy reads of a probe's decay (s)."""
        p, model = self.params, self.model
        state = model.set_bias(getattr(xbar, name), 0.0)
        state = model.apply_pulses(state, torch.full(state.shape, p.tau_probe_pulses, dtype=torch.long, device=state.device),
                                   generator=xbar.generator)
        wait = model.params.tau_volatile

        def mean_read(st):
            return torch.stack([model.read(st, generator=xbar.generator) for _ in range(p.tau_reads)]).double().mean(0)

        g0 = mean_read(state)
        state = model.advance(state, wait)
        g1 = mean_read(state)
        tail = 6.0 * model.params.tau_volatile  # at zero bias: 0.25 % of the volatile part is left
        state = model.advance(state, tail)
        g_inf = mean_read(state)
        xbar._set_array(name, state)
        self.tau_reads += 3 * p.tau_reads
        xbar.reads += 3 * p.tau_reads
        self.tau_wait_s += wait + tail
        # the long-term part drifts meanwhile (the probe restarted its clock): the baseline at each
        # read is the late read moved back along the nominal drift law (without this the 5 % drift
        # over the tail biased tau_0 by about 30 %)
        mp = model.params
        t0, end = mp.drift_t0, wait + tail

        def baseline(t: float) -> Tensor:
            return g_inf * ((end + t0) / (t + t0)) ** mp.drift_nu

        v0, v1 = (g0 - baseline(0.0)), (g1 - baseline(wait))
        ok = (v0 > 0) & (v1 > 0) & (v0 > v1)
        est = wait / torch.log(torch.where(ok, v0 / v1.clamp(min=1e-30), torch.full_like(v0, math.e)))
        # a device whose decay is buried in read noise falls back to the nominal tau_0
        est = torch.where(ok & torch.isfinite(est), est, torch.full_like(est, model.params.tau_volatile))
        return est.to(xbar.dtype)

    # ------------------------------------------------------------------------------------------
    # what was programmed
    # ------------------------------------------------------------------------------------------
    def tau_map(self) -> dict[str, Tensor]:
        """Physical volatile tau of every device (s): ``{"plus": [in, out], "minus": ...}``
        (device realisation), or each synapse's integrator tau ``{"synapse": ...}`` (binned)."""
        if self.params.realisation == "device":
            xbar = self.crossbars["synapses"]
            return {name: self.model.tau_volatile(state) for name, state in xbar._arrays()}
        return {"synapse": (self.tau_bins[self.bin_of] * self.time_scale).float()}

    def tau_report(self) -> dict[str, float]:
        """How well the tau map hits its targets: median and 95th percentile of ``|log(tau /
        target)|`` over devices, and the fraction of targets outside the tunable range."""
        maps = self.tau_map()
        err = torch.cat([(torch.log(t.double()) - torch.log(self.tau_target)).abs().flatten() for t in maps.values()])
        out = {"tau_log_err_median": float(err.median()), "tau_log_err_p95": float(torch.quantile(err, 0.95))}
        if self.params.realisation == "device":
            lo, hi = self._tunable_range()
            lo, hi = lo * (1 - 1e-6), hi * (1 + 1e-6)  # round-off at the range's ends is not clipping
            out["tau_clipped_fraction"] = float(((self.tau_target < lo) | (self.tau_target > hi)).double().mean())
        return out

    def weights(self) -> Tensor:
        """Effective weights ``[in, out]`` the sub-arrays hold now (summed over bins)."""
        return sum(x.weights() for x in self.crossbars.values())

    def counters(self) -> dict[str, float]:
        """Programming pulses and energy (J) of every sub-array, spike pulses and their energy,
        reads (VMM reads plus the tau measurement's reads), and the tau measurement's waiting time."""
        prog = sum(x.total_pulses for x in self.crossbars.values())
        energy = sum(x.energy for x in self.crossbars.values())
        return {"programming_pulses": prog, "programming_energy_J": energy, "spike_pulses": self.spike_pulses,
                "spike_energy_J": self.spike_pulses * self.params.energy_spike,
                "reads": sum(x.reads for x in self.crossbars.values()), "tau_reads": self.tau_reads,
                "tau_wait_s": self.tau_wait_s, "time_s": max(x.time for x in self.crossbars.values())}

    def advance(self, seconds: float) -> "CrossbarHetSyn":
        """Let ``seconds`` pass on every sub-array (drift; the tau map holds)."""
        for x in self.crossbars.values():
            x.advance(seconds)
        return self

    # ------------------------------------------------------------------------------------------
    # forward
    # ------------------------------------------------------------------------------------------
    def _check_input(self, x: Any) -> Tensor:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"input spikes must be a floating torch.Tensor [T, B, {self.in_features}]")
        if x.dim() != 3 or x.shape[2] != self.in_features:
            raise ValueError(f"input spikes have shape {tuple(x.shape)}, expected [T, B, {self.in_features}]")
        if not torch.isfinite(x).all() or bool(((x != 0) & (x != 1)).any()):
            raise ValueError("input spikes must be 0 or 1 (a spike is one sub-threshold pulse or one integrator kick)")
        return x

    @torch.no_grad()
    def current(self, x: Tensor) -> Tensor:
        """Synaptic current ``sum_i I_ji(t)`` in weight units, ``[T, B, out]``, read from the arrays."""
        x = self._check_input(x)
        if self.params.realisation == "device":
            return self._device_current(x)
        return self._binned_current(x)

    def _device_current(self, x: Tensor) -> Tensor:
        p, model = self.params, self.model
        xbar = self.crossbars["synapses"]
        per = xbar.periphery
        T, B, n_in = x.shape
        dev, dt = xbar.dtype, self.dt_phys
        x = x.to(device=xbar.device, dtype=dev)
        gp, gm = xbar.conductances()
        arrays = dict(xbar._arrays())
        rho = {k: decay(model.tau_volatile(s), dt) for k, s in arrays.items()}
        elapsed = {k: (s.time - s.t_prog).clamp(min=0.0) for k, s in arrays.items()}
        g_of = {"plus": gp, "minus": gm}
        a = p.facilitation
        to_w = self.scale / (a * xbar._w_norm)  # siemens of volatile signal -> weight units
        gain = self.drift_gain("synapses")
        out = torch.empty(T, B, self.out_features, dtype=dev, device=xbar.device)
        rows = max(1, p.chunk_elems // (n_in * self.out_features))
        for b0 in range(0, B, rows):
            xb = x[:, b0:b0 + rows]
            nb = xb.shape[1]
            y = {k: torch.zeros(nb, n_in, self.out_features, dtype=dev, device=xbar.device) for k in arrays}
            for t in range(T):
                xt = xb[t][:, :, None]
                signal, var = 0.0, 0.0
                for k in arrays:  # the two devices of each differential pair
                    y[k].mul_(rho[k]).add_(xt)
                    g_tot = g_of[k] * (1.0 + a * y[k])
                    sign = 1.0 if k == "plus" else -1.0
                    signal = signal + sign * (g_of[k] * y[k]).sum(1) * a
                    sigma = model.read_noise_std(arrays[k], g_tot, elapsed[k])
                    if not (isinstance(sigma, float) and sigma == 0.0):
                        var = var + (sigma * sigma).sum(1) if isinstance(sigma, Tensor) else var + sigma * sigma * n_in
                i = signal
                if not (isinstance(var, float) and var == 0.0):
                    std = var.sqrt() if isinstance(var, Tensor) else math.sqrt(var)
                    i = i + std * torch.randn(nb, self.out_features, generator=xbar.generator, device=xbar.device, dtype=dev)
                i = adc(i * per.v_read, per, xbar.i_unit, xbar.generator) / per.v_read
                out[t, b0:b0 + nb] = i * (to_w * gain)
        n_spikes = float(x.sum())
        self.spike_pulses += int(round(n_spikes)) * self.out_features * len(arrays)
        xbar.reads += T * B
        return out

    def _binned_current(self, x: Tensor) -> Tensor:
        T, B, n_in = x.shape
        rho = decay(self.tau_bins, self.neuron.dt)  # = exp(-dt_phys / (tau_k time_scale))
        h = binned_traces(x.double(), rho)  # [T, B, K, in]
        out = 0.0
        for name, xbar in self.crossbars.items():
            k = int(name[3:])
            norm = float(1.0 - rho[k]) if float(rho[k]) < 1.0 else 1.0
            rows = (h[:, :, k] * norm).reshape(T * B, n_in).to(xbar.dtype)
            out = out + xbar.vmm(rows).reshape(T, B, -1) * (self.drift_gain(name) / norm)
        return out

    @torch.no_grad()
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        current = self.current(x)
        T, B, out = current.shape
        R = current.new_zeros(B, out)
        z = current.new_zeros(B, out)
        zs, vs = [], []
        for t in range(T):
            z, v, R = reset_current_step(current[t], R, z, self.neuron)
            zs.append(z)
            vs.append(v)
        return torch.stack(zs), torch.stack(vs)

    # ------------------------------------------------------------------------------------------
    # export and persistence
    # ------------------------------------------------------------------------------------------
    def export_maps(self, directory: str | os.PathLike, *, formats=("csv", "npz", "png"), name: str = "hetsyn",
                    overwrite: bool = False) -> list[Path]:
        """Conductance maps of every sub-array, with the devices' tau maps (device realisation:
        ``tau_plus_s`` / ``tau_minus_s`` columns) or a ``{name}_bins.csv`` (binned)."""
        import pandas as pd

        from ..files import check_writable

        directory = Path(directory)
        written: list[Path] = []
        if self.params.realisation == "device":
            return self.crossbars["synapses"].export_maps(directory, formats=formats, name=name, overwrite=overwrite, tau=True)
        bins_csv = directory / f"{name}_bins.csv"
        check_writable(bins_csv, overwrite)
        for key, xbar in self.crossbars.items():
            written += xbar.export_maps(directory, formats=formats, name=f"{name}_{key}", overwrite=overwrite)
        counts = torch.bincount(self.bin_of.flatten(), minlength=self.tau_bins.numel())
        table = pd.DataFrame({"bin": range(self.tau_bins.numel()), "tau_task_s": self.tau_bins.tolist(),
                              "tau_phys_s": (self.tau_bins * self.time_scale).tolist(), "synapses": counts.tolist()})
        with atomic_path(bins_csv, overwrite) as tmp:
            table.to_csv(tmp, index=False, float_format="%.17g")
        return [*written, bins_csv]

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        """Everything to restore this layer exactly (crossbars with generators, tau map, targets)."""
        return {"format": _FORMAT, "version": 1, "params": self.params.to_dict(), "neuron": self.neuron.to_dict(),
                "shape": [self.in_features, self.out_features], "scale": self.scale, "time_scale": self.time_scale,
                "tau_target": self.tau_target, "tau_bins": self.tau_bins,
                "bin_of": getattr(self, "bin_of", None), "ref0": self._ref0, "counters": [self.spike_pulses, self.tau_reads, self.tau_wait_s],
                "crossbars": {k: x.state_dict() for k, x in self.crossbars.items()}}

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the layer to ``path`` (refuses to overwrite unless ``overwrite``)."""
        with atomic_path(path, overwrite) as tmp:
            torch.save(self.state_dict(), tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: torch.device | str = "cpu") -> "CrossbarHetSyn":
        """A layer :meth:`save` wrote; ValueError naming ``path`` for any other file."""
        from .storage import read_payload

        path = Path(path)
        data = read_payload(path, what="saved memsnn HetSyn crossbar layer")
        if data.get("format") != _FORMAT or data.get("version") != 1:
            raise ValueError(f"{path} is not a saved memsnn HetSyn crossbar layer (format={data.get('format')!r}, "
                             f"version={data.get('version')!r})")
        self = cls()
        self.params = MemristiveHetSynParams.from_dict(data["params"])
        self.neuron = HetSynParams.from_dict(data["neuron"])
        self.in_features, self.out_features = (int(v) for v in data["shape"])
        self.scale, self.time_scale = float(data["scale"]), float(data["time_scale"])
        self.tau_target, self.tau_bins = data["tau_target"], data["tau_bins"]
        if data["bin_of"] is not None:
            self.bin_of = data["bin_of"]
        self.spike_pulses, self.tau_reads, self.tau_wait_s = data["counters"]
        self._ref0 = {k: v.to(device) for k, v in data["ref0"].items()}
        self.crossbars = {k: Crossbar.from_state_dict(v, device) for k, v in data["crossbars"].items()}
        self.model = next(iter(self.crossbars.values())).model
        return self

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, realisation={self.params.realisation!r}, "
                f"preset={self.model.preset!r}, dt_phys={self.dt_phys:.3g} s, sub-arrays={len(self.crossbars)}")

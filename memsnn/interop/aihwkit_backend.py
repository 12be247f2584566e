"""A crossbar backed by aihwkit ``AnalogTile``s: the same interface, aihwkit's devices and IO.

:class:`AihwkitCrossbar` is a :class:`~memsnn.crossbar.Crossbar` whose devices live in aihwkit
tiles. Everything the learning rules, :class:`~memsnn.crossbar.layers.CrossbarLinear` and
:class:`~memsnn.learning.scheduler.PulseScheduler` call works on it - ``vmm``, ``weights``,
``conductances``, ``apply_schedule`` (rank-1 outer phases and dense phases), ``program``
(write-verify, open loop, direct), ``advance``, pulse / energy / read counters, ``export_maps``,
``from_linear`` / ``to_linear`` - and :func:`make_crossbar` picks the backend by name.

Layout. Each row tile of ``tile_rows`` inputs is one ``AnalogTile`` of ``[out, 2 * rows]``
devices: rows ``0..rows-1`` hold ``G_plus`` and rows ``rows..2 rows - 1`` hold ``G_minus`` (the
differential pair) or the reference devices (``mapping="reference"`` / ``"unipolar"``; one per
weight here, one per row and column tile in the native crossbar). The tile reads ``[x, -x]``, so
its analog output *is* the differential column current, digitised by one ADC per tile, and the
row tiles add up digitally - the native crossbar's signal chain.

Devices. A memsnn model (preset name or :class:`~memsnn.device_models.DeviceModel`) is exported to
an aihwkit device with :func:`~memsnn.interop.aihwkit_export.export_device` (``kind="auto"``:
``"softbounds"`` for memsnn's soft-bounds ``rram`` law, exact; ``"piecewise"`` otherwise); an aihwkit pulsed device config (e.g.
``ReRamSBPresetDevice()``) is used as it is, with the memsnn model from
:func:`~memsnn.interop.aihwkit_import.import_device` for the controller's nominal law (pulse
steps, the window, the mapping). Conductances and aihwkit weights map affinely,
``G = g_min + (w - w_min) * window / (w_max - w_min)``.

Forward (``vmm``) goes through aihwkit's IO (``tile.forward``): the inputs ``x / x_max``, the
periphery converted by :func:`io_parameters` - DAC (``inp_res = 1 / (2**bits - 2)``), ADC
(``out_res``, ``out_bound = adc_bound`` window units), output noise, and read noise as aihwkit's
additive weight noise (``w_noise``); noise and bound management off, as in memsnn.

Pulses go through ``tile.update(x, d)`` with pulse trains of one slot (``desired_bl = 1``, no
update or BL management, a learning rate so large that every coincidence fires): one call per
*slot*, ``x`` and ``d`` in {-1, 0, +1}, so device ``(i, j)`` gets exactly one pulse wherever row
``i`` and column ``j`` both fire - SET (aihwkit "up") when their signs agree. An aligned
:class:`~memsnn.crossbar.schedule.OuterPhase` becomes ``min(|rows|, |cols|)`` slots (row ``i``
fires in the first ``|rows[i]|`` of them), a stochastic one ``length`` slots of Bernoulli bits
drawn from the crossbar's generator (aihwkit's stochastic pulse trains); stacked updates follow one
another. A :class:`~memsnn.crossbar.schedule.DensePhase` is applied row by row (the phase count
takes the cheaper of rows and columns; each device gets the same pulses either way): slot ``s`` of
row ``i`` drives that row alone and the columns with more than ``s`` pulses.
Pulses and energy are counted here (aihwkit counts neither on CPU), at the model's nominal
``energy_set`` / ``energy_reset``.

Time. ``advance`` calls aihwkit's ``drift_weights`` when the device has drift (a ``DriftParameter``
acting on the conductance, from the export). A device's drift clock restarts when it is written
(pulsed or set); aihwkit then holds its conductance for ``t_0`` seconds and follows
``(t / t_0) ** -nu``, where memsnn follows ``((t + t_0) / t_0) ** -nu`` from the write: the same
after ``t >> t_0`` (a day: 0.002 % apart for ``nu = 0.1``), different in the first minutes.

Not available on this backend (a clear error says so): IR drop (aihwkit's model differs),
half-select disturb, pulse amplitudes or widths other than the model's defaults (aihwkit pulses
have no amplitude), reading at a future time (``at=``; call ``advance`` first), saving (convert
with :meth:`AihwkitCrossbar.to_native`), GPUs (the installed aihwkit is built for CPU). What the
conversion could not carry is listed in :attr:`AihwkitCrossbar.notes`. aihwkit 1.1.0 has no seed
for its cycle-to-cycle and IO noise: device-to-device spread is seeded (``construction_seed``),
the rest agrees between runs in distribution, not bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterator

import torch

from ..crossbar.array import Crossbar, CrossbarParams, ScheduleResult
from ..crossbar.periphery import PeripheryParams
from ..crossbar.programming import ProgramReport, VerifyTracker, check_program_args
from ..crossbar.schedule import DensePhase, OuterPhase, PulseSchedule
from ..device_models import DeviceModel, DeviceState, SoftBoundsDevice, make_device

__all__ = ["AihwkitCrossbar", "make_crossbar", "BACKENDS", "io_parameters", "make_tile", "apply_slots",
           "pulse_update_parameters"]

Tensor = torch.Tensor
BACKENDS = ("native", "aihwkit")

#: learning rate of the pulse tiles: far above any device's granularity, so that with one-slot
#: trains and no update management every coincidence fires (p = min(1, A |x|) = 1)
_PULSE_LR = 1e6
#: elements (slots x devices) handled per tile.update call
_CHUNK = 1 << 22


# ====================================================================================================
# aihwkit plumbing
# ====================================================================================================
def pulse_update_parameters():
    """aihwkit ``UpdateParameters`` for exact pulse slots: one-slot trains, no update management."""
    from aihwkit.simulator.parameters import UpdateParameters
    from aihwkit.simulator.parameters.enums import PulseType

    return UpdateParameters(desired_bl=1, fixed_bl=True, update_bl_management=False, update_management=False,
                            pulse_type=PulseType.STOCHASTIC_COMPRESSED)


def io_parameters(periphery: PeripheryParams | None = None, *, w_span: float = 1.0, read_noise: float = 0.0):
    """aihwkit forward ``IOParameters`` equivalent to memsnn's periphery.

    Args:
        periphery: memsnn :class:`~memsnn.crossbar.periphery.PeripheryParams` (None: ideal).
        w_span: aihwkit weight units of one full conductance window (``w_max - w_min``), the
            current unit ``I_unit`` of memsnn's ADC bound and output noise.
        read_noise: per-device read noise std in aihwkit weight units (additive weight noise).

    Inputs are expected divided by ``x_max`` (``inp_bound = 1``). Everything off gives
    ``is_perfect=True`` (exact ``x @ W``).
    """
    from aihwkit.simulator.parameters import IOParameters
    from aihwkit.simulator.parameters.enums import BoundManagementType, NoiseManagementType, WeightNoiseType

    per = periphery or PeripheryParams()
    if per.dac_bits is None and per.adc_bits is None and per.output_noise == 0 and read_noise == 0:
        return IOParameters(is_perfect=True)
    big = 1e9  # "no clipping"
    kw: dict[str, Any] = dict(noise_management=NoiseManagementType.NONE, bound_management=BoundManagementType.NONE,
                              inp_noise=0.0, out_noise=float(per.output_noise * w_span), out_scale=1.0)
    if per.dac_bits is None:
        kw.update(inp_bound=big, inp_res=-1.0)
    else:  # aihwkit's step is 2 * inp_res * inp_bound, memsnn's 2 x_max / (2**bits - 2)
        kw.update(inp_bound=1.0, inp_res=1.0 / (2**per.dac_bits - 2))
    if per.adc_bits is None:
        kw.update(out_bound=big, out_res=-1.0)
    else:
        step = per.adc_step(w_span)  # 2 adc_bound I_unit / (2**bits - 2)
        bound = per.adc_bound * w_span if per.adc_clip else big
        kw.update(out_bound=float(bound), out_res=float(step / (2 * bound)))
    if read_noise > 0:
        kw.update(w_noise=float(read_noise), w_noise_type=WeightNoiseType.ADDITIVE_CONSTANT)
    return IOParameters(**kw)


def make_tile(device: Any, out_size: int, in_size: int, *, io: Any = None, seed: int | None = None):
    """An aihwkit ``AnalogTile`` of ``[out_size, in_size]`` devices set up for exact pulse slots.

    ``seed`` (>= 0) seeds the device-to-device spread (aihwkit's ``construction_seed``; aihwkit
    treats 0 as "unseeded", so ``seed + 1`` is passed).
    """
    from aihwkit.simulator.configs import SingleRPUConfig
    from aihwkit.simulator.parameters import IOParameters
    from aihwkit.simulator.tiles import AnalogTile

    if seed is not None and hasattr(device, "construction_seed"):
        device = dataclasses.replace(device, construction_seed=int(seed) + 1)
    cfg = SingleRPUConfig(device=device, forward=io if io is not None else IOParameters(is_perfect=True),
                          update=pulse_update_parameters())
    tile = AnalogTile(out_size, in_size, cfg)
    tile.set_learning_rate(_PULSE_LR)
    return tile


def apply_slots(tile: Any, x: Tensor, d: Tensor) -> None:
    """Apply pulse slots to a tile from :func:`make_tile`: ``x`` ``[N, in]`` and ``d`` ``[N, out]``
    in {-1, 0, +1}; device ``(j, i)`` gets one pulse per slot where both fire, up (SET) when
    ``x_i d_j > 0``. (aihwkit's update is ``W -= lr d x^T``, hence the sign flip.)"""
    tile.update(x.to(torch.float32).contiguous(), (-d).to(torch.float32).contiguous())


def _aihwkit_device_class():
    from aihwkit.simulator.configs.devices import PulsedDevice

    return PulsedDevice


# ====================================================================================================
# the crossbar
# ====================================================================================================
class AihwkitCrossbar(Crossbar):
    """A :class:`~memsnn.crossbar.Crossbar` on aihwkit tiles; see the module docstring.

    Args:
        in_features, out_features: matrix shape ``[rows = inputs, cols = outputs]``.
        model: memsnn preset name or :class:`~memsnn.device_models.DeviceModel` (exported to
            aihwkit), or an aihwkit pulsed device config (imported for the nominal law).
        params, periphery, scale, seed: as for :class:`~memsnn.crossbar.Crossbar` (``ir_drop``
            must be ``"none"``).
        device, dtype: ``"cpu"`` and ``torch.float32`` only (aihwkit's CPU tiles).
        kind, n_nodes: export of a memsnn model (see
            :func:`~memsnn.interop.aihwkit_export.export_device`); ``"auto"``: ``"softbounds"``
            for memsnn's soft-bounds law (``rram``, exact), ``"piecewise"`` otherwise.
        g_min, g_max: conductance window (S) for an aihwkit device (see
            :func:`~memsnn.interop.aihwkit_import.import_device`).
    """

    backend = "aihwkit"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        model: Any = "srtio3",
        *,
        params: CrossbarParams | None = None,
        periphery: PeripheryParams | None = None,
        scale: float = 1.0,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        seed: int = 0,
        kind: str = "auto",
        n_nodes: int = 63,
        g_min: float = 0.0,
        g_max: float = 100e-6,
    ):
        from .aihwkit_export import export_device
        from .aihwkit_import import import_device

        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}={v!r} must be an integer >= 1")
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale={scale!r} must be a finite number > 0 (the weight of a full window)")
        if torch.device(device).type != "cpu":
            raise ValueError(f"device={device!r}: the aihwkit backend runs on 'cpu' only (the installed aihwkit has CPU tiles)")
        if dtype != torch.float32:
            raise ValueError(f"dtype={dtype}: aihwkit tiles hold torch.float32")
        self.params = params or CrossbarParams()
        if self.params.ir_drop != "none":
            raise ValueError(f"ir_drop={self.params.ir_drop!r} is not available on the aihwkit backend (use 'none' "
                             "or backend='native')")
        self.periphery = periphery or PeripheryParams()
        self.in_features, self.out_features = in_features, out_features
        self.scale = float(scale)
        self.device = torch.device("cpu")
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.reads = 0
        self.bias = None
        self._cache = None
        self._time = 0.0

        if isinstance(model, (str, DeviceModel)):
            model = make_device(model) if isinstance(model, str) else model
            if kind == "auto":
                kind = "softbounds" if isinstance(model, SoftBoundsDevice) else "piecewise"
            exp = export_device(model, kind=kind, n_nodes=n_nodes, fidelity=False)
            self.model, self.aihwkit_device = exp.model, exp.device
            self._w_lo, self._w_hi = exp.w_min, exp.w_max
            self.notes = list(exp.not_carried)
        elif isinstance(model, _aihwkit_device_class()):
            imp = import_device(model, g_min=g_min, g_max=g_max)
            self.model, self.aihwkit_device = imp.model, model
            self._w_lo, self._w_hi = imp.w_min, imp.w_max
            self.notes = list(imp.not_carried)
        else:
            raise TypeError(f"model must be a memsnn preset name, a DeviceModel or an aihwkit pulsed device, "
                            f"got {type(model).__name__}")
        mp = self.model.params
        self._span = self._w_hi - self._w_lo
        self._per_w = mp.window / self._span  # siemens per aihwkit weight unit
        read_w = self._read_noise_w()
        self._io = io_parameters(self.periphery, w_span=self._span, read_noise=read_w)
        self._has_drift = mp.drift_nu > 0 and getattr(self.aihwkit_device, "drift", None) is not None \
            and getattr(self.aihwkit_device.drift, "nu", 0) > 0

        # one tile per row tile: [out, 2 * rows]; rows 0..r-1 plus, r..2r-1 minus / reference
        self._rows: list[slice] = []
        self._tiles = []
        tr = self.params.tile_rows
        for t in range(self.n_tiles[0]):
            rs = slice(t * tr, min((t + 1) * tr, in_features))
            self._rows.append(rs)
            self._tiles.append(make_tile(self.aihwkit_device, out_features, 2 * (rs.stop - rs.start), io=self._io,
                                         seed=seed * 1009 + t))
        shape = (in_features, out_features)
        g0 = mp.g_min if mp.g_init is None else mp.g_init
        if self.params.mapping == "differential":
            g_minus = torch.full(shape, g0)
        else:
            g_minus = torch.full(shape, (mp.g_min + mp.g_max) / 2 if self.params.mapping == "reference" else mp.g_min)
        self._set_conductances(torch.full(shape, g0), g_minus)
        self._n_set = torch.zeros((2, *shape), dtype=torch.int64)
        self._n_reset = torch.zeros((2, *shape), dtype=torch.int64)
        self._energy = torch.zeros((2, *shape), dtype=torch.float64)

    # ------------------------------------------------------------------------------------------------
    # conversions
    # ------------------------------------------------------------------------------------------------
    def _read_noise_w(self) -> float:
        """memsnn read noise as aihwkit additive weight noise (weight units)."""
        mp = self.model.params
        if mp.read_noise_std == 0:
            if getattr(mp, "read_noise_scale", 0) > 0:
                self.notes.append(f"{self.model.preset}: the 1/f read noise of the pcm statistics is not carried to "
                                  "aihwkit's forward pass")
            return 0.0
        if mp.read_noise_type == "absolute":
            return mp.read_noise_std * self._span
        g_mid = (mp.g_min + mp.g_max) / 2
        self.notes.append(f"{self.model.preset}: read noise relative to G ({mp.read_noise_std!r}) becomes aihwkit's "
                          "constant weight noise, its value at the middle of the window")
        return mp.read_noise_std * g_mid / self._per_w

    def _to_w(self, g: Tensor) -> Tensor:
        return self._w_lo + (g - self.model.params.g_min) / self._per_w

    def _to_g(self, w: Tensor) -> Tensor:
        return self.model.params.g_min + (w - self._w_lo) * self._per_w

    def _tile_weights(self, persistent: bool = False) -> tuple[Tensor, Tensor]:
        """aihwkit weights of the plus and minus halves, ``[in, out]`` each (apparent, or the
        devices' own weights without write noise)."""
        plus, minus = [], []
        for tile, rs in zip(self._tiles, self._rows):
            hp = tile.get_hidden_parameters() if persistent else None
            w = hp["persistent_weights"] if hp is not None and "persistent_weights" in hp \
                else tile.get_weights(apply_weight_scaling=False)[0]
            r = rs.stop - rs.start
            plus.append(w[:, :r].t())
            minus.append(w[:, r:].t())
        return torch.cat(plus), torch.cat(minus)

    def _set_conductances(self, g_plus: Tensor, g_minus: Tensor | None, mask: Tensor | None = None) -> None:
        """Write conductances ``[in, out]`` into the tiles (aihwkit's set_weights: exact, clipped to
        each device's bounds, write noise resampled); ``g_minus=None`` keeps the minus half as it
        is, and with ``mask`` only those weights change."""
        old_p, old_m = self._tile_weights(persistent=True) if (mask is not None or g_minus is None) else (None, None)
        wp = self._to_w(g_plus.double()).float()
        wm = old_m if g_minus is None else self._to_w(g_minus.double()).float()
        if mask is not None:
            wp, wm = torch.where(mask, wp, old_p), torch.where(mask, wm, old_m)
        for tile, rs in zip(self._tiles, self._rows):
            tile.set_weights(torch.cat((wp[rs], wm[rs])).t().contiguous(), apply_weight_scaling=False)
            self._restart_drift(tile)
        self._touch()

    def _restart_drift(self, tile) -> None:
        """Restart the drift clock of the devices just written (aihwkit does it at the next
        ``drift_weights`` call for every device whose weight changed; a call of 0 s makes that now)."""
        if self._has_drift:
            tile.tile.drift_weights(0.0)

    # ------------------------------------------------------------------------------------------------
    # state: conductances, mirrors for the controller, counters, time
    # ------------------------------------------------------------------------------------------------
    def conductances(self, at: float | None = None) -> tuple[Tensor, Tensor]:
        """``(G_plus, G_minus)`` ``[in, out]`` in siemens (``G_minus``: the reference devices for
        single-device mappings). Only the present can be read (``at=None`` or the current time)."""
        self._check_now(at)
        wp, wm = self._tile_weights()
        return self._to_g(wp.double()).float(), self._to_g(wm.double()).float()

    def _check_now(self, at: float | None) -> None:
        if at is not None and float(at) != self._time:
            raise ValueError(f"at={at!r}: the aihwkit backend reads the present only (time {self._time!r} s); "
                             "call advance() first")

    @property
    def time(self) -> float:
        """The array's clock (s)."""
        return self._time

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def _mirror(self, name: str) -> DeviceState:
        """A memsnn :class:`DeviceState` view of one array (conductances as the devices hold them,
        counters, clock) for the controller's nominal law; changing it changes nothing."""
        mp = self.model.params
        wp, wm = self._tile_weights(persistent=True)
        ap, am = self._tile_weights()
        i = 0 if name == "plus" else 1
        w, a = (wp, ap) if i == 0 else (wm, am)
        if name == "minus" and self.params.mapping != "differential":  # one reference per row and column tile
            cols = torch.arange(0, self.out_features, self.params.tile_cols)
            w, a = w[:, cols], a[:, cols]
        g = self._to_g(w.double()).float()
        z = torch.zeros_like(g)
        counts = (self._n_set[i], self._n_reset[i], self._energy[i])
        if g.shape != counts[0].shape:
            counts = tuple(torch.zeros(g.shape, dtype=c.dtype) for c in counts)
        dev = {"g_min": torch.full_like(g, mp.g_min), "g_max": torch.full_like(g, mp.g_max),
               "scale_set": torch.ones_like(g), "scale_reset": torch.ones_like(g), "tau": torch.ones_like(g)}
        return DeviceState(g=g, t_prog=torch.full(g.shape, self._time, dtype=torch.float64), g_vol=z,
                           nu=z.clone(), bias=z.clone(), write_offset=(self._to_g(a.double()).float() - g),
                           stuck=torch.zeros(g.shape, dtype=torch.int8), n_set=counts[0], n_reset=counts[1],
                           energy=counts[2], time=self._time, dev=dev)

    @property
    def plus(self) -> DeviceState:  # type: ignore[override]
        return self._mirror("plus")

    @property
    def minus(self) -> DeviceState:  # type: ignore[override]
        return self._mirror("minus")

    def _set_array(self, name: str, state: DeviceState) -> None:
        raise TypeError("the aihwkit backend's devices live in aihwkit tiles: change them with program(), "
                        "apply_schedule() or apply_pulses(), not by setting a memsnn DeviceState")

    def pulse_counts(self) -> dict[str, Tensor]:
        """Pulses applied per device (SET + RESET): ``{"plus": [in, out], "minus": ...}``."""
        n = self._n_set + self._n_reset
        if self.params.mapping == "differential":
            return {"plus": n[0].clone(), "minus": n[1].clone()}
        return {"plus": n[0].clone(), "minus": torch.zeros((self.in_features, self.n_tiles[1]), dtype=torch.int64)}

    @property
    def total_pulses(self) -> int:
        return int(self._n_set.sum() + self._n_reset.sum())

    @property
    def energy(self) -> float:
        """Programming energy spent so far (J), at the model's nominal pulse energies."""
        return float(self._energy.sum())

    def advance(self, seconds: float) -> "AihwkitCrossbar":
        """Let ``seconds`` pass: aihwkit's drift (see the module docstring) when the device drifts."""
        if not (isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and math.isfinite(seconds)
                and seconds >= 0):
            raise ValueError(f"seconds={seconds!r} must be a finite number >= 0")
        if self._has_drift and seconds > 0:
            for tile in self._tiles:
                tile.tile.drift_weights(float(seconds))
        self._time += float(seconds)
        self._touch()
        return self

    # ------------------------------------------------------------------------------------------------
    # forward
    # ------------------------------------------------------------------------------------------------
    def vmm(self, x: Tensor, *, binary: bool = False) -> Tensor:
        """Outputs ``[B, out]`` for inputs ``x`` ``[B, in]`` (or ``[in]``) through aihwkit's forward
        IO, one ``AnalogTile`` per row tile, partial sums added digitally. ``binary`` is accepted
        for interface compatibility (it changes nothing here)."""
        squeeze = isinstance(x, torch.Tensor) and x.dim() == 1
        x = self._check_input(x)
        u = x * (1.0 / self.periphery.x_max)
        y = None
        for tile, rs in zip(self._tiles, self._rows):
            ut = u[:, rs]
            out = tile.tile.forward(torch.cat((ut, -ut), dim=1).contiguous(), False, False, False, True, False)
            y = out if y is None else y + out
        self.reads += x.shape[0]
        y = y * (self.periphery.x_max * self.scale * self._per_w / self._w_norm)
        return y.squeeze(0) if squeeze else y

    __call__ = vmm

    # ------------------------------------------------------------------------------------------------
    # pulses
    # ------------------------------------------------------------------------------------------------
    def _slots_outer(self, ph: OuterPhase) -> Iterator[tuple[int, Tensor, Tensor]]:
        """``(array, x [N, in], d [N, out])`` slot blocks of an outer phase, in time order."""
        rows = ph.rows.unsqueeze(0) if ph.rows.dim() == 1 else ph.rows
        arrays = [(0, ph.cols_plus)] + ([(1, ph.cols_minus)] if ph.cols_minus is not None else [])
        for b in range(rows.shape[0]):
            r = rows[b].cpu()
            if ph.train == "aligned":
                ra = r.abs().to(torch.int64)
                for a, cols in arrays:
                    c = (cols.unsqueeze(0) if cols.dim() == 1 else cols)[b].cpu()
                    ca = c.abs().to(torch.int64)
                    n = int(min(int(ra.max()), int(ca.max()))) if ra.numel() and ca.numel() else 0
                    if n == 0:
                        continue
                    s = torch.arange(n)[:, None]
                    yield a, torch.sign(r).float() * (ra[None] > s), torch.sign(c).float() * (ca[None] > s)
            else:
                L = ph.length
                bits_r = (torch.rand((L, r.numel()), generator=self.generator, dtype=torch.float64) < r.abs().double()[None])
                for a, cols in arrays:
                    c = (cols.unsqueeze(0) if cols.dim() == 1 else cols)[b].cpu()
                    bits_c = torch.rand((L, c.numel()), generator=self.generator, dtype=torch.float64) < c.abs().double()[None]
                    yield a, torch.sign(r).float() * bits_r, torch.sign(c).float() * bits_c

    def _slots_dense(self, a: int, counts: Tensor) -> Iterator[tuple[int, Tensor, Tensor]]:
        """Row-by-row slots of a dense phase of signed counts ``[in, out]`` on array ``a``."""
        counts = counts.cpu().to(torch.int64)
        mags = counts.abs()
        per_row = mags.max(dim=1).values
        rows = torch.nonzero(per_row, as_tuple=True)[0]
        if rows.numel() == 0:
            return
        n_slots = per_row[rows]
        budget = max(1, _CHUNK // (self.in_features + self.out_features))
        start = 0
        while start < rows.numel():  # chunks of whole rows, about `budget` slots each
            csum = torch.cumsum(n_slots[start:], 0)
            stop = start + max(1, int((csum <= budget).sum()))
            r_idx, m = rows[start:stop], n_slots[start:stop]
            row_of = torch.repeat_interleave(r_idx, m)
            first = torch.repeat_interleave(torch.cumsum(m, 0) - m, m)
            s = torch.arange(row_of.numel()) - first  # slot index within its row
            x = torch.zeros((row_of.numel(), self.in_features))
            x[torch.arange(row_of.numel()), row_of] = 1.0
            k = counts[row_of]
            yield a, x, torch.sign(k).float() * (k.abs() > s[:, None])
            start = stop

    def _run(self, a: int, x: Tensor, d: Tensor) -> None:
        """Apply slots on array ``a`` (0 plus, 1 minus) and count the pulses."""
        keep = (x != 0).any(dim=1) & (d != 0).any(dim=1)
        if not bool(keep.all()):
            x, d = x[keep], d[keep]
        if x.shape[0] == 0:
            return
        signed = x.t() @ d  # SET minus RESET coincidences per device
        total = x.abs().t() @ d.abs()
        n_up = ((total + signed) / 2).round().to(torch.int64)
        n_down = ((total - signed) / 2).round().to(torch.int64)
        mp = self.model.params
        e_set = mp.energy_set * (mp.v_set / mp.v_ref) ** 2 * (mp.pulse_width / mp.width_ref)
        e_reset = mp.energy_reset * (mp.v_reset / mp.v_ref) ** 2 * (mp.pulse_width / mp.width_ref)
        self._n_set[a] += n_up
        self._n_reset[a] += n_down
        self._energy[a] += n_up.double() * e_set + n_down.double() * e_reset
        for tile, rs in zip(self._tiles, self._rows):
            xt = x[:, rs]
            on = (xt != 0).any(dim=1)
            if not bool(on.any()):
                continue
            xt, dt = xt[on], d[on]
            z = torch.zeros_like(xt)
            apply_slots(tile, torch.cat((xt, z) if a == 0 else (z, xt), dim=1), dt)
            self._restart_drift(tile)

    def _check_pulse_settings(self, amplitude: float | None, width: float | None, where: str) -> None:
        mp = self.model.params
        if amplitude is not None and amplitude not in (mp.v_set, mp.v_reset):
            raise ValueError(f"{where}: amplitude={amplitude!r} V - the aihwkit backend pulses at the device's "
                             f"defaults only (v_set={mp.v_set!r}, v_reset={mp.v_reset!r}); use amplitude=None")
        if width is not None and width != mp.pulse_width:
            raise ValueError(f"{where}: width={width!r} s - the aihwkit backend pulses at pulse_width={mp.pulse_width!r} "
                             "only; use width=None")

    def apply_schedule(self, schedule: PulseSchedule | OuterPhase | DensePhase, *,
                       half_select: bool | None = None) -> ScheduleResult:
        """Apply every phase through ``tile.update`` slots; returns its cost (see the module docstring)."""
        if isinstance(schedule, (OuterPhase, DensePhase)):
            schedule = PulseSchedule([schedule])
        if self.params.half_select if half_select is None else half_select:
            raise ValueError("half-select disturb is not available on the aihwkit backend (half_select=False, "
                             "or backend='native')")
        for i, ph in enumerate(schedule):  # validate everything before any pulse
            if tuple(ph.shape) != self.shape:
                raise ValueError(f"phase {i} has shape {tuple(ph.shape)}, expected {self.shape}")
            minus = ph.cols_minus if isinstance(ph, OuterPhase) else ph.minus
            if self.params.mapping != "differential" and minus is not None and bool((minus != 0).any()):
                raise ValueError(f"phase {i} programs a minus array, but this crossbar maps weights on one device "
                                 f"per weight (mapping={self.params.mapping!r})")
            self._check_pulse_settings(ph.amplitude, ph.width, f"phase {i}")
        pulses0, energy0 = self.total_pulses, self.energy
        for ph in schedule:
            if isinstance(ph, DensePhase):
                for a, counts in ((0, ph.plus), (1, ph.minus)):
                    if counts is not None:
                        for arr, x, d in self._slots_dense(a, counts):
                            self._run(arr, x, d)
            else:
                for arr, x, d in self._slots_outer(ph):
                    self._run(arr, x, d)
        self._touch()
        return ScheduleResult(self.total_pulses - pulses0, 0, self.energy - energy0, schedule.hardware_phases())

    # ------------------------------------------------------------------------------------------------
    # programming
    # ------------------------------------------------------------------------------------------------
    def program(self, w: Tensor, method: str = "write_verify", *, tol: float = 0.01, max_iter: int = 50,
                k_max: int = 1000, gain: float = 1.0, amplitude: float | None = None, settle: float | None = None,
                mask: Tensor | None = None, patience: int | None = 8, check: bool = True) -> ProgramReport:
        """Program weights ``w`` ``[in, out]`` with aihwkit's devices; the methods and arguments of
        :func:`memsnn.crossbar.programming.program_weights`. ``"direct"`` is aihwkit's
        ``set_weights`` (exact up to each device's bounds) plus the model's programming noise."""
        settle = check_program_args(self, method=method, tol=tol, max_iter=max_iter, k_max=k_max, gain=gain,
                                    settle=settle, mask=mask, patience=patience, check=check)
        self._check_pulse_settings(amplitude, None, "program")
        mp = self.model.params
        g_plus_t, g_minus_t = self.target_conductances(w)  # validates w
        targets = [(0, g_plus_t)] + ([(1, g_minus_t)] if g_minus_t is not None else [])
        sel = torch.ones(self.shape, dtype=torch.bool) if mask is None else mask
        pulses0, energy0, reads0 = self.total_pulses, self.energy, self.reads
        tol_s = tol * mp.window
        iterations, phases = 1, 0
        if method == "direct":
            dev = self.model.nominal_device_params(dtype=torch.float32)
            new = []
            for a, target in targets:
                sigma = self.model.programming_noise_std(target, dev)
                g1 = target if isinstance(sigma, float) and sigma == 0.0 else \
                    target + sigma * torch.randn(target.shape, generator=self.generator)
                new.append(g1)
            self._set_conductances(new[0], new[1] if len(new) > 1 else None, mask)
        elif method == "open_loop":
            n_reset = self.model.full_reset_pulses()
            for a, target in targets:
                counts = torch.zeros(self.shape, dtype=torch.int64)
                if mask is None:  # one parallel RESET phase: every row and column for n_reset slots
                    ones = torch.ones((n_reset, self.in_features)), -torch.ones((n_reset, self.out_features))
                    self._run(a, *ones)
                    phases += OuterPhase(torch.ones(self.in_features, dtype=torch.int32),
                                         torch.full((self.out_features,), -n_reset, dtype=torch.int32)).hardware_phases()
                else:
                    counts = -n_reset * mask.to(torch.int64)
                    self._apply_dense(a, counts)
                    phases += DensePhase(counts).hardware_phases()
                start = torch.full(self.shape, mp.g_min, dtype=torch.float64)
                k = self.model.pulses_needed(start, target).round().clamp(0, k_max).to(torch.int64) * sel
                self._apply_dense(a, k)
                phases += DensePhase(k).hardware_phases()
        else:
            iterations, phases = self._write_verify(targets, tol_s, max_iter, k_max, gain, settle, mask, patience)
        self._touch()
        if not check:
            return ProgramReport.cost_only(method, iterations, self.total_pulses - pulses0, self.energy - energy0,
                                           self.reads - reads0, phases, tol_s)
        # the truth: the devices' own conductances and the weights now
        gp, gm = (self._to_g(t.double()).float() for t in self._tile_weights(persistent=True))
        sq, n_dev, n_ok = 0.0, 0, 0
        bad = torch.zeros(self.shape, dtype=torch.bool)
        for a, target in targets:
            err = ((gp if a == 0 else gm) - target)[sel]
            off = err.abs() > tol_s
            bad[sel] |= off
            sq += float((err.double() ** 2).sum())
            n_dev += err.numel()
            n_ok += int((~off).sum())
        w_err = (self.weights() - w.to(self.dtype)).double()[sel]
        return ProgramReport(method=method, iterations=iterations, pulses=self.total_pulses - pulses0,
                             energy_J=self.energy - energy0, reads=self.reads - reads0, hardware_phases=phases,
                             weight_rmse=float(w_err.pow(2).mean().sqrt()), weight_max_error=float(w_err.abs().max()),
                             g_rmse_S=math.sqrt(sq / max(n_dev, 1)), tolerance_S=tol_s,
                             converged_fraction=n_ok / max(n_dev, 1), failed=bad,
                             stuck=torch.zeros(self.shape, dtype=torch.bool))

    def _apply_dense(self, a: int, counts: Tensor) -> None:
        for arr, x, d in self._slots_dense(a, counts):
            self._run(arr, x, d)

    def _write_verify(self, targets, tol_s, max_iter, k_max, gain, settle, mask, patience) -> tuple[int, int]:
        """Read, compare, pulse, settle - the control loop of
        :func:`memsnn.crossbar.programming.program_weights` on aihwkit's devices."""
        model = self.model
        phases = 0
        trackers = {a: VerifyTracker(t, gain, patience) for a, t in targets}
        for it in range(1, max_iter + 1):
            pending = []
            for a, target in targets:
                g_read = model.read(self._mirror("plus" if a == 0 else "minus"), generator=self.generator)
                err = target - g_read
                need = err.abs() > tol_s
                if mask is not None:
                    need &= mask
                need = trackers[a].update(err, need)
                if bool(need.any()):
                    pending.append((a, target, g_read, need))
            self.reads += 1
            if not pending:
                return it, phases
            for a, target, g_read, need in pending:
                k = trackers[a].pulses(model.pulses_needed(g_read, target), need, k_max).to(torch.int64)
                self._apply_dense(a, k)
                phases += DensePhase(k).hardware_phases()
            if settle > 0:
                self.advance(settle)
        return max_iter, phases

    # ------------------------------------------------------------------------------------------------
    # conversion and persistence
    # ------------------------------------------------------------------------------------------------
    def to_native(self) -> Crossbar:
        """A native :class:`~memsnn.crossbar.Crossbar` (same model, settings and seed) holding this
        crossbar's present conductances, counters and clock - what can be saved and reloaded."""
        x = Crossbar(self.in_features, self.out_features, self.model, params=self.params, periphery=self.periphery,
                     scale=self.scale, seed=self.seed)
        gp, gm = self._tile_weights(persistent=True)
        gp, gm = self._to_g(gp.double()).float(), self._to_g(gm.double()).float()
        if self.params.mapping != "differential":
            gm = gm[:, torch.arange(0, self.out_features, self.params.tile_cols)]
        for name, g, i in (("plus", gp, 0), ("minus", gm, 1)):
            st = getattr(x, name)
            kw: dict[str, Any] = dict(g=g, t_prog=torch.full_like(st.t_prog, self._time), time=self._time)
            if g.shape == self._n_set[i].shape:
                kw.update(n_set=self._n_set[i].clone(), n_reset=self._n_reset[i].clone(), energy=self._energy[i].clone())
            x._set_array(name, st.replace(**kw))
        x.reads, x.bias = self.reads, self.bias
        return x

    def state_dict(self) -> dict[str, Any]:
        raise TypeError("an aihwkit-backed crossbar cannot be saved directly: save crossbar.to_native() "
                        "(same conductances, counters and clock)")

    def to(self, device: torch.device | str) -> "AihwkitCrossbar":
        if torch.device(device).type != "cpu":
            raise ValueError(f"device={device!r}: the aihwkit backend runs on 'cpu' only")
        return self

    def __repr__(self) -> str:
        return (f"AihwkitCrossbar({self.in_features}x{self.out_features}, model={self.model.preset!r}, "
                f"aihwkit={type(self.aihwkit_device).__name__}, tiles={self.n_tiles}, mapping={self.params.mapping!r})")


def make_crossbar(in_features: int, out_features: int, model: Any = "srtio3", *, backend: str = "native",
                  **kwargs: Any) -> Crossbar:
    """A crossbar on the chosen backend: ``"native"`` (:class:`~memsnn.crossbar.Crossbar`) or
    ``"aihwkit"`` (:class:`AihwkitCrossbar`); ``kwargs`` go to the constructor."""
    if backend == "native":
        return Crossbar(in_features, out_features, model, **kwargs)
    if backend == "aihwkit":
        return AihwkitCrossbar(in_features, out_features, model, **kwargs)
    raise ValueError(f"backend={backend!r} is not allowed: use one of {', '.join(map(repr, BACKENDS))}")

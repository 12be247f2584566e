"""A crossbar layer: a weight matrix on device pairs, split over tiles, read through the periphery.

:class:`Crossbar` holds a ``[in_features, out_features]`` weight matrix (``[rows = inputs, cols =
outputs]``) on two device arrays - ``plus`` and ``minus`` of a differential pair, or one array plus
a reference column per tile (see :mod:`memsnn.crossbar.mapping`). The matrix is split into tiles of
``tile_rows x tile_cols``; each tile has its own DAC / ADC, and the partial sums of the row tiles
are added digitally after each tile's ADC, so the tiled array behaves like one layer.

VMM, per row tile ``t`` (:mod:`memsnn.crossbar.periphery` for the stages)::

    V_t = DAC(x_t) * v_read / x_max
    I_t = V_t @ (G_plus_t - G_minus_t)              (or an IR-drop solve, see below)
        + sqrt((V_t**2) @ (s_plus**2 + s_minus**2)) * xi      read noise, output-referred
    y   = sum_t ADC(I_t + output noise) * (x_max / v_read) * scale / window_norm

Read noise: each device read is ``G * (1 + r * xi)`` with independent ``xi`` per device and per
input vector; summed over a column this is exactly a Gaussian of variance
``sum_i V_i**2 G_i**2 r_i**2``, which is what is sampled (``s = G * r``) - exact in distribution and
far cheaper than drawing a noisy copy of the array for every input. On the CPU the standard
normals come from the crossbar's :class:`~memsnn.crossbar.noise_stream.NoiseStream` (a Philox
stream: fixed by the seed and each row's place in the read history, saved with the crossbar), on
other devices from its generator. Spikes (``vmm(x, binary=True)``) are read event-driven on the
CPU (:attr:`Crossbar.spike_read`, :func:`~memsnn.crossbar.read_kernel.spike_read`). With IR drop the wire solve
uses the noise-free conductances and the same output-referred read noise is added (a second-order
approximation).

IR drop (``ir_drop`` in :class:`CrossbarParams`): ``"none"``, ``"approx"`` (vectorised fixed-point
iterations, :func:`memsnn.crossbar.irdrop.ir_drop_approx`) or ``"exact"`` (nodal solve with scipy
sparse, :func:`memsnn.crossbar.irdrop.solve_ir_drop_exact`). The physical tile interleaves the
plus and minus columns (``[+0, -0, +1, -1, ...]``, sharing row wires); a reference column sits
after the tile's last column. ``r_wire`` is the resistance of one wire segment between cells.

Time: :meth:`Crossbar.advance` lets volatile parts relax and drift run; reads at any later time see
the drifted conductances; programming a device resets its drift clock.

Counters: pulses per device (:meth:`Crossbar.pulse_counts`), programming energy
(:attr:`Crossbar.energy`, J), and read operations (:attr:`Crossbar.reads`: one per input vector of
a VMM and one per verify read of the whole array).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from ..device_models import DeviceModel, DeviceState, make_device
from ..device_models.base import check_pulses
from ..device_models.storage import device_payload, devices_from_payload
from ..files import atomic_path
from ..params import Params, param
from .mapping import MAPPINGS, conductances_to_weights, from_linear_weight, to_linear_weight, weights_to_conductances
from .noise_stream import NoiseStream, stream_key
from .read_kernel import DenseRead, dac_in, read_out, spike_read as _spike_kernel
from .periphery import PeripheryParams, dac, dac_codes
from .schedule import DensePhase, OuterPhase, PulseSchedule

__all__ = ["CrossbarParams", "Crossbar", "ScheduleResult"]

Tensor = torch.Tensor


@dataclass(frozen=True)
class CrossbarParams(Params):
    """Array-level settings (SI units)."""

    _owner = "crossbar"

    mapping: str = param("differential", check=None, choices=MAPPINGS, doc="weight mapping: device pair, or one device + reference column (signed, or unipolar >= 0)")
    pair_mode: str = param("one_sided", check=None, choices=("one_sided", "balanced"), doc="differential pair written from g_min (SET-only) or around the window middle (bipolar)")
    tile_rows: int = param(256, unit="1", check="int>=1", doc="rows (inputs) per tile")
    tile_cols: int = param(256, unit="1", check="int>=1", doc="columns (outputs) per tile")
    ir_drop: str = param("none", check=None, choices=("none", "approx", "exact"), doc="IR-drop model")
    r_wire: float = param(1.0, unit="ohm", check=">=0", doc="wire resistance per segment (rows and columns), used when ir_drop != 'none'")
    array_type: str = param("1T1R", check=None, choices=("1T1R", "0T1R"), doc="access device per cell, or passive (sneak paths)")
    r_access: float = param(0.0, unit="ohm", check=">=0", doc="access transistor on-resistance (1T1R)")
    ir_iterations: int = param(3, unit="1", check="int>=1", doc="iterations of the approximate IR-drop solver")
    half_select: bool = param(False, check=None, choices=(True, False), doc="apply V/2 disturb pulses to half-selected devices in outer-product phases")


@dataclass
class ScheduleResult:
    """What applying a schedule cost."""

    pulses: int  # full-amplitude pulses applied (SET + RESET, both arrays)
    half_select_pulses: int  # V/2 disturb pulses applied
    energy_J: float
    hardware_phases: int


class Crossbar:
    """A weight matrix on memristor crossbar tiles; see the module docstring.

    Args:
        in_features, out_features: matrix shape ``[rows = inputs, cols = outputs]``.
        model: device preset name or a :class:`~memsnn.device_models.DeviceModel`.
        params: :class:`CrossbarParams` (mapping, tiling, IR drop, half-select).
        periphery: :class:`~memsnn.crossbar.periphery.PeripheryParams` (default: ideal).
        scale: weight that the full conductance window represents (``|w| <= scale``).
        device: torch device; dtype: float dtype of conductances.
        seed: seeds the crossbar's generator (device spread, noise, stochastic trains).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        model: str | DeviceModel = "srtio3",
        *,
        params: CrossbarParams | None = None,
        periphery: PeripheryParams | None = None,
        scale: float = 1.0,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        seed: int = 0,
    ):
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}={v!r} must be an integer >= 1")
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale={scale!r} must be a finite number > 0 (the weight of a full window)")
        self.model = make_device(model) if isinstance(model, str) else model
        self.params = params or CrossbarParams()
        self.periphery = periphery or PeripheryParams()
        self.in_features, self.out_features = in_features, out_features
        self.scale = float(scale)
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.seed = seed
        self.reads = 0
        self.bias: Tensor | None = None  # digital bias, kept for nn.Linear round trips
        self._cache: dict[str, Any] | None = None
        self._noise: NoiseStream | None = None  # read-noise normals (CPU), built on first use
        self._noise_buf: Tensor | None = None  # scratch float32 buffer for the read noise of large VMMs
        shape = (in_features, out_features)
        self.plus = self.model.init_state(shape, device=self.device, dtype=dtype, generator=self.generator)
        if self.params.mapping == "differential":
            self.minus = self.model.init_state(shape, device=self.device, dtype=dtype, generator=self.generator)
        else:  # one reference column per column tile: the window's middle (signed) or g_min (unipolar)
            ref = self.model.init_state((in_features, self.n_tiles[1]), device=self.device, dtype=dtype, generator=self.generator)
            p = self.model.params
            g_ref = (p.g_min + p.g_max) / 2 if self.params.mapping == "reference" else p.g_min
            self.minus = self.model.program(ref, torch.full(ref.shape, g_ref, dtype=dtype, device=self.device), generator=self.generator)

    # ------------------------------------------------------------------------------------------------
    # geometry
    # ------------------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return self.in_features, self.out_features

    @property
    def n_tiles(self) -> tuple[int, int]:
        p = self.params
        return math.ceil(self.in_features / p.tile_rows), math.ceil(self.out_features / p.tile_cols)

    def tiles(self) -> Iterator[tuple[tuple[int, int], slice, slice]]:
        """``((tile_row, tile_col), row_slice, col_slice)`` for every tile."""
        p = self.params
        for r in range(self.n_tiles[0]):
            for c in range(self.n_tiles[1]):
                yield (r, c), slice(r * p.tile_rows, min((r + 1) * p.tile_rows, self.in_features)), \
                    slice(c * p.tile_cols, min((c + 1) * p.tile_cols, self.out_features))

    @property
    def dtype(self) -> torch.dtype:
        return self.plus.dtype

    @property
    def time(self) -> float:
        """The array's clock (s)."""
        return self.plus.time

    @property
    def i_unit(self) -> float:
        """Current of one full-window device at full-scale input (A): the ADC's unit."""
        return self.periphery.v_read * self.model.params.window

    @property
    def _w_norm(self) -> float:
        window = self.model.params.window
        return window / 2 if self.params.mapping == "reference" else window

    # ------------------------------------------------------------------------------------------------
    # conductances and weights
    # ------------------------------------------------------------------------------------------------
    def _expand_ref(self, g_ref: Tensor) -> Tensor:
        """Reference conductance ``[in, n_col_tiles]`` -> per weight ``[in, out]``."""
        return g_ref.repeat_interleave(self.params.tile_cols, dim=1)[:, : self.out_features]

    def conductances(self, at: float | None = None) -> tuple[Tensor, Tensor]:
        """Noise-free ``(G_plus, G_minus)`` ``[in, out]`` in siemens at time ``at`` (default: now).

        With the reference mapping ``G_minus`` is each weight's reference conductance.
        """
        gp = self.model.conductance(self.plus, at)
        gm = self.model.conductance(self.minus, at)
        if self.params.mapping != "differential":
            gm = self._expand_ref(gm)
        return gp, gm

    def weights(self, at: float | None = None) -> Tensor:
        """Effective weights ``[in, out]`` the array holds at time ``at`` (noise-free)."""
        gp, gm = self.conductances(at)
        p = self.model.params
        return conductances_to_weights(gp, gm, scale=self.scale, g_min=p.g_min, g_max=p.g_max, mapping=self.params.mapping)

    def target_conductances(self, w: Tensor) -> tuple[Tensor, Tensor | None]:
        """Conductance targets for weights ``w`` ``[in, out]`` under this crossbar's mapping."""
        w = self._check_matrix("w", w)
        p = self.model.params
        return weights_to_conductances(w, scale=self.scale, g_min=p.g_min, g_max=p.g_max, mapping=self.params.mapping,
                                       balanced=self.params.pair_mode == "balanced")

    def _check_matrix(self, name: str, w: Any) -> Tensor:
        if not isinstance(w, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape {self.shape}, got {type(w).__name__}")
        if tuple(w.shape) != self.shape:
            raise ValueError(f"{name} has shape {tuple(w.shape)}, expected {self.shape} = [in_features, out_features]")
        if not w.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating tensor, got {w.dtype}")
        if not torch.isfinite(w).all():
            raise ValueError(f"{name} contains {int((~torch.isfinite(w)).sum())} NaN or infinite values")
        return w.to(device=self.device, dtype=self.dtype)

    def _touch(self) -> None:
        self._cache = None
        self._version = getattr(self, "_version", 0) + 1

    @property
    def version(self) -> int:
        """Increases whenever the array's state or clock changes (for caches of derived values)."""
        return getattr(self, "_version", 0)

    def _cached(self) -> dict[str, Any]:
        """Tile-shaped tensors for the VMM at the current time (rebuilt after any change).

        ``gdiff``: ``[n_rt, tile_rows, out]`` differential conductances (zero-padded rows);
        ``var``: per-device read-noise variances summed over the devices of a weight, where they
        depend on the device; ``var_const``: the part that is the same for every device (S^2).
        """
        if self._cache is not None:
            return self._cache
        p = self.params
        n_rt, _ = self.n_tiles
        rows_pad = n_rt * p.tile_rows - self.in_features
        gp, gm = self.conductances()
        cache: dict[str, Any] = {"gp": gp, "gm": gm, "var_const": 0.0}
        gdiff = torch.nn.functional.pad(gp - gm, (0, 0, 0, rows_pad))
        cache["gdiff"] = gdiff.view(n_rt, p.tile_rows, self.out_features)
        cache["gdiff0"] = cache["gdiff"][0]
        var = None
        minus_g = gm if p.mapping == "differential" else self.model.conductance(self.minus)
        for state, g, expand in ((self.plus, gp, False), (self.minus, minus_g, p.mapping != "differential")):
            elapsed = (state.time - state.t_prog).clamp(min=0.0)
            sigma = self.model.read_noise_std(state, g, elapsed)
            if isinstance(sigma, float):
                cache["var_const"] += sigma**2
                continue
            sigma2 = sigma**2
            if expand:
                sigma2 = self._expand_ref(sigma2)
            var = sigma2 if var is None else var + sigma2
        if var is not None:
            var = torch.nn.functional.pad(var, (0, 0, 0, rows_pad))
            cache["var"] = var.view(n_rt, p.tile_rows, self.out_features)
        self._cache = cache
        return cache

    # ------------------------------------------------------------------------------------------------
    # VMM
    # ------------------------------------------------------------------------------------------------
    #: elements of one row-chunk's per-tile partial sums; keeps the VMM's work in cache
    _chunk_elems = 1 << 20
    #: row chunks whose read-noise numbers are drawn together (8 M numbers, 32 MB in float32)
    _noise_blocks = 8
    #: the CPU output stage in one pass (read_kernel); False: eager torch ops (for A/B timing and tests)
    _one_pass_read = True
    #: dense reads with absolute read noise through a :class:`~memsnn.crossbar.read_kernel.DenseRead`
    #: built once per state; False: the general one-pass read (the same numbers; for A/B tests)
    _dense_plans = True
    #: how ``vmm(x, binary=True)`` reads spikes on the CPU: ``"sparse"`` sums the rows of the active
    #: inputs only (event-driven; cost grows with the spike density, ~0.6 of the dense GEMM at 20 %
    #: and about equal near 35 %), ``"dense"`` runs the tile GEMMs (faster for dense inputs)
    spike_read = "sparse"

    def vmm(self, x: Tensor, *, binary: bool = False) -> Tensor:
        """Outputs ``[B, out]`` for inputs ``x`` ``[B, in]`` (or ``[in]``) through devices and periphery.

        ``binary=True`` promises every input is 0 or x_max (spikes): then ``V**2 = v_full * V`` and
        the read-noise variance comes out of the same GEMM as the current (one call, not two).
        Large batches are processed in row chunks so that each tile's partial sums stay in cache.

        Random numbers: one standard normal per (input row, row tile, output), in that row-major
        order. On the CPU they come from :attr:`noise_stream` (a Philox stream; each row's numbers
        are fixed by the seed and the row's place in the crossbar's read history), so splitting a
        batch into several calls (a per-step network) reads exactly the numbers of one call on all
        rows (a multi-step network), with any thread count. On other devices they come from the
        crossbar's generator. On the CPU, spikes are read event-driven (:attr:`spike_read`): the
        same numbers, the currents summed in another order (equal to float rounding).
        """
        squeeze = isinstance(x, torch.Tensor) and x.dim() == 1
        # row chunks of about _chunk_elems partial sums (a multiple of 16 rows); each chunk's result
        # is written into its rows of the output (no concatenation afterwards)
        rows = max(16, self._chunk_elems // (self.n_tiles[0] * self.out_features) // 16 * 16)
        one_pass_in = not binary and self._dac_in_ok(x, rows)
        x, nonneg = self._checked_input(x, binary, check_finite=not one_pass_in)
        cache = self._cached()
        B = x.shape[0]
        fused = binary and "var" in cache and nonneg
        if binary and self.spike_read == "sparse" and self._sparse_ok(x):
            y = self._spike_read(x, cache)
        elif one_pass_in and (plan := self._dense_plan(cache)) is not None:
            stream = self.noise_stream
            y = plan(x, stream.position)
            stream.position += B
        elif one_pass_in:
            step = self.periphery.dac_step()
            codes, norms, bad = dac_in(x, 1.0 / step, self.periphery.x_max, self.params.tile_rows, self.n_tiles[0])
            if bad:
                raise ValueError(f"inputs contain {bad} NaN or infinite values")
            y = self._vmm_block(x, cache, binary, fused, dac=(codes, norms, step * self.periphery.v_read / self.periphery.x_max))
        elif B <= rows:
            y = self._vmm_block(x, cache, binary, fused)
        else:
            # the noise of _noise_blocks row chunks is drawn at once: on several threads, one
            # parallel draw after torch's own (OpenMP) ops costs their spin-wait once, not per chunk
            noisy = "var" in cache or cache["var_const"] > 0 or self.periphery.output_noise > 0
            y = torch.empty((B, self.out_features), dtype=x.dtype, device=x.device)
            for i in range(0, B, rows):
                if noisy and i % (rows * self._noise_blocks) == 0:
                    noise, n0 = self._normals(min(B - i, rows * self._noise_blocks), x.dtype, reuse=True), i
                sub = noise[i - n0:i - n0 + rows] if noisy else None
                self._vmm_block(x[i:i + rows], cache, binary, fused, out=y[i:i + rows], noise=sub)
        self.reads += B
        return y.squeeze(0) if squeeze else y

    def _dense_plan(self, cache: dict[str, Any]) -> DenseRead | None:
        """The :class:`~memsnn.crossbar.read_kernel.DenseRead` of this state (built once per
        cache), where it applies: a read noise that is the same for every device (absolute; the
        std follows from the input's norm). ``None`` otherwise (the general one-pass read)."""
        if "dense_plan" not in cache:
            plan = None
            per = self.periphery
            if self._dense_plans and "var" not in cache and cache["var_const"] > 0:
                step, dac_step = per.adc_step(self.i_unit), per.dac_step()
                f = 1.0 if step is None else 1.0 / step
                v_in = dac_step * per.v_read / per.x_max
                plan = DenseRead(
                    self._scaled(cache, "gdiff", v_in), self.in_features, inv_step=1.0 / dac_step, x_max=per.x_max,
                    std_mul=math.sqrt(cache["var_const"] * f * f) * v_in, std_add=(per.output_noise * self.i_unit * f) ** 2,
                    bound=per.adc_bound * self.i_unit * f if step is not None and per.adc_clip else None,
                    adc=step is not None, scale=(per.x_max / per.v_read) * (self.scale / self._w_norm) / f,
                    noise_key=self.noise_stream.key)
            cache["dense_plan"] = plan
        return cache["dense_plan"]

    def _dac_in_ok(self, x: Any, rows: int) -> bool:
        """Whether the one-pass DAC stage (:func:`~memsnn.crossbar.read_kernel.dac_in`) reads the
        dense inputs ``x``: already this crossbar's [B <= rows, in] float CPU tensor, a DAC, no IR
        drop (its currents take the voltages, not the codes' norms)."""
        return (self._one_pass_read and isinstance(x, torch.Tensor) and x.dim() == 2 and x.shape[1] == self.in_features
                and 0 < x.shape[0] <= rows and x.dtype == self.dtype and x.dtype in (torch.float32, torch.float64)
                and x.device.type == "cpu" and x.is_contiguous() and not x.requires_grad
                and self.params.ir_drop == "none" and self.periphery.dac_step() is not None)

    def _sparse_ok(self, x: Tensor) -> bool:
        """Whether the event-driven CPU kernel can read ``x`` (no IR drop, float CPU tensors)."""
        return (self.params.ir_drop == "none" and x.device.type == "cpu" and not x.requires_grad
                and x.dtype in (torch.float32, torch.float64) and x.is_contiguous())

    def _spike_read(self, x: Tensor, cache: dict[str, Any]) -> Tensor:
        """The read of spikes ``x`` ``[B, in]`` by :func:`~memsnn.crossbar.read_kernel.spike_read`:
        the rows of the active inputs summed per tile, then read and output noise (the numbers of
        this crossbar's noise stream at its position, as the dense path reads them), ADC and the
        tile sum, in one pass per input vector."""
        per = self.periphery
        step = per.adc_step(self.i_unit)
        f = 1.0 if step is None else 1.0 / step
        v_in = per.v_read / per.x_max
        noisy = "var" in cache or cache["var_const"] > 0 or per.output_noise > 0
        stream = self.noise_stream
        y = torch.empty((x.shape[0], self.out_features), dtype=x.dtype)
        _spike_kernel(
            x, self._scaled(cache, "gdiff", v_in), var=self._scaled(cache, "var", v_in) if "var" in cache else None,
            var_const=cache["var_const"] * (f * v_in) ** 2, out_var=(per.output_noise * self.i_unit * f) ** 2,
            noise_key=stream.key if noisy else None, noise_row=stream.position,
            bound=per.adc_bound * self.i_unit * f if step is not None and per.adc_clip else None,
            adc=step is not None, scale=(per.x_max / per.v_read) * (self.scale / self._w_norm) / f, out=y)
        if noisy:
            stream.position += x.shape[0]
        return y

    def _scaled(self, cache: dict[str, Any], key: str, v_in: float = 1.0) -> Tensor:
        """Cached ``gdiff`` / ``var`` / ``var_binary`` in the ADC's code units: conductances times
        ``f = 1 / adc_step`` (variances times ``f**2``; ``f = 1`` without an ADC) and times the
        input's volts per unit ``v_in`` (``v_in**2`` for variances), so that the GEMM's output
        needs no rescaling before rounding. ``var_binary``: the read-noise variances times the
        full-scale row voltage and ``v_in * f**2``, for binary inputs (``V**2 = v_full V``: the
        variances are a GEMM of the spikes themselves)."""
        name = f"{key}_f{v_in!r}"
        if name not in cache:
            step = self.periphery.adc_step(self.i_unit)
            f = 1.0 if step is None else 1.0 / step
            if key == "var_binary":
                v_full = float(dac(torch.tensor([self.periphery.x_max], dtype=torch.float64), self.periphery))
                cache[name] = cache["var"] * (v_full * v_in * f * f)
            else:
                cache[name] = cache[key] * (f * v_in if key == "gdiff" else (f * v_in) ** 2)
        return cache[name]

    def _tile_mm(self, v: Tensor, g: Tensor) -> Tensor:
        """Per-row-tile products ``[n_rt, B, cols]`` of row voltages ``v`` ``[B, in]`` with the
        tile-shaped ``g`` ``[n_rt, tile_rows, cols]``, skipping the zero padding of the last tile."""
        n_rt, tr = self.n_tiles[0], self.params.tile_rows
        if n_rt == 1:
            return torch.mm(v, g[0, : self.in_features]).unsqueeze(0)
        out = torch.empty((n_rt, v.shape[0], g.shape[-1]), dtype=v.dtype, device=v.device)
        for t in range(n_rt):
            rows = slice(t * tr, min((t + 1) * tr, self.in_features))
            torch.mm(v[:, rows], g[t, : rows.stop - rows.start], out=out[t])
        return out

    def _vmm_block(self, x: Tensor, cache: dict[str, Any], binary: bool, fused: bool, out: Tensor | None = None,
                   noise: Tensor | None = None, dac: tuple[Tensor, Tensor, float] | None = None) -> Tensor:
        """Outputs ``[B, out_features]`` of one row chunk ``x`` (written into ``out`` if given);
        ``noise``: its rows' read-noise numbers ``[B, n_rt * out]`` if already drawn; ``dac``:
        ``(codes, row-tile norms, volts per code)`` of ``x`` if the one-pass DAC stage made them."""
        p, per = self.params, self.periphery
        n_rt, n_out = self.n_tiles[0], self.out_features
        B = x.shape[0]
        step = per.adc_step(self.i_unit)
        f = 1.0 if step is None else 1.0 / step  # currents are computed in ADC codes (A * f)
        # the row voltages are v * v_in: DAC codes (or, without a DAC, the inputs) times the volts
        # of one code, and v_in is folded into the GEMM's matrix; spikes (0 or x_max) are exact
        # codes of themselves, so they go to the GEMM as they are
        norms = None
        if dac is not None:
            v, norms, v_in = dac
        else:
            v, v_in = (x, per.v_read / per.x_max) if binary else dac_codes(x, per)
        var = None
        if p.ir_drop != "none":
            i = self._ir_currents(self._tiled_rows(v * v_in))
            i = i.mul_(f) if f != 1.0 else i
        elif fused:
            # spikes: V is 0 or v_full, so V**2 = v_full * V and the read-noise variances
            # sum_i V_i^2 sigma_ij^2 are a GEMM of the spikes too; two GEMMs into contiguous
            # tensors cost what one of twice the width does, and the elementwise ops after them run
            # 3x faster on contiguous operands than on the halves of one result
            i = self._tile_mm(v, self._scaled(cache, "gdiff", v_in))
            var = self._tile_mm(v, self._scaled(cache, "var_binary", v_in))
        else:
            i = self._tile_mm(v, self._scaled(cache, "gdiff", v_in))  # [n_rt, B, out]
        # read noise (output-referred, exact in distribution) and output noise: one Gaussian draw;
        # every variance term is >= 0, so no clipping before the square root
        out_var = (per.output_noise * self.i_unit * f) ** 2
        var_const = cache["var_const"] * f * f
        scale = (per.x_max / per.v_read) * (self.scale / self._w_norm) / f
        # CPU: noise, ADC and tile sum in one pass (read_kernel); the eager ops below elsewhere
        one_pass = (self._one_pass_read and i.device.type == "cpu" and i.is_contiguous() and not i.requires_grad
                    and i.dtype in (torch.float32, torch.float64))
        if "var" in cache:  # device-dependent read noise: sum_i V_i^2 sigma_ij^2 per output
            if var is None:
                v_t = self._tiled_rows(v)
                var = torch.bmm(v_t * v_t, self._scaled(cache, "var", v_in))
            if var_const > 0:
                var = var + (self._row_norms(v) if norms is None else norms).square_().mul_(var_const * v_in * v_in)
            if one_pass and var.is_contiguous():
                return self._read_out(i, noise, B, step, scale, out, var=var, out_var=out_var)
            std = (var.add_(out_var) if out_var > 0 else var).sqrt_()
        elif var_const > 0:  # the same for every device: only the input's norm matters
            norm = self._row_norms(v) if norms is None else norms
            if one_pass:  # the kernel takes s = sqrt((norm * a)**2 + out_var) per (row tile, vector)
                return self._read_out(i, noise, B, step, scale, out, std=norm,
                                      std_mul=math.sqrt(var_const) * v_in, std_add=out_var)
            std = norm.mul_(math.sqrt(var_const) * v_in)  # sqrt(var_const V^2 + out_var)
            if out_var > 0:
                std = std.square_().add_(out_var).sqrt_()  # in place: no tensor for the constant
        else:
            std = math.sqrt(out_var) if out_var > 0 else None
        if one_pass and isinstance(std, torch.Tensor):
            return self._read_out(i, noise, B, step, scale, out, std=std)
        if std is not None:
            noise = (self._normals(B, i.dtype) if noise is None else noise).view(B, n_rt, n_out).transpose(0, 1)
            # in place, except on a strided view (IR drop's currents): that sum goes to a new
            # contiguous tensor, which the ADC's in-place ops need
            dst = i if i.is_contiguous() else torch.empty((n_rt, B, n_out), dtype=i.dtype, device=i.device)
            if isinstance(std, torch.Tensor):
                i = torch.addcmul(i, noise, std, out=dst)
            else:
                i = torch.add(i, noise, alpha=std, out=dst)
        if step is not None:  # an ADC per tile; its integer codes add up digitally
            if not i.is_contiguous():
                i = i.contiguous()
            if per.adc_clip:
                i.clamp_(-per.adc_bound * self.i_unit * f, per.adc_bound * self.i_unit * f)
            i.round_()
        if out is None:
            return (i[0] if n_rt == 1 else i.sum(0)).mul_(scale)
        return torch.mul(i[0], scale, out=out) if n_rt == 1 else torch.sum(i, 0, out=out).mul_(scale)

    def _read_out(self, i: Tensor, noise: Tensor | None, B: int, step: float | None, scale: float,
                  out: Tensor | None, **std_or_var) -> Tensor:
        """The one-pass output stage (:func:`~memsnn.crossbar.read_kernel.read_out`) of currents
        ``i`` ``[n_rt, B, out]`` in ADC codes: the same operations as the eager path."""
        n_rt, n_out, per = self.n_tiles[0], self.out_features, self.periphery
        bound = per.adc_bound * self.i_unit * (1.0 / step) if step is not None and per.adc_clip else None
        y = torch.empty((B, n_out), dtype=i.dtype) if out is None else out
        if noise is not None:
            return read_out(i, noise.view(B, n_rt, n_out), bound=bound, adc=step is not None, scale=scale, out=y,
                            **std_or_var)
        # the stream's next B rows, computed inside the kernel's row loop (no buffer)
        stream = self.noise_stream
        read_out(i, None, bound=bound, adc=step is not None, scale=scale, out=y, noise_key=stream.key,
                 noise_row=stream.position, **std_or_var)
        stream.position += B
        return y

    def _normals(self, rows: int, dtype: torch.dtype, reuse: bool = False) -> Tensor:
        """The next ``rows`` rows of read-noise normals ``[rows, n_rt * out]``: on the CPU from the
        crossbar's :class:`~memsnn.crossbar.noise_stream.NoiseStream` (numbers fixed by the seed
        and the row's place in the read history), elsewhere from the crossbar's generator.
        ``reuse``: float32 numbers go into a scratch buffer the crossbar keeps (valid until the next
        call; a fresh 30 MB tensor per call costs ~10 ms of page faults)."""
        width = self.n_tiles[0] * self.out_features
        if self.device.type != "cpu":
            return torch.randn((rows, width), generator=self.generator, device=self.device, dtype=dtype)
        out = None
        if reuse and dtype == torch.float32:
            buf = self._noise_buf
            if buf is None or buf.numel() < rows * width:
                buf = self._noise_buf = torch.empty(rows * width, dtype=torch.float32)
            out = buf[:rows * width]
        return self.noise_stream.draw(rows, dtype, out=out)

    @property
    def noise_stream(self) -> NoiseStream:
        """The CPU read-noise stream (see :mod:`memsnn.crossbar.noise_stream`); its ``position``
        counts the input vectors read so far with noise and may be set to replay reads."""
        if getattr(self, "_noise", None) is None:
            self._noise = NoiseStream(stream_key(self.seed), self.n_tiles[0] * self.out_features)
        return self._noise

    def _tiled_rows(self, v: Tensor) -> Tensor:
        """Row voltages ``[B, in]`` as ``[n_rt, B, tile_rows]`` (the last tile zero-padded)."""
        n_rt, tr = self.n_tiles[0], self.params.tile_rows
        pad = n_rt * tr - self.in_features
        return (torch.nn.functional.pad(v, (0, pad)) if pad else v).view(v.shape[0], n_rt, tr).transpose(0, 1)

    def _row_norms(self, v: Tensor) -> Tensor:
        """``sqrt(sum_i v_i**2)`` over each row tile's inputs: ``[n_rt, B, 1]`` (one op when the
        tiles divide the rows evenly)."""
        n_rt, tr = self.n_tiles[0], self.params.tile_rows
        if n_rt * tr == self.in_features:
            return torch.linalg.vector_norm(v.view(v.shape[0], n_rt, tr), dim=2, keepdim=True).transpose(0, 1)
        return torch.stack([torch.linalg.vector_norm(v[:, t * tr:(t + 1) * tr], dim=1, keepdim=True)
                            for t in range(n_rt)])

    __call__ = vmm

    def _check_input(self, x: Any) -> Tensor:
        return self._checked_input(x)[0]

    def _checked_input(self, x: Any, want_sign: bool = False, check_finite: bool = True) -> tuple[Tensor, bool]:
        """``(x as [B, in] in this crossbar's dtype and device, whether no input is negative)``;
        the sign is only looked at when ``want_sign`` (one pass over ``x`` checks both);
        ``check_finite=False``: the caller checks for NaN / inf itself (the one-pass DAC stage)."""
        if not (isinstance(x, torch.Tensor) and x.dim() == 2 and x.shape[1] == self.in_features
                and x.dtype == self.dtype and x.device == self.device):
            x = self._convert_input(x)
        if want_sign and x.numel():
            lo, hi = torch.aminmax(x)
            lo, hi = float(lo), float(hi)
            finite, nonneg = math.isfinite(lo) and math.isfinite(hi), lo >= 0
        elif check_finite:
            finite, nonneg = math.isfinite(float(x.sum())), False  # any NaN or inf makes the sum non-finite
        else:
            finite, nonneg = True, False
        if not finite:
            raise ValueError(f"inputs contain {int((~torch.isfinite(x)).sum())} NaN or infinite values")
        return x, nonneg

    def _convert_input(self, x: Any) -> Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"inputs must be a torch.Tensor [batch, {self.in_features}], got {type(x).__name__}")
        if x.dim() == 1:
            x = x.unsqueeze(0)
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"inputs have shape {tuple(x.shape)}, expected [batch, {self.in_features}]")
        if not x.dtype.is_floating_point:
            x = x.to(self.dtype)
        return x.to(device=self.device, dtype=self.dtype)

    def _physical_tiles(self) -> Tensor:
        """Noise-free conductances as physical tiles ``[n_rt, n_ct, tile_rows, phys_cols]``.

        Differential: plus/minus columns interleaved; reference: reference column last. Padding
        cells (beyond the matrix) have zero conductance.
        """
        p = self.params
        n_rt, n_ct = self.n_tiles
        tr, tc = p.tile_rows, p.tile_cols
        pad = (0, n_ct * tc - self.out_features, 0, n_rt * tr - self.in_features)
        gp = torch.nn.functional.pad(self.model.conductance(self.plus), pad)
        gp = gp.view(n_rt, tr, n_ct, tc).permute(0, 2, 1, 3)
        if p.mapping == "differential":
            gm = torch.nn.functional.pad(self.model.conductance(self.minus), pad)
            gm = gm.view(n_rt, tr, n_ct, tc).permute(0, 2, 1, 3)
            return torch.stack((gp, gm), dim=-1).reshape(n_rt, n_ct, tr, 2 * tc)
        ref = torch.nn.functional.pad(self.model.conductance(self.minus), (0, 0, 0, n_rt * tr - self.in_features))
        ref = ref.view(n_rt, tr, n_ct).permute(0, 2, 1).unsqueeze(-1)
        return torch.cat((gp, ref), dim=-1)

    def _ir_currents(self, v_t: Tensor) -> Tensor:
        """Differential column currents ``[n_rt, B, out]`` with IR drop, for row voltages ``v_t``."""
        from . import irdrop

        p = self.params
        n_rt, n_ct = self.n_tiles
        tc = p.tile_cols
        phys = self._physical_tiles()  # [n_rt, n_ct, tr, P]
        kw = dict(r_row=p.r_wire, r_col=p.r_wire, r_access=p.r_access)
        if p.ir_drop == "approx":
            out = irdrop.ir_drop_approx(phys, v_t.unsqueeze(1).expand(n_rt, n_ct, *v_t.shape[1:]), iterations=p.ir_iterations, **kw)
        else:
            out = torch.stack([
                torch.stack([
                    irdrop.solve_ir_drop_exact(phys[r, c], v_t[r], array_type=p.array_type, **kw)
                    for c in range(n_ct)
                ]) for r in range(n_rt)
            ])
        # out: [n_rt, n_ct, B, P] -> differential currents [n_rt, B, n_ct * tc]
        if p.mapping == "differential":
            diff = out[..., 0::2] - out[..., 1::2]
        else:
            diff = out[..., :tc] - out[..., tc:tc + 1]
        B = v_t.shape[1]
        return diff.permute(0, 2, 1, 3).reshape(n_rt, B, n_ct * tc)[:, :, : self.out_features]

    # ------------------------------------------------------------------------------------------------
    # programming and schedules
    # ------------------------------------------------------------------------------------------------
    def program(self, w: Tensor, method: str = "write_verify", **kwargs: Any):
        """Program weights ``w`` ``[in, out]``; see :mod:`memsnn.crossbar.programming`.

        ``method``: ``"write_verify"`` (default), ``"open_loop"`` or ``"direct"``. Returns a
        :class:`~memsnn.crossbar.programming.ProgramReport`.
        """
        from .programming import program_weights

        return program_weights(self, w, method=method, **kwargs)

    def _arrays(self) -> list[tuple[str, DeviceState]]:
        if self.params.mapping == "differential":
            return [("plus", self.plus), ("minus", self.minus)]
        return [("plus", self.plus)]

    def _set_array(self, name: str, state: DeviceState) -> None:
        setattr(self, name, state)
        self._touch()

    def apply_pulses(
        self,
        plus: Tensor | None = None,
        minus: Tensor | None = None,
        *,
        amplitude: float | None = None,
        width: float | None = None,
    ) -> ScheduleResult:
        """Apply dense signed pulse counts ``[in, out]`` to the arrays (a one-phase schedule)."""
        if plus is None and minus is None:
            raise ValueError("give pulse counts for plus and/or minus")
        if plus is None:
            plus = torch.zeros_like(minus)
        return self.apply_schedule(PulseSchedule([DensePhase(plus, minus, amplitude, width)]))

    def apply_schedule(self, schedule: PulseSchedule | OuterPhase | DensePhase, *, half_select: bool | None = None) -> ScheduleResult:
        """Apply every phase of ``schedule`` through the device model; returns its cost.

        ``half_select`` overrides ``params.half_select`` (V/2 disturb in outer-product phases).
        """
        if isinstance(schedule, (OuterPhase, DensePhase)):
            schedule = PulseSchedule([schedule])
        disturb = self.params.half_select if half_select is None else half_select
        for i, ph in enumerate(schedule):  # validate everything before any pulse
            if tuple(ph.shape) != self.shape:
                raise ValueError(f"phase {i} has shape {tuple(ph.shape)}, expected {self.shape}")
            minus = ph.cols_minus if isinstance(ph, OuterPhase) else ph.minus
            if self.params.mapping != "differential" and minus is not None and bool((minus != 0).any()):
                raise ValueError(f"phase {i} programs a minus array, but this crossbar maps weights on one device per weight (mapping={self.params.mapping!r})")
            if disturb and isinstance(ph, OuterPhase) and ph.single_polarity() is None:
                raise ValueError(
                    f"phase {i} mixes SET and RESET coincidences; half-select disturb needs single-polarity "
                    "outer phases (split the update by polarity)"
                )
        pulses0, energy0 = self.total_pulses, self.energy
        half_total = 0
        for ph in schedule:
            if isinstance(ph, DensePhase):  # both arrays of a pair in one sequence
                arrays = [(n, c) for n, c in (("plus", ph.plus), ("minus", ph.minus)) if c is not None]
                states = [getattr(self, n) for n, _ in arrays]
                counts = [check_pulses(c, st.shape, self.device).to(st.dtype).unsqueeze(0) for (_, c), st in zip(arrays, states)]
                new = self.model.apply_sequences(states, counts, amplitude=ph.amplitude, width=ph.width, generator=self.generator)
                for (name, _), st in zip(arrays, new):
                    self._set_array(name, st)
                continue
            half_total += self._apply_outer(ph, disturb)
        self._touch()
        full = self.total_pulses - pulses0 - half_total
        return ScheduleResult(full, half_total, self.energy - energy0, schedule.hardware_phases())

    def _apply_outer(self, ph: OuterPhase, disturb: bool) -> int:
        half_total = 0
        chunk = max(1, int(2**25 // max(1, self.in_features * self.out_features)))
        pol = ph.single_polarity() if disturb else None
        p = self.model.params
        for name, state in self._arrays():
            if name == "minus" and ph.cols_minus is None:
                continue
            for start in range(0, ph.batch, chunk):
                sub = OuterPhase(
                    _rows(ph.rows)[start:start + chunk], _rows(ph.cols_plus)[start:start + chunk],
                    None if ph.cols_minus is None else _rows(ph.cols_minus)[start:start + chunk],
                    ph.amplitude, ph.width, ph.train, ph.length,
                )
                counts, half = sub.coincidences(name, self.generator, half=disturb, dtype=self.dtype)
                if not disturb:
                    state = self.model._apply_sequence(state, counts, amplitude=ph.amplitude, width=ph.width, generator=self.generator)
                    continue
                full_amp = ph.amplitude if ph.amplitude is not None else (p.v_set if pol > 0 else p.v_reset)
                for b in range(counts.shape[0]):  # full pulses, then the V/2 disturb of the same phase
                    pair = torch.stack((counts[b], half[b] * pol))
                    state = self.model._apply_sequence(state, pair[:1], amplitude=full_amp, width=ph.width, generator=self.generator)
                    state = self.model._apply_sequence(state, pair[1:], amplitude=full_amp / 2, width=ph.width, generator=self.generator)
                    half_total += int(half[b].sum())
            self._set_array(name, state)
        return half_total

    # ------------------------------------------------------------------------------------------------
    # time and counters
    # ------------------------------------------------------------------------------------------------
    def advance(self, seconds: float) -> "Crossbar":
        """Let ``seconds`` pass for every device (volatile relaxation, drift)."""
        self.plus = self.model.advance(self.plus, seconds)
        self.minus = self.model.advance(self.minus, seconds)
        self._touch()
        return self

    def pulse_counts(self) -> dict[str, Tensor]:
        """Pulses applied per device (SET + RESET), per array: ``{"plus": [in, out], "minus": ...}``."""
        return {name: s.n_set + s.n_reset for name, s in (("plus", self.plus), ("minus", self.minus))}

    @property
    def total_pulses(self) -> int:
        return DeviceModel.total_pulses(self.plus) + DeviceModel.total_pulses(self.minus)

    @property
    def energy(self) -> float:
        """Programming energy spent so far (J)."""
        return DeviceModel.total_energy(self.plus) + DeviceModel.total_energy(self.minus)

    def counters(self) -> dict[str, float]:
        return {"pulses": self.total_pulses, "energy_J": self.energy, "reads": self.reads, "time_s": self.time}

    # ------------------------------------------------------------------------------------------------
    # conversion, export, persistence
    # ------------------------------------------------------------------------------------------------
    @classmethod
    def from_linear(cls, linear: nn.Linear, model: str | DeviceModel = "srtio3", *, method: str = "write_verify",
                    scale: float | None = None, **kwargs: Any) -> tuple["Crossbar", Any]:
        """A crossbar programmed with ``linear.weight`` (transposed to ``[in, out]``).

        ``scale`` defaults to ``max |weight|``. The bias stays digital: it is kept on the crossbar
        as ``bias`` and returned by :meth:`to_linear`. Returns ``(crossbar, program_report)``.
        """
        w = from_linear_weight(linear.weight)
        if scale is None:
            scale = float(w.abs().max()) or 1.0
        program_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in ("tol", "max_iter", "k_max", "gain")}
        xbar = cls(linear.in_features, linear.out_features, model, scale=scale, **kwargs)
        report = xbar.program(w.to(xbar.dtype), method=method, **program_kwargs)
        xbar.bias = None if linear.bias is None else linear.bias.detach().clone()
        return xbar, report

    def to_linear(self) -> nn.Linear:
        """An ``nn.Linear`` whose weight is the crossbar's current effective weight (noise-free)."""
        bias = getattr(self, "bias", None)
        lin = nn.Linear(self.in_features, self.out_features, bias=bias is not None)
        with torch.no_grad():
            lin.weight.copy_(to_linear_weight(self.weights()).to(lin.weight.dtype))
            if bias is not None:
                lin.bias.copy_(bias)
        return lin

    def export_maps(self, directory: str | os.PathLike, *, formats=("csv", "npz", "png"), name: str = "layer",
                    overwrite: bool = False, at: float | None = None, tau: bool = False) -> list[Path]:
        """Write G_plus, G_minus and the effective weight of every tile (see :mod:`.maps`);
        ``tau=True`` adds each device's volatile time constant at its bias (tau maps, version 2)."""
        from .maps import export_maps

        gp, gm = self.conductances(at)
        meta = {"preset": self.model.preset, "mapping": self.params.mapping, "time_s": self.time if at is None else float(at),
                "scale": self.scale, "g_min_S": self.model.params.g_min, "g_max_S": self.model.params.g_max}
        return export_maps(
            directory, g_plus=gp, g_minus=gm if self.params.mapping == "differential" else None,
            weight=self.weights(at), tile_size=(self.params.tile_rows, self.params.tile_cols),
            formats=formats, name=name, meta=meta, overwrite=overwrite,
            tau_plus=self.model.tau_volatile(self.plus) if tau else None,
            tau_minus=self.model.tau_volatile(self.minus) if tau and self.params.mapping == "differential" else None,
        )

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to restore this crossbar exactly (plain tensors and numbers)."""
        return {
            "format": "memsnn.crossbar",
            "version": 1,
            "shape": list(self.shape),
            "params": self.params.to_dict(),
            "periphery": self.periphery.to_dict(),
            "scale": self.scale,
            "seed": self.seed,
            "reads": self.reads,
            "dtype": str(self.dtype).replace("torch.", ""),
            "plus": device_payload(self.model, self.plus),
            "minus": device_payload(self.model, self.minus),
            "generator": self.generator.get_state(),
            "noise_rows": self.noise_stream.position,
            "bias": getattr(self, "bias", None),
        }

    @classmethod
    def from_state_dict(cls, data: dict[str, Any], device: torch.device | str = "cpu") -> "Crossbar":
        if data.get("format") != "memsnn.crossbar":
            raise ValueError(f"not a memsnn crossbar file: format={data.get('format')!r}")
        if data.get("version") != 1:
            raise ValueError(f"crossbar file version {data.get('version')!r} is not supported (expected 1)")
        model, plus = devices_from_payload(data["plus"], device)
        _, minus = devices_from_payload(data["minus"], device)
        xbar = cls.__new__(cls)
        xbar.model = model
        xbar.params = CrossbarParams.from_dict(data["params"])
        xbar.periphery = PeripheryParams.from_dict(data["periphery"])
        xbar.in_features, xbar.out_features = (int(v) for v in data["shape"])
        xbar.scale = float(data["scale"])
        xbar.device = torch.device(device)
        xbar.seed = int(data["seed"])
        xbar.generator = torch.Generator(device=xbar.device)
        if xbar.device.type == "cpu":
            xbar.generator.set_state(data["generator"])
        else:  # generator states do not move between device types; reseed deterministically
            xbar.generator.manual_seed(xbar.seed + xbar.reads + 1)
        xbar.reads = int(data["reads"])
        xbar.plus, xbar.minus = plus, minus
        xbar.bias = data.get("bias")
        xbar._cache = None
        xbar._noise = NoiseStream(stream_key(xbar.seed), xbar.n_tiles[0] * xbar.out_features, int(data.get("noise_rows", 0)))
        return xbar

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Save the whole crossbar (conductances, per-device parameters, counters, clock, RNG)."""
        with atomic_path(path, overwrite) as tmp:
            torch.save(self.state_dict(), tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: torch.device | str = "cpu") -> "Crossbar":
        """A crossbar :meth:`save` wrote; ValueError naming ``path`` for any other file (a
        multi-layer file: use :func:`memsnn.crossbar.storage.load_crossbars`)."""
        from .storage import _MULTI, crossbar_from_payload, read_payload

        path = Path(path)
        data = read_payload(path)
        if data.get("format") == _MULTI:
            raise ValueError(f"{path} holds several crossbars (a multi-layer file): read it with "
                             "memsnn.crossbar.storage.load_crossbars")
        if data.get("format") != "memsnn.crossbar":
            raise ValueError(f"{path} is not a saved memsnn crossbar (format={data.get('format')!r})")
        return crossbar_from_payload(path, data, device)

    def to(self, device: torch.device | str) -> "Crossbar":
        """This crossbar on another torch device (a copy)."""
        return Crossbar.from_state_dict(self.state_dict(), device)

    def __repr__(self) -> str:
        return (f"Crossbar({self.in_features}x{self.out_features}, model={self.model.preset!r}, "
                f"tiles={self.n_tiles}, mapping={self.params.mapping!r}, device={self.device.type})")


def _rows(t: Tensor) -> Tensor:
    return t.unsqueeze(0) if t.dim() == 1 else t

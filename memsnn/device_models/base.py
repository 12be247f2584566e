"""Device-model framework: the parameters, the state and the pure functions every preset shares.

A *device model* (:class:`DeviceModel`) owns a frozen, self-validating parameter set
(:class:`DeviceParams` or a subclass) and acts on a :class:`DeviceState` that holds a whole array of
devices as torch tensors of one shape (any shape; crossbars use ``[rows, cols]``). There are no
per-device Python objects: every function is vectorised over the array.

Pure functions (each returns a new state and leaves its input untouched)::

    state = model.init_state((256, 256), device="cuda", generator=0)  # samples d2d spread
    state = model.apply_pulses(state, pulses)          # signed int counts: + SET, - RESET
    state = model.advance(state, 3600.0)               # volatile relaxation + drift clock
    g     = model.read(state, generator=gen)           # conductance with read noise, siemens

Physics common to all presets (model-specific pulse laws live in the preset modules)
-----------------------------------------------------------------------------------
*Pulse response.* Each model maps the long-term conductance ``G`` to a pulse coordinate ``n`` per
polarity such that one nominal pulse advances ``n`` by exactly 1 (power law, soft bounds, linear ...).
A pulse of amplitude ``V`` and width ``w`` counts as ``s = a(V) * (w / width_ref) * scale_d``
nominal pulses, where ``a(V) = ((|V| - v_threshold) / (v_ref - v_threshold))_+ ** amp_exponent``
(models with their own amplitude law override ``a``) and ``scale_d`` is the device's sampled step
scale. ``k`` pulses therefore move the coordinate by ``k * s``.

*Cycle-to-cycle noise* (``step_std``, sampled per pulse). ``multiplicative``: each pulse advances
``n`` by ``s * (1 + step_std * xi)``, so ``k`` pulses advance it by ``k s + step_std s sqrt(k) xi``
(exactly the sum of ``k`` independent per-pulse draws); the spread is relative to the local,
state-dependent step. ``additive``: ``k`` pulses add ``step_std * s * sqrt(k) * xi * dG_ref`` siemens
where ``dG_ref`` is the model's reference step (aihwkit's ``mult_noise=False``).

*Device-to-device spread* (``*_dtod``, sampled once in :meth:`DeviceModel.init_state`): a
parameter ``p`` becomes ``p * (1 + dtod * xi)`` per device, ``xi`` a standard normal truncated at
+-3; bounds spread in units of the nominal window ``g_max - g_min``.

*Bounds and levels.* After a pulse the long-term conductance is clipped to the device's
``[g_min_d, g_max_d]`` (a device that drifted below ``g_min_d`` is not lifted back to it) and, with
``n_levels``, put on one of ``n_levels`` equally spaced levels of that window: the nearest
(``level_rounding="nearest"``, deterministic - a pulse whose step is below half a level spacing
then never moves the device, however often it is applied), or one of the two neighbouring levels
with the probabilities that keep the expected conductance (``"stochastic"``: a device whose
switching between discrete states is probabilistic, so small steps still move it on average).

*Volatile component.* Each pulse adds ``volatile_ratio`` times its non-volatile change to a volatile
conductance ``G_vol`` that relaxes as ``exp(-dt / tau)``, with the bias-dependent time constant
``tau = tau_volatile_d * exp(tau_bias_coeff * V_bias)`` (meta-plasticity).

*Drift.* Between programming events the long-term conductance follows
``G(t) = G_prog * ((t - t_prog + drift_t0) / drift_t0) ** (-nu_d)``, continuous at ``t = t_prog``,
with a per-device exponent ``nu_d``. A pulse starts from the drifted value and resets the device's
drift clock.

*Read.* ``G_read = G + sigma * xi`` with ``G = G_lt(t) + G_vol(t) + write_offset``, clipped at 0, where
``sigma = read_noise_std * G`` (``read_noise_type="relative"``, the default: noise grows with the
current) or ``sigma = read_noise_std * (g_max - g_min)`` (``"absolute"``: a constant floor, like
aihwkit's additive-constant weight read noise).

*Faults.* A fraction ``p_stuck_min`` / ``p_stuck_max`` of devices is stuck at ``g_min_d`` /
``g_max_d``: pulses, drift and relaxation never move them (reads still see read noise, and their
pulses are still counted and cost energy).

*Energy.* A pulse costs ``energy_set`` (or ``energy_reset``) joules at ``v_ref`` and
``width_ref``, scaled ohmically by ``(V / v_ref)**2 * (w / width_ref)``; the state accumulates the
energy and the SET / RESET pulse counts per device.
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

import torch

from .._random import as_generator
from ..philox import randn as _randn
from ..params import Params, param

__all__ = ["DeviceParams", "DeviceState", "DeviceModel", "check_pulses", "pick"]

Tensor = torch.Tensor


def pick(set_f: Tensor, when_set: Tensor | float, when_reset: Tensor | float) -> Tensor:
    """Per-device choice between a SET and a RESET value; ``set_f`` is 1.0 (SET) or 0.0 (RESET).

    A blend instead of ``torch.where``, which is an order of magnitude slower on CPU. Both values
    must be finite (0 * inf is NaN).
    """
    like = set_f if set_f.is_floating_point() else None
    dtype = like.dtype if like is not None else torch.float64
    a = torch.as_tensor(when_reset, dtype=dtype, device=set_f.device)
    b = torch.as_tensor(when_set, dtype=dtype, device=set_f.device)
    if a.shape != b.shape:
        a, b = torch.broadcast_tensors(a, b)
    return torch.lerp(a, b, set_f.to(dtype))


@dataclass(frozen=True)
class DeviceParams(Params):
    """Parameters every device model understands. SI units; spreads are relative (see module doc).

    The defaults here are neutral (a noise-free linear-ish device); presets override them and give
    the source of each value in their own docstring.
    """

    # --- conductance window -------------------------------------------------------------------
    g_min: float = param(0.0, unit="S", check=">=0", doc="lower conductance bound")
    g_max: float = param(1e-7, unit="S", check=">0", doc="upper conductance bound")
    g_min_dtod: float = param(0.0, unit="1", check=">=0", doc="d2d spread of g_min, in units of the window g_max - g_min")
    g_max_dtod: float = param(0.0, unit="1", check=">=0", doc="d2d spread of g_max, in units of the window g_max - g_min")
    g_init: float | None = param(None, unit="S", check=">=0", optional=True, doc="conductance of a fresh device (None: g_min)")
    g_init_dtod: float = param(0.0, unit="1", check=">=0", doc="relative d2d spread of g_init")

    # --- pulses -----------------------------------------------------------------------------------
    v_set: float = param(1.0, unit="V", check=">0", doc="default SET (potentiating) pulse amplitude")
    v_reset: float = param(1.0, unit="V", check=">0", doc="default RESET (depressing) pulse amplitude, magnitude")
    v_ref: float = param(1.0, unit="V", check=">0", doc="amplitude at which one pulse is one nominal step")
    v_threshold: float = param(0.5, unit="V", check=">=0", doc="pulses with |V| <= this do nothing")
    amp_exponent: float = param(1.0, unit="1", check=">=0", doc="step scales as ((|V|-v_th)/(v_ref-v_th))**amp_exponent")
    pulse_width: float = param(1e-6, unit="s", check=">0", doc="default pulse width")
    width_ref: float = param(1e-6, unit="s", check=">0", doc="width at which one pulse is one nominal step")
    step_dtod: float = param(0.0, unit="1", check=">=0", doc="relative d2d spread of the step size (both polarities)")
    up_down_dtod: float = param(0.0, unit="1", check=">=0", doc="relative d2d spread of the SET/RESET step ratio")
    step_std: float = param(0.0, unit="1", check=">=0", doc="c2c spread of each pulse's step (see step_noise)")
    step_noise: str = param("multiplicative", check=None, choices=("multiplicative", "additive"), doc="c2c noise relative to the local step, or additive in units of the reference step")
    write_noise_std: float = param(0.0, unit="1", check=">=0", doc="apparent write noise, resampled each time a device is pulsed, in units of the reference step")

    # --- read ---------------------------------------------------------------------------------------
    read_noise_std: float = param(0.0, unit="1", check=">=0", doc="Gaussian read noise per read (see read_noise_type)")
    read_noise_type: str = param("relative", check=None, choices=("relative", "absolute"), doc="std relative to G, or to the window g_max - g_min")

    # --- volatile (short-term) component --------------------------------------------------------------
    volatile_ratio: float = param(0.0, unit="1", check=">=0", doc="volatile conductance added per pulse, relative to its non-volatile step")
    tau_volatile: float = param(1.0, unit="s", check=">0", doc="relaxation time of the volatile part at zero bias")
    tau_volatile_dtod: float = param(0.0, unit="1", check=">=0", doc="relative d2d spread of tau_volatile")
    tau_bias_coeff: float = param(0.0, unit="1/V", check="any", doc="tau = tau_volatile * exp(tau_bias_coeff * V_bias)")

    # --- long-term drift ---------------------------------------------------------------------------------
    drift_nu: float = param(0.0, unit="1", check=">=0", doc="mean drift exponent nu, G ~ (t/t0)**-nu")
    drift_nu_dtod: float = param(0.0, unit="1", check=">=0", doc="relative d2d spread of nu")
    drift_t0: float = param(1.0, unit="s", check=">0", doc="drift reference time after programming")

    # --- faults and resolution -------------------------------------------------------------------------
    p_stuck_min: float = param(0.0, unit="1", check="prob", doc="fraction of devices stuck at g_min")
    p_stuck_max: float = param(0.0, unit="1", check="prob", doc="fraction of devices stuck at g_max")
    n_levels: int | None = param(None, unit="1", check="int>=2", optional=True, doc="finite number of conductance levels (None: continuous)")
    level_rounding: str = param("nearest", check=None, choices=("nearest", "stochastic"), doc="with n_levels: a pulse's result goes to the nearest level, or to one of the two neighbouring levels with probabilities that keep its expected value")

    # --- energy ---------------------------------------------------------------------------------------
    energy_set: float = param(0.0, unit="J", check=">=0", doc="energy of one SET pulse at v_ref, width_ref")
    energy_reset: float = param(0.0, unit="J", check=">=0", doc="energy of one RESET pulse at v_ref, width_ref")

    def _cross_checks(self) -> Iterator[str]:
        if not self.g_min < self.g_max:
            yield f"g_min={self.g_min!r} must be < g_max={self.g_max!r} (siemens)"
        if self.g_init is not None and not self.g_min <= self.g_init <= self.g_max:
            yield f"g_init={self.g_init!r} must lie in [g_min, g_max] = [{self.g_min!r}, {self.g_max!r}] (siemens)"
        if self.p_stuck_min + self.p_stuck_max > 1:
            yield (
                f"p_stuck_min + p_stuck_max = {self.p_stuck_min + self.p_stuck_max!r} must be <= 1"
            )
        if self.v_threshold >= self.v_ref:
            yield f"v_threshold={self.v_threshold!r} must be < v_ref={self.v_ref!r} (volts)"

    @property
    def window(self) -> float:
        """Nominal conductance window ``g_max - g_min`` in siemens."""
        return self.g_max - self.g_min


# Names of the DeviceState tensor fields (all shaped like the array, except `dev` and `time`).
_STATE_TENSORS = ("g", "t_prog", "g_vol", "nu", "bias", "write_offset", "stuck", "n_set", "n_reset", "energy")
# the fields a pulse sequence changes (the others - bias, stuck, dev, time - it leaves as they are)
_PULSED_TENSORS = ("g", "t_prog", "g_vol", "nu", "write_offset", "n_set", "n_reset", "energy")


@dataclass
class DeviceState:
    """State of an array of devices; every tensor has the array's shape.

    Attributes:
        g: long-term conductance right after the last programming event, before drift (S).
        t_prog: time of each device's last programming event (s, float64); drift counts from it.
        g_vol: volatile conductance at time ``time`` (S).
        nu: drift exponent per device.
        bias: bias voltage per device (V); sets the volatile time constant (meta-plasticity).
        write_offset: apparent write noise, resampled when a device is pulsed (S).
        stuck: int8, 0 = working, -1 = stuck at g_min, +1 = stuck at g_max.
        n_set, n_reset: int64 counts of applied SET / RESET pulses.
        energy: float64 programming energy spent per device (J).
        dev: per-device parameters sampled at construction (``g_min``, ``g_max``, ``scale_set``,
            ``scale_reset``, ``tau`` and model-specific ones), each shaped like the array.
        time: the array's clock (s).
    """

    g: Tensor
    t_prog: Tensor
    g_vol: Tensor
    nu: Tensor
    bias: Tensor
    write_offset: Tensor
    stuck: Tensor
    n_set: Tensor
    n_reset: Tensor
    energy: Tensor
    dev: dict[str, Tensor] = field(default_factory=dict)
    time: float = 0.0

    @property
    def shape(self) -> torch.Size:
        return self.g.shape

    @property
    def device(self) -> torch.device:
        return self.g.device

    @property
    def dtype(self) -> torch.dtype:
        return self.g.dtype

    def replace(self, **changes: Any) -> "DeviceState":
        return dataclasses.replace(self, **changes)

    def memo(self, key: Any, compute) -> Tensor:
        """``compute()``, computed once per state object and ``key`` (a model's noise-free reads
        of this state at its own time). A state is never changed after it is made: every update
        returns a new one (:meth:`replace`), whose memo starts empty, so a memoised value cannot go
        stale; callers must not change the returned tensor in place."""
        memo = self.__dict__.setdefault("_memo", {})
        if key not in memo:
            memo[key] = compute()
        return memo[key]

    def remember(self, key: Any, value: Any) -> "DeviceState":
        """Store ``value`` as :meth:`memo`'s result for ``key`` (it must be what ``compute`` would
        give: e.g. a pulse sequence's conductances, which it knows); returns the state."""
        self.__dict__.setdefault("_memo", {})[key] = value
        return self

    def __getstate__(self) -> dict:  # pickles (and deep copies) without the memo
        return {k: v for k, v in self.__dict__.items() if k != "_memo"}

    def to(self, device: torch.device | str) -> "DeviceState":
        """A copy on another device (CPU <-> CUDA)."""
        moved = {name: getattr(self, name).to(device) for name in _STATE_TENSORS}
        return DeviceState(**moved, dev={k: v.to(device) for k, v in self.dev.items()}, time=self.time)

    def clone(self) -> "DeviceState":
        copied = {name: getattr(self, name).clone() for name in _STATE_TENSORS}
        return DeviceState(**copied, dev={k: v.clone() for k, v in self.dev.items()}, time=self.time)

    def tensors(self) -> dict[str, Tensor]:
        """Flat ``{name: tensor}`` of everything, per-device parameters as ``dev.<name>``."""
        out = {name: getattr(self, name) for name in _STATE_TENSORS}
        out.update({f"dev.{k}": v for k, v in self.dev.items()})
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor], time: float) -> "DeviceState":
        fields = {name: tensors[name] for name in _STATE_TENSORS}
        dev = {k[4:]: v for k, v in tensors.items() if k.startswith("dev.")}
        return cls(**fields, dev=dev, time=float(time))


#: below this fraction of pulsed devices, c2c normals are drawn for the pulsed devices only
SPARSE_NOISE_FRACTION = 0.5

#: below this fraction of devices pulsed in a sequence, its steps run on those devices only
SPARSE_STEP_FRACTION = 0.25

# values derived from a tensor that is never changed in place (a state's ``stuck`` map, its
# per-device parameters), by the tensor's id: kept as long as the tensor lives (a weak
# reference's callback drops them when it dies)
_TENSOR_MEMO: dict[int, tuple[weakref.ref, dict]] = {}


def _memo_of(t: Tensor, key: Any, compute):
    """``compute()``, once per tensor ``t`` and ``key`` (``t`` must never be changed in place)."""
    tid = id(t)
    entry = _TENSOR_MEMO.get(tid)
    if entry is None or entry[0]() is not t:
        entry = _TENSOR_MEMO[tid] = (weakref.ref(t, lambda _, tid=tid, memo=_TENSOR_MEMO: memo.pop(tid, None)), {})
    memo = entry[1]
    if key not in memo:
        memo[key] = compute()
    return memo[key]


class _Subset(Mapping):
    """The per-device parameters ``dev`` of the devices ``take`` selects, gathered on first use
    (a step reads only the few it needs)."""

    def __init__(self, dev: dict[str, Tensor], take):
        self._dev, self._take, self._done = dev, take, {}

    def __getitem__(self, key: str) -> Tensor:
        if key not in self._done:
            self._done[key] = self._take(self._dev[key])
        return self._done[key]

    def __iter__(self):
        return iter(self._dev)

    def __len__(self) -> int:
        return len(self._dev)


def _normals_where_pulsed(cnt: Tensor, gen: torch.Generator | None, n_on: int | None = None) -> Tensor:
    """Standard normals shaped like ``cnt`` (pulse counts >= 0) for the cycle-to-cycle noise of one
    step. Only devices with ``cnt > 0`` use theirs (the noise term is ``sqrt(cnt) * xi``), so when
    fewer than :data:`SPARSE_NOISE_FRACTION` of them are pulsed only those are drawn (the rest
    are 0): the same distribution of the result, fewer Gaussian draws (other numbers from the
    generator than a full draw). ``n_on``: the number of pulsed devices when the caller knows it."""
    if n_on is not None and n_on >= SPARSE_NOISE_FRACTION * cnt.numel():
        return _randn(cnt.shape, generator=gen, device=cnt.device, dtype=cnt.dtype)
    on = cnt > 0
    n_on = int(on.sum())
    if n_on >= SPARSE_NOISE_FRACTION * cnt.numel():
        return _randn(cnt.shape, generator=gen, device=cnt.device, dtype=cnt.dtype)
    xi = torch.zeros_like(cnt)
    if n_on:
        xi[on] = _randn(n_on, generator=gen, device=cnt.device, dtype=cnt.dtype)
    return xi


#: A combined step replaces a device's sequence only where the sequence, started from the same
#: state, leaves the device's bounds (and so gets clipped) with probability below
#: ``4 Q(COALESCE_Z)`` (Q: the standard normal tail; 1.6e-10 at 6.5): its noise-free path keeps
#: ``COALESCE_Z`` standard deviations of the whole sequence's c2c noise inside the bounds (Levy's
#: inequality bounds the maximum of the noise's partial sums by twice the tail of its end). For
#: scale: torch's float32 normal sampler never returns ``|xi| > 5.76`` (probability 8e-9 per draw),
#: so the sequential path already misses tails of that size.
COALESCE_Z = 6.5

#: steps (rank-1 updates) per combined step: a short run keeps the noise band and the path's
#: excursion small, so that devices near a bound can be combined too
COALESCE_STEPS = 8


#: use a model's numba kernel for a whole sequence where it has one (False: the eager steps; for
#: A/B timing and the tests that compare the two)
SEQUENCE_KERNELS = True

#: combine runs of steps (:data:`COALESCE_STEPS`) even where a sequence kernel could step through
#: them (False: the kernel takes the whole sequence; measured faster, see ``_run_steps``)
COALESCE_WITH_KERNELS = False


def g_like_cpu(*tensors: Tensor | float) -> bool:
    """Whether a model's numba sequence kernel may run: every tensor on the CPU in float32 / float64."""
    return all(not isinstance(t, torch.Tensor) or (t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64))
               for t in tensors)


def _step_through(step, g: Tensor, counts: Tensor) -> Tensor:
    """``g`` after ``step(g, kf, |kf|, n_on)`` for each step ``kf`` of ``counts`` that has pulses
    (``n_on`` of them non-zero); a step function with a ``run(g, counts)`` attribute (a model's
    kernel for a whole sequence, :mod:`~memsnn.device_models.kernels`) applies them in one call."""
    run = getattr(step, "run", None) if SEQUENCE_KERNELS else None
    if run is not None and g.device.type == "cpu" and g.dtype in (torch.float32, torch.float64):
        return run(g, counts)
    for kf in counts:
        n_on = int(torch.count_nonzero(kf))
        if n_on:
            g = step(g, kf, kf.abs(), n_on)
    return g


def check_pulses(pulses: Any, shape: torch.Size, device: torch.device) -> Tensor:
    """Validate a pulse-count tensor: integer dtype, broadcastable to ``shape``; returns it broadcast."""
    if not isinstance(pulses, torch.Tensor):
        raise TypeError(f"pulses must be a torch.Tensor of signed integer counts, got {type(pulses).__name__}")
    if pulses.dtype.is_floating_point or pulses.dtype.is_complex or pulses.dtype == torch.bool:
        raise TypeError(
            f"pulses must have an integer dtype (signed pulse counts), got {pulses.dtype}; "
            "round and convert with .round().to(torch.int32) if you mean counts"
        )
    try:
        out = torch.broadcast_to(pulses, shape)
    except RuntimeError:
        raise ValueError(
            f"pulses has shape {tuple(pulses.shape)}, which does not broadcast to the array shape {tuple(shape)}"
        ) from None
    if out.device != device:
        out = out.to(device)
    return out


def _check_positive_amount(name: str, value: Any, unit: str) -> None:
    if isinstance(value, torch.Tensor):
        if not torch.isfinite(value).all() or (value <= 0).any():
            raise ValueError(f"{name} must be finite and > 0 {unit}; got a tensor with min {value.min().item()!r}")
    elif not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name}={value!r} must be a finite number > 0 ({unit})")


class Sampler:
    """Draws per-device (device-to-device) parameters for one array."""

    def __init__(self, shape: torch.Size, gen: torch.Generator | None, device: torch.device, dtype: torch.dtype):
        self.shape, self.gen, self.device, self.dtype = shape, gen, device, dtype

    def normal(self) -> Tensor:
        """Standard normal per device, truncated at +-3 sigma."""
        return torch.randn(self.shape, generator=self.gen, device=self.device, dtype=self.dtype).clamp_(-3.0, 3.0)

    def offset(self, mean: float, std: float) -> Tensor:
        """``mean + std * xi`` per device (no draw when ``std == 0``)."""
        if std == 0:
            return torch.full(self.shape, float(mean), device=self.device, dtype=self.dtype)
        return mean + std * self.normal()

    def spread(self, mean: float, rel: float) -> Tensor:
        """``mean * (1 + rel * xi)`` per device, kept on the sign of ``mean`` (at least 5 % of it).

        No random numbers are drawn when ``rel == 0``.
        """
        if rel == 0:
            return torch.full(self.shape, float(mean), device=self.device, dtype=self.dtype)
        return mean * (1.0 + rel * self.normal()).clamp_(min=0.05)


class DeviceModel:
    """Base class of all device models; see the module docstring for the shared physics.

    Subclasses set ``params_class`` and ``preset`` and implement :meth:`_respond` (the noise-free
    response of the long-term conductance to a real-valued number of nominal pulses), and usually
    :meth:`_coord` / :meth:`_uncoord` (used for pulse-count estimates) and :meth:`_reference_step`.
    """

    params_class: ClassVar[type[DeviceParams]] = DeviceParams
    preset: ClassVar[str] = "base"
    #: short provenance of the preset defaults (full sources in the preset module docstring)
    source: ClassVar[str] = ""

    def __init__(self, params: DeviceParams | None = None, **overrides: Any):
        if params is None:
            params = self.params_class.from_dict(overrides)
        elif overrides:
            params = params.replace(**overrides)
        if not isinstance(params, self.params_class):
            raise TypeError(
                f"{type(self).__name__} needs {self.params_class.__name__}, got {type(params).__name__}"
            )
        self.params = params

    def __repr__(self) -> str:
        return f"{type(self).__name__}(preset={self.preset!r})"

    # ------------------------------------------------------------------------------------------------
    # construction
    # ------------------------------------------------------------------------------------------------
    def init_state(
        self,
        shape: tuple[int, ...] | torch.Size | int,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        generator: torch.Generator | int | None = None,
    ) -> DeviceState:
        """A fresh array of ``shape`` devices at ``g_init``, with d2d parameters sampled once.

        Args:
            shape: array shape, e.g. ``(rows, cols)``.
            device: torch device (``"cpu"``, ``"cuda"``).
            dtype: floating dtype of conductances (float32 or float64).
            generator: torch.Generator or int seed; the same seed gives the same state.
        """
        shape = torch.Size([shape]) if isinstance(shape, int) else torch.Size(shape)
        if any(s <= 0 for s in shape):
            raise ValueError(f"shape={tuple(shape)} must have positive sizes")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype={dtype} is not allowed: use torch.float32 or torch.float64")
        device = torch.device(device)
        gen = as_generator(generator, device)
        p = self.params
        window = p.window

        sample = Sampler(shape, gen, device, dtype)
        dev: dict[str, Tensor] = {}
        g_min = sample.offset(p.g_min, p.g_min_dtod * window).clamp_(min=0.0)
        g_max = sample.offset(p.g_max, p.g_max_dtod * window)
        g_max = torch.maximum(g_max, g_min + 0.05 * window)
        dev["g_min"], dev["g_max"] = g_min, g_max
        step = sample.spread(1.0, p.step_dtod)
        up_down = sample.offset(0.0, p.up_down_dtod)
        dev["scale_set"] = step * (1.0 + up_down).clamp(min=0.05)
        dev["scale_reset"] = step * (1.0 - up_down).clamp(min=0.05)
        dev["tau"] = sample.spread(p.tau_volatile, p.tau_volatile_dtod)
        dev.update(self._sample_extra(sample, dev))

        if p.g_init is None:
            g = g_min.clone()
        else:
            g = sample.spread(p.g_init, p.g_init_dtod)
        g = torch.minimum(torch.maximum(g, g_min), g_max)

        stuck = torch.zeros(shape, dtype=torch.int8, device=device)
        if p.p_stuck_min > 0 or p.p_stuck_max > 0:
            u = torch.rand(shape, generator=gen, device=device, dtype=torch.float64)
            stuck[u < p.p_stuck_min] = -1
            stuck[(u >= p.p_stuck_min) & (u < p.p_stuck_min + p.p_stuck_max)] = 1
        g = torch.where(stuck < 0, g_min, torch.where(stuck > 0, g_max, g))
        g = self._quantise(g, dev, gen)

        nu = self._initial_nu(g, sample)
        nu = torch.where(stuck != 0, torch.zeros_like(nu), nu)
        zeros = torch.zeros(shape, device=device, dtype=dtype)
        return DeviceState(
            g=g,
            t_prog=torch.zeros(shape, device=device, dtype=torch.float64),
            g_vol=zeros.clone(),
            nu=nu,
            bias=zeros.clone(),
            write_offset=zeros.clone(),
            stuck=stuck,
            n_set=torch.zeros(shape, device=device, dtype=torch.int64),
            n_reset=torch.zeros(shape, device=device, dtype=torch.int64),
            energy=torch.zeros(shape, device=device, dtype=torch.float64),
            dev=dev,
            time=0.0,
        )

    def _sample_extra(self, sample: "Sampler", dev: dict[str, Tensor]) -> dict[str, Tensor]:
        """Model-specific per-device parameters, drawn with ``sample`` (override)."""
        return {}

    def _initial_nu(self, g: Tensor, sample: "Sampler") -> Tensor:
        """Drift exponents of a fresh array (default: ``drift_nu`` with ``drift_nu_dtod`` spread)."""
        return sample.spread(self.params.drift_nu, self.params.drift_nu_dtod).clamp_(min=0.0)

    def nominal_device_params(self, device: torch.device | str = "cpu", dtype=torch.float64) -> dict[str, Tensor]:
        """Per-device parameters of the *mean* device, as 0-d tensors (for nominal behaviour)."""
        p = self.params
        one = torch.ones((), device=device, dtype=dtype)
        dev = {
            "g_min": p.g_min * one,
            "g_max": p.g_max * one,
            "scale_set": one.clone(),
            "scale_reset": one.clone(),
            "tau": p.tau_volatile * one,
        }
        dev.update(self._nominal_extra(one))
        return dev

    def _nominal_extra(self, one: Tensor) -> dict[str, Tensor]:
        return {}

    def _params_memo(self, key: Any, compute):
        """``compute()``, once per parameter set of this model and ``key`` (values that depend
        on the parameters only; a model whose parameters are replaced starts afresh)."""
        memo = self.__dict__.get("_params_memo_values")
        if memo is None or memo[0] is not self.params:
            memo = self.__dict__["_params_memo_values"] = (self.params, {})
        if key not in memo[1]:
            memo[1][key] = compute()
        return memo[1][key]

    def _nominal_dev(self, device: torch.device | str, dtype: torch.dtype) -> dict[str, Tensor]:
        """:meth:`nominal_device_params`, made once per parameter set, device and dtype (for the
        controller's estimates, which run on every update; read only)."""
        return self._params_memo(("nominal", str(device), dtype), lambda: self.nominal_device_params(device, dtype))

    # ------------------------------------------------------------------------------------------------
    # the pulse law (model specific)
    # ------------------------------------------------------------------------------------------------
    def _respond(self, g: Tensor, dn: Tensor, set_f: Tensor, amp: Tensor, dev: dict[str, Tensor]) -> Tensor:
        """Noise-free long-term conductance after ``dn`` (>= 0, real) nominal pulses.

        ``set_f`` is a float tensor, 1.0 for SET and 0.0 for RESET per device (select with
        :func:`pick`); ``amp`` is the pulse amplitude magnitude in volts. The default goes through
        the pulse coordinate.
        """
        return self._uncoord(self._coord(g, set_f, amp, dev) + dn, set_f, amp, dev)

    def _coord(self, g: Tensor, set_f: Tensor, amp: Tensor, dev: dict[str, Tensor]) -> Tensor:
        """Pulse coordinate of conductance ``g`` for the given polarity (one nominal pulse = +1)."""
        raise NotImplementedError

    def _uncoord(self, n: Tensor, set_f: Tensor, amp: Tensor, dev: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError

    def _reference_step(self, dev: dict[str, Tensor]) -> Tensor:
        """Reference step size in siemens, the unit of additive c2c and write noise (override)."""
        return (dev["g_max"] - dev["g_min"]) * 1e-3

    def _amplitude_factor(self, amp: Tensor, set_f: Tensor) -> Tensor:
        """Nominal pulses per pulse of amplitude ``amp`` (0 at or below the threshold)."""
        p = self.params
        rel = ((amp - p.v_threshold) / (p.v_ref - p.v_threshold)).clamp(min=0.0)
        return rel if p.amp_exponent == 1.0 else rel**p.amp_exponent

    def _fused_step(self, s_set: Tensor, s_reset: Tensor, dev: dict[str, Tensor], gen: torch.Generator | None,
                    amps: tuple[Tensor, Tensor] | None = None):
        """A model's own per-step kernel for :meth:`_apply_sequence`, or None (the generic step).

        Called only when no device is stuck, none drifted below its ``g_min`` (unless
        :attr:`_fused_below` says the step handles that: such a device is not lifted to ``g_min``
        by a pulse) and the conductance is continuous (no ``n_levels``). ``s_set`` / ``s_reset``: nominal pulses per SET / RESET
        pulse of each device (amplitude, width and d2d scale folded in); ``amps``: the SET and
        RESET amplitudes (V, 0-d tensors) for laws whose shape depends on them. Returns
        ``step(g, kf, cnt, n_on) -> g``: ``kf`` one step's signed pulse counts (whole numbers in
        ``g``'s dtype), ``cnt = |kf|`` (the step may overwrite it), ``n_on`` how many are non-zero;
        it must give the generic step's result in distribution, leave devices with ``kf == 0``
        exactly untouched and never write into ``g`` or ``kf`` (they may be the state's / the
        caller's).
        """
        return None

    #: the model's fused step keeps devices that drifted below ``g_min`` where they are (lower bound
    #: ``min(g_min, g)``, as the generic step does)
    _fused_below: ClassVar[bool] = False

    def _combined_step(self, g: Tensor, counts: Tensor, abs_sum: Tensor, s_set: Tensor, s_reset: Tensor,
                       dev: dict[str, Tensor], gen: torch.Generator | None) -> tuple[Tensor, Tensor] | None:
        """The sequence ``counts`` ``[B, *shape]`` (``abs_sum``: its ``|counts|`` summed over the
        steps) as one step, where the law allows it:
        ``(g after the sequence, safe)``, ``safe`` (bool, the array's shape) marking the devices
        for which the combined result has the sequence's distribution (see :data:`COALESCE_Z`);
        the others are stepped one step after another. None: the model has no combined step
        (the default)."""
        return None

    def _coalesced(self, g: Tensor, counts: Tensor, s_set: Tensor, s_reset: Tensor, dev: dict[str, Tensor],
                   gen: torch.Generator | None, fused, amps: tuple[Tensor, Tensor]) -> Tensor:
        """``g`` after the sequence ``counts``, in runs of :data:`COALESCE_STEPS` steps: each run is
        :meth:`_combined_step` for the devices it can take and the ``fused`` step, one step after
        another, for the others. Once a run finds more than half of the devices out of reach of
        the combined step, the rest of the sequence is stepped through (the choice between two
        ways of drawing the same distribution depends on the past only, so it biases nothing).
        Row by row: a ``[B, *shape]`` temporary costs more here than a few small ops per row."""
        shape, B = g.shape, counts.shape[0]
        for a in range(0, B, COALESCE_STEPS):
            run = counts[a:a + COALESCE_STEPS]
            run_abs = torch.zeros_like(g)
            for kf in run:
                run_abs += kf.abs()
            res = self._combined_step(g, run, run_abs, s_set, s_reset, dev, gen) if run.shape[0] > 1 else None
            if res is None:
                g = _step_through(fused, g, run)
                continue
            g_end, safe = res
            rest = (~safe).reshape(-1).nonzero().squeeze(1)
            if rest.numel() > 0.5 * g.numel():
                g = _step_through(fused, g, run)
                return _step_through(fused, g, counts[a + COALESCE_STEPS:])
            if rest.numel():

                def pick_rest(t: Tensor) -> Tensor:
                    return torch.broadcast_to(t, shape).reshape(-1).index_select(0, rest)

                step = self._fused_step(pick_rest(s_set), pick_rest(s_reset), {k: pick_rest(v) for k, v in dev.items()},
                                        gen, amps)
                g_rest = _step_through(step, pick_rest(g), run.reshape(run.shape[0], -1).index_select(1, rest))
                g_end = g_end.reshape(-1).index_copy_(0, rest, g_rest).view(shape)
            g = g_end
        return g

    def _post_pulse_noise(
        self, g1: Tensor, set_f: Tensor, pulsed_f: Tensor, gen: torch.Generator | None, dev: dict[str, Tensor]
    ) -> Tensor:
        """Extra model-specific randomness of the pulse result (default: none).

        ``set_f`` / ``pulsed_f``: float masks (1.0 = SET / pulsed in this step)."""
        return g1

    def _on_programmed(
        self, state: DeviceState, g_new: Tensor, touched: Tensor, gen: torch.Generator | None
    ) -> Tensor:
        """Drift exponents after the ``touched`` devices were (re)programmed; default keeps them."""
        return state.nu

    def read_noise_std(self, state: DeviceState, g: Tensor, elapsed: Tensor) -> Tensor | float:
        """Std (S) of the read noise of devices at conductance ``g``, read ``elapsed`` seconds
        after programming; a Python float when it is the same for every device."""
        p = self.params
        if p.read_noise_std == 0:
            return 0.0
        if p.read_noise_type == "absolute":
            return p.read_noise_std * p.window
        return g * p.read_noise_std

    def _drift_factor(self, state: DeviceState, elapsed: Tensor) -> Tensor:
        t0 = self.params.drift_t0
        return ((elapsed + t0) / t0).pow(-state.nu.to(elapsed.dtype))

    # ------------------------------------------------------------------------------------------------
    # pure functions on the state
    # ------------------------------------------------------------------------------------------------
    def apply_pulses(
        self,
        state: DeviceState,
        pulses: Tensor,
        *,
        amplitude: float | Tensor | None = None,
        width: float | Tensor | None = None,
        generator: torch.Generator | int | None = None,
    ) -> DeviceState:
        """Apply signed integer pulse counts at the state's time; returns the new state.

        Args:
            pulses: integer tensor broadcastable to the array shape; ``k > 0`` applies ``k`` SET
                pulses (conductance up), ``k < 0`` applies ``|k|`` RESET pulses.
            amplitude: pulse amplitude magnitude in volts (float or tensor broadcastable to the
                array); ``None`` uses ``v_set`` for SET and ``v_reset`` for RESET pulses.
            width: pulse width in seconds (float or tensor); ``None`` uses ``pulse_width``.
            generator: torch.Generator or seed for the c2c and write noise.
        """
        k = check_pulses(pulses, state.shape, state.device)
        return self.apply_pulse_sequence(state, k.unsqueeze(0), amplitude=amplitude, width=width, generator=generator)

    def apply_pulse_sequence(
        self,
        state: DeviceState,
        counts: Tensor,
        *,
        amplitude: float | Tensor | None = None,
        width: float | Tensor | None = None,
        generator: torch.Generator | int | None = None,
    ) -> DeviceState:
        """Apply ``counts[0]``, ``counts[1]``, ... one after the other at the state's time.

        Equivalent in distribution to calling :meth:`apply_pulses` once per step (each step sees
        the state the previous one left, with fresh c2c noise), but the bookkeeping (counters,
        energy, drift clocks, volatile part, write noise) is done once: nothing reads the array
        between the steps. This is the fast path of B sequential rank-1 crossbar updates.

        Where no device is stuck, none drifted below its ``g_min`` and the conductance is
        continuous, a model may step with its own fused kernel (:meth:`_fused_step`: ``ideal``,
        ``rram``), and combine runs of :data:`COALESCE_STEPS` steps into one Gaussian step for the
        devices that cannot reach a bound in them (:meth:`_combined_step`: ``ideal``; exact up to
        a clipping event of probability below ``4 Q(COALESCE_Z)`` = 1.6e-10 per device and run).
        Both draw other random numbers than the generic step, with the same distribution.

        Args:
            counts: integer tensor ``[B, *shape]`` of signed pulse counts (``+`` SET, ``-`` RESET).
            amplitude, width, generator: as in :meth:`apply_pulses` (one value for all steps).
        """
        if not isinstance(counts, torch.Tensor) or counts.dim() != len(state.shape) + 1:
            raise ValueError(
                f"counts must be a tensor of shape [B, {', '.join(map(str, state.shape))}], "
                f"got {tuple(counts.shape) if isinstance(counts, torch.Tensor) else type(counts).__name__}"
            )
        if counts.shape[1:] != state.shape:
            raise ValueError(f"counts has shape {tuple(counts.shape)}, expected [B, {', '.join(map(str, state.shape))}]")
        check_pulses(counts[:1], counts[:1].shape, counts.device)  # dtype check
        return self._apply_sequence(state, counts.to(device=state.device, dtype=state.dtype),
                                    amplitude=amplitude, width=width, generator=generator)

    def _apply_sequence(
        self,
        state: DeviceState,
        counts: Tensor,
        *,
        amplitude: float | Tensor | None = None,
        width: float | Tensor | None = None,
        generator: torch.Generator | int | None = None,
    ) -> DeviceState:
        """:meth:`apply_pulse_sequence` on counts already validated and held as whole numbers in
        the state's float dtype (the crossbar's fast path)."""
        p = self.params
        if amplitude is not None:
            _check_positive_amount("amplitude", amplitude, "volts")
        if width is not None:
            _check_positive_amount("width", width, "seconds")
        gen = as_generator(generator, state.device)
        dev, shape = state.dev, state.g.shape
        amp_set, amp_reset, same_amp, s_set, s_reset, e_set, e_reset = self._pulse_factors(state, amplitude, width)
        any_stuck = _memo_of(state.stuck, "any_stuck", lambda: bool((state.stuck != 0).any()))
        g_start = self.conductance_longterm(state)
        # a device that drifted below g_min is not lifted to g_min by a pulse; when none has,
        # the lower bound is simply g_min (and stays so: results are clipped to it)
        below = state.memo(self._memo_key("below"), lambda: bool((g_start < dev["g_min"]).any()))
        if counts.shape[0] == 1:
            signed_sum, abs_sum = counts[0], counts[0].abs()
        else:
            signed_sum, abs_sum = counts[0] + counts[1], counts[0].abs() + counts[1].abs()
            for kf in counts[2:]:  # row by row: a [B, *shape] temporary costs more than B small ops
                signed_sum += kf
                abs_sum += kf.abs()
        # only pulsed devices change: when few are, the steps run on those alone (the same
        # distribution; a single step's c2c normals are even the same numbers in the same order,
        # as the whole array's step draws them for its pulsed devices only)
        n_active = int(torch.count_nonzero(abs_sum))
        free_f = (state.stuck == 0).to(state.dtype) if any_stuck else None
        args = (amp_set, amp_reset, same_amp, gen, any_stuck, below)
        g = g_start
        if n_active and n_active < SPARSE_STEP_FRACTION * abs_sum.numel():
            idx = abs_sum.reshape(-1).nonzero().squeeze(1)

            def sub(t: Tensor) -> Tensor:
                return (t if t.shape == shape else torch.broadcast_to(t, shape)).reshape(-1).index_select(0, idx)

            g_sub = self._run_steps(sub(g), counts.reshape(counts.shape[0], -1).index_select(1, idx), sub(s_set),
                                    sub(s_reset), _Subset(dev, sub), None if free_f is None else sub(free_f), *args)
            g = g.reshape(-1).index_copy(0, idx, g_sub).view(shape)
        elif n_active:
            g = self._run_steps(g, counts, s_set, s_reset, dev, free_f, *args)

        # bookkeeping once: every applied pulse counts, stuck devices included. Untouched devices
        # keep g == g_start exactly (their weight in every blend is 0), so sums of differences
        # leave them as they were without a select.
        touched_f = abs_sum.clamp(max=1.0)
        if any_stuck:
            touched_f = touched_f.mul_(free_f)
        n_set_add = (abs_sum + signed_sum).mul_(0.5).round_().to(torch.int64)  # exact: whole numbers < 2**24
        n_reset_add = (abs_sum - signed_sum).mul_(0.5).round_().to(torch.int64)
        if isinstance(e_set, float):
            energy = state.energy.add(n_set_add, alpha=e_set).add_(n_reset_add, alpha=e_reset)
        else:  # per-device amplitudes or widths
            energy = state.energy + n_set_add.double() * e_set + n_reset_add.double() * e_reset
        g_new = torch.lerp(state.g, g, touched_f)
        touched = touched_f > 0
        t_prog = state.t_prog.masked_fill(touched, state.time)
        g_vol = state.g_vol
        if p.volatile_ratio > 0:  # each pulse adds volatile_ratio times its non-volatile change
            g_vol = g_vol.add(g - g_start, alpha=p.volatile_ratio)
        write_offset = state.write_offset
        if p.write_noise_std > 0:  # resampled when touched; only the last draw is ever seen
            xi = _randn(shape, generator=gen, device=state.device, dtype=state.dtype)
            write_offset = torch.where(touched, p.write_noise_std * self._reference_step(dev) * xi, write_offset)
        nu = self._on_programmed(state, g, touched, gen)
        new = state.replace(
            g=g_new, t_prog=t_prog, g_vol=g_vol, write_offset=write_offset, nu=nu,
            energy=energy, n_set=state.n_set + n_set_add, n_reset=state.n_reset + n_reset_add,
        )
        if self._drifts():  # the new state's drifted conductance now is g: an untouched device's
            # g_start (same g, t_prog, nu and time), a pulsed one's own (no drift since its pulse)
            new.remember(self._memo_key("longterm"), g)
        return new

    def apply_sequences(self, states: list[DeviceState], counts: list[Tensor], *,
                        amplitude: float | None = None, width: float | None = None,
                        generator: torch.Generator | int | None = None) -> list[DeviceState]:
        """:meth:`_apply_sequence` of several arrays of equal shape and time (a differential
        pair's two arrays) as one sequence on their stacked states: the same distribution as one
        array after the other, half the operations. ``counts``: one ``[B, *shape]`` float tensor
        of whole numbers per array (validated by the caller). Only the fields a pulse changes are
        unstacked; the per-device parameters are stacked once per set of arrays."""
        if len(states) != len(counts) or not states:
            raise ValueError(f"apply_sequences needs one count tensor per array: got {len(states)} arrays and "
                             f"{len(counts)} count tensors")
        for i, (s, k) in enumerate(zip(states, counts)):
            if not isinstance(k, torch.Tensor) or k.dim() != len(s.shape) + 1 or k.shape[1:] != s.shape:
                raise ValueError(f"counts[{i}] must be [B, {', '.join(map(str, s.shape))}], got "
                                 f"{tuple(k.shape) if isinstance(k, torch.Tensor) else type(k).__name__}")
        if len(states) == 1:
            return [self._apply_sequence(states[0], counts[0], amplitude=amplitude, width=width, generator=generator)]
        if len({s.time for s in states}) != 1 or len({s.shape for s in states}) != 1:
            raise ValueError("apply_sequences needs arrays of one shape at one time")
        # kept with the first array's parameters, keyed by the others' (whose tensors the memo
        # holds, so that their ids cannot be reused while it lives)
        others = [s.dev["scale_set"] for s in states[1:]]
        _, dev = _memo_of(states[0].dev["scale_set"], ("stacked_dev",) + tuple(map(id, others)),
                          lambda: (others, {k: torch.stack([s.dev[k] for s in states]) for k in states[0].dev}))
        stacked = DeviceState(**{n: torch.stack([getattr(s, n) for s in states]) for n in _STATE_TENSORS},
                              dev=dev, time=states[0].time)
        out = self._apply_sequence(stacked, torch.stack(counts, dim=1), amplitude=amplitude, width=width,
                                   generator=generator)
        parts = [s.replace(**{n: getattr(out, n)[i] for n in _PULSED_TENSORS}) for i, s in enumerate(states)]
        if self._drifts():
            g = self.conductance_longterm(out)  # remembered by the sequence
            parts = [part.remember(self._memo_key("longterm"), g[i]) for i, part in enumerate(parts)]
        return parts

    def _pulse_factors(self, state: DeviceState, amplitude, width) -> tuple:
        """``(amp_set, amp_reset, same_amp, s_set, s_reset, e_set, e_reset)`` of a sequence:
        amplitudes (V, 0-d tensors), nominal pulses per SET / RESET pulse of each device
        (amplitude, width and d2d scale folded in) and the energy per SET / RESET pulse (J).
        Computed once per set of per-device parameters and amplitude / width when those are
        None or numbers."""
        if isinstance(amplitude, torch.Tensor) or isinstance(width, torch.Tensor):
            return self._compute_pulse_factors(state, amplitude, width)
        key = ("pulse_factors", type(self), self.params, amplitude, width, state.dtype, state.device)
        try:
            hash(key)
        except TypeError:  # parameters that cannot be hashed: no memo
            return self._compute_pulse_factors(state, amplitude, width)
        return _memo_of(state.dev["scale_set"], key, lambda: self._compute_pulse_factors(state, amplitude, width))

    def _compute_pulse_factors(self, state: DeviceState, amplitude, width) -> tuple:
        p, dev, dtype, device = self.params, state.dev, state.dtype, state.device

        def as_t(value):
            return torch.as_tensor(value, dtype=dtype, device=device)

        amp_set = as_t(p.v_set if amplitude is None else amplitude)
        amp_reset = as_t(p.v_reset if amplitude is None else amplitude)
        width_f = as_t(p.pulse_width if width is None else width) / p.width_ref
        same_amp = amplitude is not None or p.v_set == p.v_reset
        one = torch.ones((), dtype=dtype, device=device)
        s_set = self._amplitude_factor(amp_set, one) * width_f * dev["scale_set"]
        s_reset = self._amplitude_factor(amp_reset, 0 * one) * width_f * dev["scale_reset"]
        e_set = p.energy_set * (amp_set.double() / p.v_ref) ** 2 * width_f.double()
        e_reset = p.energy_reset * (amp_reset.double() / p.v_ref) ** 2 * width_f.double()
        if e_set.dim() == 0 and e_reset.dim() == 0:
            e_set, e_reset = float(e_set), float(e_reset)
        return amp_set, amp_reset, same_amp, s_set, s_reset, e_set, e_reset

    def _run_steps(self, g: Tensor, counts: Tensor, s_set: Tensor, s_reset: Tensor, dev: dict[str, Tensor],
                   free_f: Tensor | None, amp_set: Tensor, amp_reset: Tensor, same_amp: bool,
                   gen: torch.Generator | None, any_stuck: bool, below: bool) -> Tensor:
        """Long-term conductance ``g`` after the steps ``counts`` ``[B, *g.shape]`` (the pulse law,
        c2c noise, bounds and levels; no bookkeeping). Every tensor is shaped like ``g`` (the whole
        array or a flat subset of its devices); ``free_f``: 1.0 for working devices (None: none
        is stuck)."""
        p = self.params
        g_min, g_max = dev["g_min"], dev["g_max"]
        if not any_stuck and p.n_levels is None and (not below or self._fused_below):
            fused = self._fused_step(s_set, s_reset, dev, gen, (amp_set, amp_reset))
            if fused is not None:  # a model's own step with fewer elementwise ops (same distribution)
                kernel = (SEQUENCE_KERNELS and not COALESCE_WITH_KERNELS and getattr(fused, "run", None) is not None
                          and g_like_cpu(g))
                if counts.shape[0] > 1 and type(self)._combined_step is not DeviceModel._combined_step and not kernel:
                    # runs of steps as one step where the law allows it (a sequence kernel steps
                    # through every step faster than the combined step's bookkeeping costs)
                    return self._coalesced(g, counts, s_set, s_reset, dev, gen, fused, (amp_set, amp_reset))
                return _step_through(fused, g, counts)
        mult = p.step_std > 0 and p.step_noise == "multiplicative"
        additive = p.step_std > 0 and p.step_noise == "additive"
        noise_scale = p.step_std * self._reference_step(dev) if additive else None
        # Hot loop: float masks and lerp instead of bool masks and torch.where (much faster on
        # CPU); every op is elementwise, and branches depend on settings only.
        for kf in counts:
            cnt = kf.abs()
            set_f = kf.clamp(0.0, 1.0)  # 1.0 SET, 0.0 RESET (or no pulse)
            s = torch.lerp(s_reset, s_set, set_f)
            if mult:  # k pulses advance the coordinate by s (k + step_std sqrt(k) xi)
                xi = _normals_where_pulsed(cnt, gen)
                dn = torch.addcmul(cnt, cnt.sqrt(), xi, value=p.step_std).mul_(s)
            else:
                dn = s * cnt
            amp = amp_set if same_amp else torch.lerp(amp_reset, amp_set, set_f)
            g1 = self._respond(g, dn, set_f, amp, dev)
            if additive:  # k pulses add step_std * dG_ref * s * sqrt(k) * xi siemens
                xi = _normals_where_pulsed(cnt, gen)
                g1 = torch.addcmul(g1, noise_scale * s, cnt.sqrt().mul_(xi))
            pulsed_f = cnt.clamp_(max=1.0)
            g1 = self._post_pulse_noise(g1, set_f, pulsed_f, gen, dev)
            g1 = torch.clamp(g1, torch.minimum(g_min, g) if below else g_min, g_max)
            g1 = self._quantise(g1, dev, gen)
            g = torch.lerp(g, g1, pulsed_f.mul_(free_f) if any_stuck else pulsed_f)
        return g

    def advance(self, state: DeviceState, seconds: float) -> DeviceState:
        """Let ``seconds`` pass: the volatile part relaxes, the drift clock runs on."""
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"seconds={seconds!r} must be a finite number >= 0")
        g_vol = state.g_vol
        if seconds > 0 and self.params.volatile_ratio > 0:
            g_vol = g_vol * torch.exp(-seconds / self._tau(state))
        return state.replace(g_vol=g_vol, time=state.time + float(seconds))

    def set_bias(self, state: DeviceState, volts: float | Tensor) -> DeviceState:
        """Set the bias voltage (V) that controls the volatile time constant (meta-plasticity)."""
        bias = torch.as_tensor(volts, dtype=state.dtype, device=state.device)
        if not torch.isfinite(bias).all():
            raise ValueError("bias voltage must be finite")
        return state.replace(bias=torch.broadcast_to(bias, state.shape).clone())

    def _tau(self, state: DeviceState) -> Tensor:
        p = self.params
        tau = state.dev["tau"]
        if p.tau_bias_coeff != 0:
            tau = tau * torch.exp(p.tau_bias_coeff * state.bias)
        return tau

    def tau_volatile(self, state: DeviceState) -> Tensor:
        """Per-device volatile relaxation time at the current bias (s)."""
        return self._tau(state)

    def _elapsed(self, state: DeviceState, at: float | None) -> tuple[float, Tensor]:
        t = state.time if at is None else float(at)
        if at is not None and (not math.isfinite(t) or t < state.time):
            raise ValueError(f"at={at!r} must be a finite time >= the state's time {state.time!r} (s)")
        return t, (t - state.t_prog).clamp(min=0.0)

    def conductance_longterm(self, state: DeviceState, at: float | None = None) -> Tensor:
        """Noise-free long-term conductance at time ``at`` (default: the state's time), drift included (S)."""
        if not self._drifts():
            self._elapsed(state, at)  # validates at
            return state.g
        if at is None or at == state.time:  # the state's own time: computed once per state
            return state.memo(self._memo_key("longterm"), lambda: self._longterm(state, None))
        return self._longterm(state, at)

    def _longterm(self, state: DeviceState, at: float | None) -> Tensor:
        _, elapsed = self._elapsed(state, at)
        return (state.g.double() * self._drift_factor(state, elapsed)).to(state.dtype)

    def _has_dynamic_nu(self) -> bool:
        return False

    def _memo_key(self, what: str) -> tuple:
        """Key of a state memo of this model's ``what`` (its parameters included: a model whose
        parameters were replaced reads the state afresh)."""
        return (what, id(self), id(self.params))

    def _drifts(self) -> bool:
        return self.params.drift_nu != 0 or self._has_dynamic_nu()

    def conductance(self, state: DeviceState, at: float | None = None) -> Tensor:
        """Noise-free conductance at time ``at``: long-term (drifted) + volatile + write offset (S)."""
        if at is None or at == state.time:  # the state's own time: computed once per state
            return state.memo(self._memo_key("conductance"), lambda: self._conductance(state, None))
        return self._conductance(state, at)

    def _conductance(self, state: DeviceState, at: float | None) -> Tensor:
        t, _ = self._elapsed(state, at)
        g = self.conductance_longterm(state, at)
        if self.params.volatile_ratio > 0:
            g_vol = state.g_vol
            if t > state.time:
                g_vol = g_vol * torch.exp(-(t - state.time) / self._tau(state))
            g = g + g_vol
        if self.params.write_noise_std > 0:
            g = g + state.write_offset
        return g.clamp(min=0.0)

    def read(
        self,
        state: DeviceState,
        *,
        at: float | None = None,
        generator: torch.Generator | int | None = None,
    ) -> Tensor:
        """Conductance seen by a read at time ``at`` (default: now), with read noise (S)."""
        g = self.conductance(state, at)
        _, elapsed = self._elapsed(state, at)
        sigma = self.read_noise_std(state, g, elapsed)
        if isinstance(sigma, float) and sigma == 0.0:
            return g
        gen = as_generator(generator, state.device)
        xi = _randn(state.shape, generator=gen, device=state.device, dtype=state.dtype)
        return (g + sigma * xi).clamp(min=0.0)

    def program(
        self,
        state: DeviceState,
        g_target: Tensor,
        *,
        generator: torch.Generator | int | None = None,
    ) -> DeviceState:
        """Statistical programming: set the long-term conductance to ``g_target`` plus the model's
        programming error (see :meth:`programming_noise_std`), reset the drift clock and clear the
        volatile part. This is the shortcut inference simulators use for an iterative
        program-and-verify loop; it counts no pulses and no energy. Pulse-accurate programming lives
        in ``memsnn.crossbar`` (open loop and write-verify).
        """
        target = torch.as_tensor(g_target, dtype=state.dtype, device=state.device)
        if target.shape != state.shape:
            raise ValueError(f"g_target has shape {tuple(target.shape)}, expected {tuple(state.shape)}")
        if not torch.isfinite(target).all():
            raise ValueError("g_target contains NaN or infinite values")
        gen = as_generator(generator, state.device)
        dev = state.dev
        sigma = self.programming_noise_std(target, dev)
        g1 = target
        if not (isinstance(sigma, float) and sigma == 0.0):
            g1 = target + sigma * _randn(state.shape, generator=gen, device=state.device, dtype=state.dtype)
        g1 = torch.minimum(torch.maximum(g1, dev["g_min"]), dev["g_max"])
        g1 = self._quantise(g1, dev, gen)
        touched = state.stuck == 0
        nu = self._on_programmed(state, g1, touched, gen)
        return state.replace(
            g=torch.where(touched, g1, state.g),
            t_prog=torch.where(touched, torch.full_like(state.t_prog, state.time), state.t_prog),
            g_vol=torch.zeros_like(state.g_vol),
            write_offset=torch.zeros_like(state.write_offset),
            nu=nu,
        )

    def programming_noise_std(self, g_target: Tensor, dev: dict[str, Tensor]) -> Tensor | float:
        """Std (S) of the error left by :meth:`program`; default: none."""
        return 0.0

    def _quantise(self, g: Tensor, dev: dict[str, Tensor], generator: torch.Generator | None = None,
                  *, mean: bool = False) -> Tensor:
        """``g`` on the device's levels (unchanged when continuous); ``mean=True`` gives the expected
        value instead of a draw (stochastic rounding: ``g`` itself)."""
        n = self.params.n_levels
        if n is None or (mean and self.params.level_rounding == "stochastic"):
            return g
        lo, hi = dev["g_min"], dev["g_max"]
        spacing = (hi - lo) / (n - 1)
        x = (g - lo) / spacing
        if self.params.level_rounding == "stochastic":
            base = torch.floor(x)
            u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = base + (u < x - base).to(x.dtype)
        else:
            x = torch.round(x)
        return lo + x.clamp(0, n - 1) * spacing

    # ------------------------------------------------------------------------------------------------
    # nominal behaviour (for schedulers, open-loop programming and plots)
    # ------------------------------------------------------------------------------------------------
    def nominal_step(
        self,
        g: Tensor,
        polarity: int,
        *,
        amplitude: float | None = None,
        width: float | None = None,
        dev: dict[str, Tensor] | None = None,
    ) -> Tensor:
        """Expected noise-free change of long-term conductance from one pulse at ``g`` (S, signed).

        ``dev`` defaults to the mean device; pass ``state.dev`` for each device's own step.
        """
        if polarity not in (1, -1):
            raise ValueError(f"polarity={polarity!r} must be +1 (SET) or -1 (RESET)")
        g = torch.as_tensor(g)
        dtype = g.dtype if g.dtype.is_floating_point else torch.float64
        g = g.to(dtype)
        dev = self._nominal_dev(g.device, dtype) if dev is None else dev
        p = self.params
        amp_v = (p.v_set if polarity > 0 else p.v_reset) if amplitude is None else amplitude
        # one polarity and amplitude for every device: 0-d tensors, broadcast by the law
        set_f = torch.tensor(1.0 if polarity > 0 else 0.0, device=g.device, dtype=dtype)
        amp = torch.tensor(float(amp_v), device=g.device, dtype=dtype)
        w = p.pulse_width if width is None else width
        scale = dev["scale_set"] if polarity > 0 else dev["scale_reset"]
        s = self._amplitude_factor(amp, set_f) * (w / p.width_ref) * scale
        g1 = self._respond(g, s.expand(g.shape), set_f, amp, dev)
        g1 = torch.minimum(torch.maximum(g1, dev["g_min"]), dev["g_max"])
        return g1 - g

    def full_reset_pulses(self, amplitude: float | None = None) -> int:
        """RESET pulses (at least 1) the mean device needs to fall from ``g_max`` to ``g_min`` at
        ``amplitude`` (None: ``v_reset``): the parallel RESET phase of open-loop programming.
        Computed once per parameter set and amplitude."""
        def count() -> int:
            top = torch.tensor(self.params.g_max, dtype=torch.float64)
            bottom = torch.tensor(self.params.g_min, dtype=torch.float64)
            return max(1, int(math.ceil(-float(self.pulses_needed(top, bottom, amplitude=amplitude)))))

        return self._params_memo(("full_reset", amplitude), count)

    def pulses_needed(
        self,
        g_now: Tensor,
        g_target: Tensor,
        *,
        amplitude: float | None = None,
        width: float | None = None,
    ) -> Tensor:
        """Signed, real number of pulses the *mean* device needs to go from ``g_now`` to ``g_target``.

        Positive: SET pulses; negative: RESET pulses (float64). This is what an open-loop or
        write-verify controller can know: the nominal law, not each device's own parameters.
        Both conductances are kept 0.1 % of the window inside the nominal bounds, since a soft bound
        is only reached asymptotically.
        """
        p = self.params
        dtype = torch.float64
        g_now = torch.as_tensor(g_now).to(dtype)
        g_target = torch.as_tensor(g_target).to(dtype=dtype, device=g_now.device)
        eps = 1e-3 * p.window
        now = g_now.clamp(p.g_min + eps, p.g_max - eps)
        tgt = g_target.clamp(p.g_min + eps, p.g_max - eps)
        set_f = (tgt > now).to(dtype)
        dev = self._nominal_dev(g_now.device, dtype)
        amp = pick(set_f, p.v_set, p.v_reset) if amplitude is None else torch.full_like(now, float(amplitude))
        w = p.pulse_width if width is None else width
        s = self._amplitude_factor(amp, set_f) * (w / p.width_ref)
        n = (self._coord(tgt, set_f, amp, dev) - self._coord(now, set_f, amp, dev)) / s.clamp(min=1e-12)
        return n * (2.0 * set_f - 1.0)

    def pulse_response(
        self,
        state: DeviceState,
        n_set: int,
        n_reset: int,
        *,
        generator: torch.Generator | int | None = None,
        read: bool = True,
    ) -> Tensor:
        """Conductance after each of ``n_set`` SET then ``n_reset`` RESET single pulses.

        Returns ``[n_set + n_reset + 1, *shape]`` (the first row is the start), read with read
        noise if ``read`` else noise-free. Handy for plots and characterisation.
        """
        gen = as_generator(generator, state.device)
        out = [self.read(state, generator=gen) if read else self.conductance(state)]
        one = torch.ones(state.shape, dtype=torch.int32, device=state.device)
        for i in range(n_set + n_reset):
            state = self.apply_pulses(state, one if i < n_set else -one, generator=gen)
            out.append(self.read(state, generator=gen) if read else self.conductance(state))
        return torch.stack(out)

    # ------------------------------------------------------------------------------------------------
    # accounting
    # ------------------------------------------------------------------------------------------------
    @staticmethod
    def total_energy(state: DeviceState) -> float:
        """Programming energy spent by the whole array (J)."""
        return state.memo("total_energy", lambda: float(state.energy.sum()))

    @staticmethod
    def total_pulses(state: DeviceState) -> int:
        """Number of pulses applied to the whole array (SET + RESET)."""
        return state.memo("total_pulses", lambda: int(state.n_set.sum() + state.n_reset.sum()))

    # ------------------------------------------------------------------------------------------------
    # description
    # ------------------------------------------------------------------------------------------------
    def key_numbers(self) -> dict[str, Any]:
        """The few numbers that characterise the preset (for tables)."""
        p = self.params
        g_mid = torch.tensor((p.g_min + p.g_max) / 2, dtype=torch.float64)
        return {
            "preset": self.preset,
            "g_min_nS": p.g_min * 1e9,
            "g_max_nS": p.g_max * 1e9,
            "set_step_mid_nS": float(self.nominal_step(g_mid, +1)) * 1e9,
            "reset_step_mid_nS": float(self.nominal_step(g_mid, -1)) * 1e9,
            "c2c": p.step_std,
            "read_noise": p.read_noise_std,
            "drift_nu": p.drift_nu,
            "tau_vol_s": p.tau_volatile if p.volatile_ratio > 0 else None,
            "stuck": p.p_stuck_min + p.p_stuck_max,
            "levels": p.n_levels,
            "E_set_pJ": p.energy_set * 1e12,
        }

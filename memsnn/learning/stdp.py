"""Supervised in-situ STDP with neuronal competition (science.md section 3.2), float and in-situ.

The rule is S2-STDP with competition groups (Goupy et al., NeurIPS 2024, arXiv 2410.17066), the
exact, code-backed form of the supervised in-situ STDP of Prajapati, Sur-Kolay and Dutta
(arXiv 2507.20998, whose own equations are not public).

Network. Features in [0, 1] are time-to-first-spike coded with
:func:`memsnn.crossbar.encoders.latency` (linear, normalised, clipped: one spike per input at step
``t_i = round((T - 1) * (1 - x_i))``; inputs below ``input_threshold`` never fire). One layer of
``n_out = n_classes * neurons_per_class`` integrate-and-fire neurons (:func:`lif_step` with
``beta = 1``, reset to zero and a refractory period of ``T`` steps, so each fires at most once)
integrates ``I_j(t) = sum_i s_i(t) w_ij``; neuron ``j`` fires at the first step its membrane
exceeds its own threshold ``theta_j`` (kept in ``LIFState.a`` as an offset above the base
threshold ``threshold_min``, constant over the run). ``t_j = T`` for a silent neuron.

Teacher, per sample with label ``y`` (times in steps, ``t_max = T``)::

    t_base = min(mean t_j of the output neurons that fired, t_max - gap_nt * t_max)
                (t_max - gap_nt * t_max when none fired)
    t*_j   = t_base - gap_t * t_max      neurons of class y
    t*_j   = t_base + gap_nt * t_max     the others
    e_j    = (t_j - t*_j) / t_max

Updated neurons ("pulses go only to the columns of the winner and target neurons"): the target -
the first neuron of class ``y`` to fire (or, if none of them fired, the one with the highest
membrane) - and the overall winner (the first neuron to fire) when it belongs to another class.
Ties in firing time are broken by the membrane potential at the end of the window (integrated
input, no reset) relative to the neuron's threshold, ``v_end - theta`` (highest wins).

Weight change of an updated neuron ``j`` (``lr = anneal ** epochs_done``)::

    input fired at or before t_j (it caused the spike):  dw_ij = lr * e_j * a_plus
    otherwise (fired later, or never):                   dw_ij = lr * e_j * a_minus
    threshold:                                           theta_j -= lr * threshold_lr * n_in * e_j

so a late neuron (``e_j > 0``) is potentiated on its causal inputs, depressed on the others and
gets a lower threshold; an early one (``e_j < 0``) the reverse (anti-STDP) - the STDP magnitude is
``|e_j| * a_plus`` and ``|e_j| * a_minus`` with the signs flipped for ``e_j < 0``. Weights stay in
``[0, 1]`` (``[-1, 1]`` with ``signed``), thresholds at or above ``threshold_min * n_in``.
Training is online: within a batch the samples are presented one after another, each seeing the
weights the previous one left.

Prediction: the class of the first neuron to fire, ties and silence broken as above.

In-situ (``device`` given): the weights live on a :class:`~memsnn.crossbar.Crossbar` - by default
``mapping="unipolar"`` (one device per non-negative synapse against a ``g_min`` reference column),
or a differential pair (``mapping="differential"``, weights in ``[-1, 1]``). The forward pass reads
the array (``crossbar.vmm`` on all ``T`` time steps of a sample at once, binary spikes), so it
sees read noise, drift, device-to-device and cycle-to-cycle spread. Updates go only through the
:class:`~memsnn.learning.scheduler.PulseScheduler`, in one of two forms:

- state-aware column writes (``step="state_aware"``, the default on native crossbars): the
  controller reads the updated neuron's column and gives each device its own pulse count,
  ``|dw_ij|`` over that device's local step at its present conductance - one dense phase per
  updated column and polarity. This undoes the nonlinear, asymmetric step of a device like srtio3
  (a SET near ``g_min`` is several times a RESET there), whose bias otherwise pulls every weight
  towards the point where the two steps match. Measured on digits (10 epochs, srtio3 with every
  non-ideality on, seeds 0-4): 63.3 +- 11.3 % with nominal rank-1 phases, about 84 % with column
  writes (float weights 89-90 %); clean srtio3 (no spread or noise), 4 epochs: 52 % vs 82 %.
- rank-1 outer-product phases (``step="nominal"``; the default on the aihwkit backend, whose
  ``tile.update`` takes outer products): for each updated neuron ``j`` one phase with rows = the
  0/1 mask of the inputs that fired at or before ``t_j`` and ``dw_cols`` = a one-hot column
  carrying ``lr * e_j * a_plus``, and one phase for the other rows carrying
  ``lr * e_j * a_minus``; every device of a phase gets the column's count (nominal step) - the
  literal "all synapses of the winning neuron in parallel".

Stochastic rounding turns changes below one pulse into the right expected number of pulses. The
thresholds are digital (periphery). The initial weights are written with write-verify (pulses and
energy counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from ..crossbar.array import Crossbar, CrossbarParams
from ..crossbar.encoders import latency
from ..crossbar.layers import CrossbarLinear
from ..crossbar.neurons import LIFParams, LIFState, first_spike_times, lif_step
from ..crossbar.periphery import PeripheryParams
from ..device_models import DeviceModel, make_device
from ..params import Params, param
from .loop import Method, StepStats
from .scheduler import PulseScheduler, SchedulerParams

__all__ = ["STDPParams", "SupervisedSTDP", "default_scheduler", "teacher", "update_targets"]

Tensor = torch.Tensor


def default_scheduler(backend: str = "native") -> SchedulerParams:
    """In-situ default: state-aware column writes on native crossbars, nominal rank-1 phases on
    aihwkit (its ``tile.update`` takes outer products); see the module docstring."""
    return SchedulerParams(step="state_aware" if backend == "native" else "nominal")


@dataclass(frozen=True)
class STDPParams(Params):
    """Parameters of :class:`SupervisedSTDP` (defaults and their provenance in its docstring)."""

    _owner = "STDP"

    num_steps: int = param(32, unit="steps", check="int>=2", doc="presentation window t_max: steps of the latency code and of the neurons")
    neurons_per_class: int = param(3, unit="1", check="int>=1", doc="output neurons per class (a competition group)")
    a_plus: float = param(0.05, unit="1", check=">0", doc="STDP potentiation of causal inputs per unit of timing error (weight units)")
    a_minus: float = param(-0.05, unit="1", check="<0", doc="STDP change of the other inputs per unit of timing error (< 0: depression)")
    gap_t: float = param(0.08, unit="t_max", check=">=0", doc="target of the true class's neurons: t_base - gap_t")
    gap_nt: float = param(0.08, unit="t_max", check=">=0", doc="target of the other neurons: t_base + gap_nt; t_base <= t_max - gap_nt")
    threshold_init: float = param(0.2, unit="n_in", check=">0", doc="initial threshold of every output neuron, per input (membrane = sum of weights)")
    threshold_min: float = param(0.02, unit="n_in", check=">0", doc="lowest threshold, per input")
    threshold_lr: float = param(0.02, unit="n_in", check=">=0", doc="threshold change per unit of timing error, per input")
    anneal: float = param(0.85, unit="1/epoch", check="prob", doc="learning rates (a_plus, a_minus, threshold_lr) are multiplied by this after each epoch")
    w_init_low: float = param(0.3, unit="1", check="any", doc="initial weights uniform in [w_init_low, w_init_high]")
    w_init_high: float = param(0.7, unit="1", check="any", doc="initial weights uniform in [w_init_low, w_init_high]")
    signed: bool = param(False, check=None, choices=(True, False), doc="weights in [-1, 1] (a differential pair in-situ) instead of [0, 1]")
    complement: bool = param(False, check=None, choices=(True, False), doc="also encode 1 - x for every feature (ON/OFF inputs, 2 F rows)")
    fields: int = param(1, unit="1", check="int>=1", doc="1: latency-code each feature; m >= 3: m Gaussian receptive fields per feature (population code), each latency coded")
    field_beta: float = param(1.5, unit="1", check=">0", doc="receptive-field width sigma = 1 / (field_beta * (fields - 2))")
    input_threshold: float = param(0.01, unit="1", check=">0", doc="latency code: features below this never fire (clip)")

    @classmethod
    def for_dataset(cls, image: bool, n_features: int, **overrides: Any) -> "STDPParams":
        """Input coding tuned here for a kind of dataset (``overrides`` win):

        - images (``image=True``; digits, Fashion-MNIST): ON/OFF coding (``complement=True``), so
          dark pixels carry evidence too - non-negative weights alone cannot inhibit, and
          without it digits stayed near 75-80 % on float weights;
        - tabular features (Iris, breast cancer): Gaussian receptive fields per feature
          (``fields = 12`` for up to 8 features, else 8), the population code the temporal-coding
          SNN literature uses for these datasets; one latency spike per raw feature reached only
          60-80 % on Iris.
        """
        base = dict(complement=True) if image else dict(fields=12 if n_features <= 8 else 8)
        base.update(overrides)
        return cls(**base)

    def _cross_checks(self) -> Iterator[str]:
        if not self.input_threshold < 1:
            yield f"input_threshold={self.input_threshold!r} must be < 1 (features are in [0, 1])"
        if self.threshold_min > self.threshold_init:
            yield f"threshold_min={self.threshold_min!r} must be <= threshold_init={self.threshold_init!r}"
        lo = -1.0 if self.signed else 0.0
        if not lo <= self.w_init_low <= self.w_init_high <= 1.0:
            yield (f"w_init_low={self.w_init_low!r}, w_init_high={self.w_init_high!r} must satisfy "
                   f"{lo:g} <= w_init_low <= w_init_high <= 1 (signed={self.signed!r})")
        if self.gap_nt >= 1:
            yield f"gap_nt={self.gap_nt!r} must be < 1 (a fraction of t_max)"


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _first(times: np.ndarray, memb: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per row, the allowed neuron that fired first; ties (and silence) go to the highest membrane."""
    t = np.where(allowed, times, np.inf)
    cand = allowed & (times == t.min(axis=1, keepdims=True))
    return np.where(cand, memb, -np.inf).argmax(axis=1)


def _teacher(times: np.ndarray, same: np.ndarray, t_max: float, gap_t: float, gap_nt: float):
    fired = times < t_max
    n_fired = fired.sum(axis=1)
    mean = np.where(fired, times, 0.0).sum(axis=1) / np.maximum(n_fired, 1)
    cap = t_max - gap_nt * t_max
    t_base = np.where(n_fired > 0, np.minimum(mean, cap), cap)[:, None]
    t_star = np.where(same, t_base - gap_t * t_max, t_base + gap_nt * t_max)
    return t_star, (times - t_star) / t_max


def _updated(times: np.ndarray, memb: np.ndarray, same: np.ndarray, t_max: float) -> np.ndarray:
    rows = np.arange(times.shape[0])
    target = _first(times, memb, same)
    winner = _first(times, memb, np.ones_like(same))
    mask = np.zeros(times.shape, dtype=bool)
    mask[rows, target] = True
    wrong = ~same[rows, winner] & (times[rows, winner] < t_max)
    mask[rows[wrong], winner[wrong]] = True
    return mask


def teacher(times: Tensor, labels: Tensor, neuron_class: Tensor, num_steps: int, gap_t: float,
            gap_nt: float) -> tuple[Tensor, Tensor]:
    """Target firing times and errors of the S2-STDP teacher (module docstring).

    Args:
        times: output first-spike times ``[B, n_out]`` in steps (``num_steps`` when silent).
        labels: ``[B]`` class indices; neuron_class: ``[n_out]`` the class of each neuron.
        gap_t, gap_nt: gaps as fractions of ``t_max = num_steps``.

    Returns:
        ``(t_target [B, n_out] in steps, e [B, n_out] = (t - t_target) / t_max)``.
    """
    same = _np(neuron_class)[None, :] == _np(labels)[:, None]
    t_star, e = _teacher(_np(times).astype(np.float64), same, float(num_steps), gap_t, gap_nt)
    return (torch.as_tensor(t_star, dtype=times.dtype, device=times.device),
            torch.as_tensor(e, dtype=times.dtype, device=times.device))


def update_targets(times: Tensor, memb: Tensor, labels: Tensor, neuron_class: Tensor, num_steps: int) -> Tensor:
    """Bool ``[B, n_out]``: the neurons an update reaches - the first of the true class to fire
    (highest membrane ``memb`` if none fired, and for ties), and the overall winner when it belongs
    to another class and fired. ``times`` ``[B, n_out]`` in steps (``num_steps`` = silent)."""
    same = _np(neuron_class)[None, :] == _np(labels)[:, None]
    mask = _updated(_np(times).astype(np.float64), _np(memb).astype(np.float64), same, float(num_steps))
    return torch.as_tensor(mask, device=times.device)


class SupervisedSTDP(Method):
    """Supervised STDP with competition groups (S2-STDP), on float weights or in-situ on a crossbar.

    Args:
        n_features: features per sample ``F`` (in [0, 1]; values outside are clipped).
        n_classes: number of classes ``C``; the layer has ``C * neurons_per_class`` neurons.
        params: :class:`STDPParams`; ``**overrides`` change single fields.
        device: ``None`` for the float baseline, or a device preset name (``"srtio3"``,
            ``"ideal"``, ...) or :class:`~memsnn.device_models.DeviceModel` for in-situ learning.
        mapping: in-situ weight mapping: ``"unipolar"`` (default; weights in [0, 1]) or
            ``"differential"`` / ``"reference"`` (weights in [-1, 1]; sets ``signed``).
        scheduler: :class:`~memsnn.learning.scheduler.PulseScheduler` or
            :class:`~memsnn.learning.scheduler.SchedulerParams` (default: stochastic rounding,
            SET-only with refresh for pairs; state-aware column writes on native crossbars,
            nominal rank-1 phases on ``backend="aihwkit"``).
        crossbar_params, periphery: passed to the :class:`~memsnn.crossbar.Crossbar`.
        program: how the initial weights are written (``"write_verify"``, ``"open_loop"``,
            ``"direct"``).
        compensate_drift: in-situ, rescale the membrane input by drift gains
            (:meth:`drift_factor`): ``"column"`` (default, one gain per output neuron),
            ``"global"`` / ``True`` (one gain) or ``False``; the reference is re-read after every
            learning batch.
        torch_device: where tensors live; seed: initial weights and the crossbar's generator.

    Defaults and where they come from (science.md 3.2; Goupy et al. 2024 for MNIST features):

    - ``a_plus = 0.05`` (top of the published 0.005-0.05 range), ``a_minus = -0.05`` (published
      -0.05 to -0.1); weights in ``[0, 1]`` (published).
    - ``gap_t = gap_nt = 0.08`` (t_max units): twice the published 0.03-0.04 - tuned here; with
      ``num_steps = 32`` a gap is 2.6 steps, and at 0.04 (1.3 steps) ties in whole-step firing
      times left the teacher too weak on digits (about 5 points lower).
    - learning rates annealed x0.85 per epoch - tuned here for 8-15 epochs on small datasets
      (published x0.98 is for many epochs on MNIST); with x0.98 accuracy kept oscillating by
      +-3 points between epochs on Iris and breast cancer.
    - per-neuron threshold adaptation as the competition (published); ``threshold_lr``,
      ``threshold_init``, ``threshold_min`` tuned here (not published for these datasets).
    - ``neurons_per_class = 3``, ``num_steps = 32``: tuned here. Input coding per dataset kind:
      :meth:`STDPParams.for_dataset`.
    """

    name = "stdp"

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        params: STDPParams | None = None,
        *,
        device: str | DeviceModel | None = None,
        mapping: str | None = None,
        scheduler: PulseScheduler | SchedulerParams | None = None,
        crossbar_params: CrossbarParams | None = None,
        periphery: PeripheryParams | None = None,
        program: str = "write_verify",
        compensate_drift: bool | str = "column",
        torch_device: torch.device | str = "cpu",
        seed: int = 0,
        backend: str = "native",
        **overrides: Any,
    ):
        for nm, v, lo in (("n_features", n_features, 1), ("n_classes", n_classes, 2)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{nm}={v!r} must be an integer >= {lo}")
        if mapping is not None and "signed" not in overrides and (params is None or getattr(params, "signed", None) != (mapping != "unipolar")):
            overrides["signed"] = mapping != "unipolar"  # before validation: w_init may be signed
        params = STDPParams.resolve(params, overrides)
        if mapping is not None:
            if mapping not in ("unipolar", "differential", "reference"):
                raise ValueError(f"mapping={mapping!r} is not allowed: use 'unipolar', 'differential' or 'reference'")
            if device is None:
                raise ValueError(f"mapping={mapping!r} needs an in-situ device (device=None is the float baseline)")
            if (mapping != "unipolar") != params.signed:
                raise ValueError(f"mapping={mapping!r} holds {'signed' if mapping != 'unipolar' else 'non-negative'} "
                                 f"weights but signed={params.signed!r}")
        self.params = p = params
        self.n_features, self.n_classes = n_features, n_classes
        self.n_in = n_features * (2 if p.complement else 1) * p.fields
        self.n_out = n_classes * p.neurons_per_class
        self.torch_device = torch.device(torch_device)
        self.seconds_per_sample = 1e-3 * p.num_steps  # 1 ms per time step
        self.neuron_class = torch.arange(n_classes, device=self.torch_device).repeat_interleave(p.neurons_per_class)
        self.lr = 1.0  # annealing factor
        self.epochs_done = 0
        self.w_bounds = (-1.0 if p.signed else 0.0, 1.0)
        self.lif = LIFParams(beta=1.0, threshold=p.threshold_min * self.n_in, reset="zero",
                             refractory=p.num_steps, adapt_increment=0.0, adapt_decay=1.0)
        self.theta = torch.full((self.n_out,), p.threshold_init * self.n_in, device=self.torch_device)
        gen = torch.Generator().manual_seed(seed)
        w0 = p.w_init_low + (p.w_init_high - p.w_init_low) * torch.rand(self.n_in, self.n_out, generator=gen)
        self.xbar: Crossbar | None = None
        self.scheduler: PulseScheduler | None = None
        self.compensate_drift = compensate_drift
        self._drift: CrossbarLinear | None = None  # holds the drift reference in-situ
        if device is None:
            self.w = w0.to(self.torch_device)
            self.name = "stdp-float"
        else:
            model = make_device(device) if isinstance(device, str) else device
            if not isinstance(model, DeviceModel):
                raise TypeError(f"device must be None, a preset name or a DeviceModel, got {type(device).__name__}")
            mp = mapping or ("differential" if p.signed else "unipolar")
            xp = (crossbar_params or CrossbarParams()).replace(mapping=mp)
            from ..interop.aihwkit_backend import make_crossbar

            self.xbar = make_crossbar(self.n_in, self.n_out, model, backend=backend, params=xp, periphery=periphery,
                                      device=self.torch_device, seed=seed)
            self.xbar.program(w0.to(self.torch_device), method=program)
            self._drift = CrossbarLinear(self.xbar, compensate_drift=compensate_drift)
            self.calibrate_drift()
            if isinstance(scheduler, PulseScheduler):
                self.scheduler = scheduler
            else:
                self.scheduler = PulseScheduler(scheduler or default_scheduler(backend))
            self.w = None
            self.name = f"stdp-{model.preset}"

    # ------------------------------------------------------------------------------------------------
    # forward
    # ------------------------------------------------------------------------------------------------
    def crossbars(self) -> list[Crossbar]:
        return [] if self.xbar is None else [self.xbar]

    def weights(self) -> Tensor:
        """The weights ``[n_in, n_out]`` (noise-free read of the crossbar in-situ)."""
        return self.w.clone() if self.xbar is None else self.xbar.weights()

    def set_weights(self, w: Tensor, *, method: str = "write_verify") -> None:
        """Replace the weights with ``w`` ``[n_in, n_out]`` (clipped to the weight range); in-situ
        they are programmed onto the crossbar with ``method`` (pulses counted unless ``"direct"``)."""
        if not isinstance(w, torch.Tensor) or tuple(w.shape) != (self.n_in, self.n_out):
            raise ValueError(f"w must be a tensor of shape {(self.n_in, self.n_out)} = [n_in, n_out], got {tuple(getattr(w, 'shape', ()))}")
        w = w.to(self.torch_device, torch.float32).clamp(*self.w_bounds)
        if self.xbar is None:
            self.w = w.clone()
        else:
            self.xbar.program(w.to(self.xbar.dtype), method=method)
            self.calibrate_drift()

    def encode(self, x: Tensor) -> Tensor:
        """Input spikes ``[T, B, n_in]`` for features ``x`` ``[B, F]`` (clipped to [0, 1]); perturbed
        only while :func:`~memsnn.learning.loop.accuracy` evaluates with ``perturb``."""
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"x must be a tensor [B, {self.n_features}], got {tuple(getattr(x, 'shape', ()))}")
        x = x.to(self.torch_device, torch.float32).clamp(0.0, 1.0)
        if self.params.complement:
            x = torch.cat((x, 1.0 - x), dim=1)
        m = self.params.fields
        if m > 1:
            k = torch.arange(1, m + 1, device=x.device, dtype=x.dtype)
            mu = (2 * k - 3) / 2 / max(m - 2, 1)
            sigma = 1.0 / (self.params.field_beta * max(m - 2, 1))
            x = torch.exp(-((x.unsqueeze(-1) - mu) ** 2) / (2 * sigma**2)).flatten(1)
        return self.perturb_spikes(latency(x, self.params.num_steps, threshold=self.params.input_threshold,
                                           linear=True, normalize=True, clip=True))

    def _currents(self, spikes: Tensor) -> Tensor:
        """Synaptic currents ``[T, B, n_out]`` for input spikes ``[T, B, n_in]``: a matrix product on
        float weights, or one crossbar read per time step (all ``T * B`` steps in one VMM call)."""
        T, B, n = spikes.shape
        if self.xbar is None:
            return spikes @ self.w
        flat = spikes.reshape(T * B, n).to(self.xbar.dtype)
        cur = self.xbar.vmm(flat, binary=True).reshape(T, B, self.n_out).to(torch.float32)
        return cur * self.drift_factor()

    def calibrate_drift(self) -> None:
        """Take the drift reference now (done after every learning batch in-situ)."""
        if self._drift is not None:
            self._drift.calibrate_drift()

    def drift_factor(self) -> float | Tensor:
        """Drift compensation (:class:`~memsnn.crossbar.layers.CrossbarLinear`'s): the reference
        read after the last learning batch over the same read now, a digital gain on the membrane
        input that undoes the drift since then (1.0 on float weights) - one per output neuron
        (``[n_out]``, default) or one for the layer. The thresholds are digital and do not drift,
        so without it a day of drift (conductances about -35 % on srtio3) silences the layer. Per
        neuron, because the winner-take-all readout is sensitive to drift that differs between
        columns: each column was last written at a different time and devices drift from their
        own last pulse (digits, 2 epochs: 72 % after training; after 1 h 43 % with one global
        gain, 69 % with per-column gains)."""
        return 1.0 if self._drift is None else self._drift.drift_factor()

    def _theta_offset(self) -> Tensor:
        """Per-neuron threshold as the LIF state's constant offset ``a`` above the base threshold."""
        return (self.theta - self.lif.threshold).clamp(min=0.0)

    def _run(self, spikes: Tensor) -> tuple[Tensor, Tensor]:
        """Output first-spike times ``[B, n_out]`` (steps; ``T`` silent) and end membranes
        (integrated input without reset, minus the threshold) for input spikes ``[T, B, n_in]``."""
        cur = self._currents(spikes)
        B = cur.shape[1]
        a = self._theta_offset().to(cur.dtype).expand(B, self.n_out).contiguous()
        state = LIFState(torch.zeros_like(cur[0]), torch.zeros(B, self.n_out, dtype=torch.int32, device=cur.device), a)
        # beta = 1 and refractory >= T: a step without input current changes nothing (the membrane
        # holds, nobody can cross its fixed threshold), so only steps with some current are run
        active = (cur != 0).flatten(1).any(dim=1).nonzero().flatten().tolist()
        times = torch.full((B, self.n_out), float(cur.shape[0]), device=cur.device, dtype=cur.dtype)
        for t in active:
            s, state = lif_step(cur[t], state, self.lif, check=False)
            times = torch.where((s > 0) & (times > t), torch.full_like(times, float(t)), times)
        return times, cur.cumsum(dim=0)[-1] - (self.lif.threshold + a)

    def _run_one(self, spikes: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """The same dynamics as :meth:`_run` for one sample (``[T, n_in]``), in closed form - an IF
        neuron with ``beta = 1`` that fires once fires at the first step where its integrated input
        exceeds ``threshold + a`` (the test suite checks the two agree). Returns numpy times and
        end membranes ``[n_out]``."""
        cur = self._currents(spikes.unsqueeze(1))[:, 0]  # [T, n_out]
        v = cur.cumsum(dim=0)
        theta = self.lif.threshold + self._theta_offset()  # the threshold lif_step compares with
        over = v > theta
        fired = over.any(dim=0)
        T = float(cur.shape[0])
        times = torch.where(fired, over.to(torch.uint8).argmax(dim=0).to(v.dtype), torch.full_like(theta, T))
        both = torch.stack((times, v[-1] - theta)).cpu().numpy().astype(np.float64)
        return both[0], both[1]

    @torch.no_grad()
    def firing_times(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Output first-spike times ``[B, n_out]`` in steps (``num_steps`` when silent)."""
        return self._run(self.encode(x))[0]

    @torch.no_grad()
    def predict(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        times, memb = self._run(self.encode(x))
        allowed = np.ones(tuple(times.shape), dtype=bool)
        first = _first(_np(times).astype(np.float64), _np(memb).astype(np.float64), allowed)
        return self.neuron_class[torch.as_tensor(first, device=self.torch_device)]

    # ------------------------------------------------------------------------------------------------
    # learning
    # ------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def train_batch(self, x: Tensor, y: Tensor, generator: torch.Generator | None = None) -> StepStats:
        """Online S2-STDP on the samples of ``x`` ``[B, F]`` one after another (labels ``y`` ``[B]``)."""
        p = self.params
        if not isinstance(y, torch.Tensor) or y.dim() != 1 or len(x) != len(y):
            raise ValueError(f"y must be a 1-D tensor with one label per sample of x ({len(x)}), got {tuple(getattr(y, 'shape', ()))}")
        labels = _np(y).astype(np.int64)
        if len(labels) and (labels.min() < 0 or labels.max() >= self.n_classes):
            raise ValueError(f"labels must be in 0..{self.n_classes - 1}, got {labels.min()}..{labels.max()}")
        spikes = self.encode(x)  # [T, B, n_in]
        T = float(p.num_steps)
        t_in = _np(first_spike_times(spikes)).astype(np.float64)  # [B, n_in], T = never fired
        cls = _np(self.neuron_class)
        gen = generator if (self.xbar is not None and isinstance(generator, torch.Generator)
                            and generator.device.type == self.xbar.device.type) else None
        st = StepStats(seen=len(labels))
        loss = 0.0
        theta_min = p.threshold_min * self.n_in
        for b, label in enumerate(labels):
            times, memb = self._run_one(spikes[:, b])
            same = (cls == label)[None, :]
            st.correct += int(cls[_first(times[None], memb[None], np.ones_like(same))[0]] == label)
            _, e = _teacher(times[None], same, T, p.gap_t, p.gap_nt)
            upd = _updated(times[None], memb[None], same, T)[0]
            idx = np.flatnonzero(upd)
            e = e[0, idx]
            loss += float(np.mean(e**2))
            # causal inputs of neuron j: fired at or before t_j (input spikes of step t_j count)
            causal = (t_in[b][None, :] <= times[idx][:, None]) & (t_in[b] < T)[None, :]  # [k, n_in]
            d_causal, d_other = self.lr * p.a_plus * e, self.lr * p.a_minus * e  # [k]
            idx_t = torch.as_tensor(idx, device=self.torch_device)
            theta = self.theta[idx_t] - torch.as_tensor(self.lr * p.threshold_lr * self.n_in * e, dtype=self.theta.dtype, device=self.torch_device)
            self.theta[idx_t] = theta.clamp(min=theta_min)
            dw_k = np.where(causal, d_causal[:, None], d_other[:, None]).T  # [n_in, k]
            if self.xbar is None:
                w = self.w[:, idx_t] + torch.as_tensor(dw_k, dtype=self.w.dtype, device=self.torch_device)
                self.w[:, idx_t] = w.clamp(*self.w_bounds)
                continue
            k = len(idx)
            if self.scheduler.params.step != "nominal":
                # each device its own count from its own step: one column write per updated neuron
                # (the rows of a column take causal or other changes - a dense column, not rank-1)
                dw = torch.zeros(self.n_in, self.n_out, dtype=self.xbar.dtype, device=self.torch_device)
                dw[:, idx_t] = torch.as_tensor(dw_k, dtype=dw.dtype, device=self.torch_device)
                us = self.scheduler.update(self.xbar, dw, generator=gen)
            else:
                rows = np.concatenate((causal, ~causal)).astype(np.int32)  # [2k, n_in]: two phases per neuron
                cols = np.zeros((2 * k, self.n_out), dtype=np.float32)
                cols[np.arange(k), idx] = d_causal
                cols[k + np.arange(k), idx] = d_other
                us = self.scheduler.update_rank1(self.xbar, torch.as_tensor(rows, device=self.torch_device),
                                                 torch.as_tensor(cols, device=self.torch_device), generator=gen)
            st.pulses += us.pulses
            st.energy_J += us.energy_J
            st.phases += us.phases
        st.loss = loss / max(len(labels), 1)
        self.calibrate_drift()
        return st

    def on_epoch_end(self, epoch: int) -> None:
        self.epochs_done += 1
        self.lr *= self.params.anneal

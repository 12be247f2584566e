"""Heterogeneous synapses (HetSyn): one time constant per synapse, integration in the current.

Model (Deng et al., arXiv 2508.11644; science.md section 5), written from the paper's equations.
Input spikes ``x_i(t)``, synapse decay ``rho_ji = exp(-dt / tau_ji)``, reset decay
``rho_r = exp(-dt / tau_r)``::

    I_ji(t) = rho_ji * I_ji(t-1) + w_ji * x_i(t)        per-synapse current
    R_j(t)  = rho_r * R_j(t-1) + theta * z_j(t-1)        decaying reset current
    v_j(t)  = sum_i I_ji(t) - R_j(t)                     no membrane leak of its own
    z_j(t)  = H(v_j(t) - theta)                          surrogate gradient backward

``R`` uses the detached spike by default (``detach_reset``, as :mod:`.neurons` does), so gradients
flow through the currents and the spike output, not through the reset.

Special cases (each is a test in ``tests/crossbar/test_hetsyn.py``):

- ``tau_ji = tau_j`` for all ``i`` of neuron ``j``: ``sum_i I_ji = I_j`` with
  ``I_j(t) = rho_j I_j(t-1) + sum_i w_ji x_i(t)``, one current per neuron - neuron-level
  heterogeneity ("HomNeu", ``granularity="neuron"``);
- all ``tau`` equal and ``tau_r = tau``: ``v(t) = rho v(t-1) + W x(t) - theta z(t-1)``, a vanilla
  LIF with membrane decay ``rho`` and reset by subtraction (``granularity="layer"``);
- all ``tau`` equal and ``tau_r != tau``: ``v = I - R`` splits into a leaky membrane without reset
  (``I``) and a threshold ``theta + R`` that jumps by ``theta`` per spike and relaxes with
  ``tau_r`` - the threshold-adaptation configuration; it equals :class:`~.neurons.LIF` with
  ``beta = rho``, ``reset="none"``, ``adapt_increment = threshold = theta``, ``adapt_decay = rho_r``
  (our reading of the paper's statement that HetSyn contains an adaptive-threshold neuron).

Forms of the per-synapse current (``form=``), all exact:

- ``"naive"``: the per-synapse state ``[B, out, in]`` stepped in time (the public reference code's
  formulation; memory ``T * B * out * in`` for autograd). :func:`hetsyn_step` is its pure step.
- ``"exact"``: any ``tau`` per synapse without per-synapse state: the current is a causal
  convolution of the input with the kernel ``w_ji rho_ji**d`` (``d = 0 .. T-1``), computed with an
  FFT of length ``2T`` and the closed-form transform of the truncated geometric kernel
  ``w (1 - (rho e^{-i omega})**T) / (1 - rho e^{-i omega})``: ``T + 1`` complex matrix products,
  memory ``(T + 1) * out * in`` independent of the batch. Exact up to FFT round-off (about 1e-6
  relative in float32, 1e-14 in float64).
- ``"binned"``: the synapses' ``tau`` take ``K`` values ``tau_k`` (bins). Then
  ``I_j(t) = sum_k h_k(t) @ (W * M_k)^T`` with ``K`` row traces ``h_k(t) = rho_k h_k(t-1) + x(t)``
  (``[B, K, in]``) and ``M_k`` the 0/1 mask of the synapses in bin ``k``: ``K`` matrix products.
  Exact when ``tau`` takes ``K`` values; what hardware builds (``K`` sub-arrays, one leaky
  integrator per input row and bin, :mod:`.hetsyn_memristive`). The layer computes the same sum
  with the filters moved behind the products (``sum_k filter_k(x @ (W * M_k)^T)``, linear and
  time-invariant, so the order does not matter): one GEMM ``[T*B, in] @ [in, K*out]`` forward and
  one ``[in, T*B] @ [T*B, 2K*out]`` backward for the weight and tau gradients together
  (:class:`_BinnedCurrent`); working memory about ``3 * T * B * K * out`` floats, nothing
  per synapse. Compute: ``3K`` GEMMs of a plain layer's size with learnable tau (``2K`` frozen)
  against a plain layer's 2: ``benchmarks/hetsyn_memory.py`` measures about ``1.3K`` times a
  plain LIF layer's time on a CPU (784 x 512, B = 128, T = 50; benchmarks/README.md).

Learnable ``tau`` in the binned form: each synapse keeps a continuous latent ``tau_ji``
(``nn.Parameter``); the forward pass uses the bin whose centre is nearest in ``log tau``
(boundaries at the geometric means of neighbouring centres), so a synapse *moves to another bin
when its latent tau crosses a boundary* after an optimiser step. The backward pass is a
straight-through rule: the latent ``tau_ji`` gets the exact gradient of the loss with respect to
that synapse's own decay, evaluated at its bin's decay::

    dL/dtau_ji = w_ji * sum_t dL/dI_j(t) * s_{k(ji),i}(t) * drho/dtau |_{tau_k},
    s_k(t) = rho_k s_k(t-1) + h_k(t-1)      (= dh_k/drho_k)

which equals the gradient of the ``exact`` form at ``tau = tau_k`` (tested). Bin centres are fixed
(hardware: the integrators' time constants are set at design time); they are log-spaced over
``[tau_min, tau_max]`` unless given.

``tau`` is clamped to ``[tau_min, tau_max]`` in the forward pass and :meth:`HetSynLinear.project_`
puts the parameters back into that range (call it after each optimiser step). Initialisation
(``tau_init``): ``"log_uniform"`` in ``[tau_init_low, tau_init_high]`` (a spread of time scales
with equal weight per decade; the paper does not fix one in a reachable form, so this is our
documented choice) or ``"constant"`` (``tau_init_low``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator, NamedTuple

import torch
from torch import nn

from .._random import as_generator
from ..params import Params, param
from .surrogate import SURROGATES, Surrogate, get_surrogate

__all__ = [
    "HetSynParams",
    "HetSynState",
    "BinnedState",
    "hetsyn_step",
    "hetsyn_binned_step",
    "reset_current_step",
    "binned_traces",
    "exact_current",
    "assign_bins",
    "HetSynLinear",
    "FORMS",
    "GRANULARITIES",
]

Tensor = torch.Tensor

FORMS = ("binned", "exact", "naive")
GRANULARITIES = ("synapse", "neuron", "layer")
TAU_INITS = ("log_uniform", "constant")


@dataclass(frozen=True)
class HetSynParams(Params):
    """Parameters of a HetSyn layer (SI units; equations in the module docstring)."""

    _owner = "HetSyn"

    threshold: float = param(1.0, unit="current units", check=">0", doc="firing threshold theta (also the reset current's jump)")
    dt: float = param(1e-3, unit="s", check=">0", doc="time step")
    tau_r: float = param(20e-3, unit="s", check=">0", doc="decay time of the reset current R")
    tau_min: float = param(1e-3, unit="s", check=">0", doc="lower clamp of the synaptic time constants")
    tau_max: float = param(1.0, unit="s", check=">0", doc="upper clamp of the synaptic time constants")
    tau_init: str = param("log_uniform", check=None, choices=TAU_INITS, doc="initial distribution of tau")
    tau_init_low: float = param(5e-3, unit="s", check=">0", doc="low end of the initial tau (the value of 'constant')")
    tau_init_high: float = param(0.2, unit="s", check=">0", doc="high end of the initial tau ('log_uniform')")
    detach_reset: bool = param(True, check=None, choices=(True, False), doc="reset current uses the detached spike")
    surrogate: str = param("atan", check=None, choices=tuple(SURROGATES), doc="surrogate gradient of the spike")
    surrogate_slope: float = param(2.0, unit="1", check=">0", doc="surrogate shape parameter")

    @property
    def rho_r(self) -> float:
        return math.exp(-self.dt / self.tau_r)

    def spike_function(self) -> Surrogate:
        return _cached_surrogate(self.surrogate, float(self.surrogate_slope))

    def _cross_checks(self) -> Iterator[str]:
        if not self.tau_min < self.tau_max:
            yield f"tau_min={self.tau_min!r} must be < tau_max={self.tau_max!r} (s)"
        if not self.tau_init_low <= self.tau_init_high:
            yield f"tau_init_low={self.tau_init_low!r} must be <= tau_init_high={self.tau_init_high!r} (s)"
        for name in ("tau_init_low", "tau_init_high"):
            v = getattr(self, name)
            if not self.tau_min <= v <= self.tau_max:
                yield f"{name}={v!r} must lie in [tau_min, tau_max] = [{self.tau_min!r}, {self.tau_max!r}] s"


@lru_cache(maxsize=64)
def _cached_surrogate(name: str, slope: float) -> Surrogate:
    return get_surrogate(name, slope)


def decay(tau: Tensor, dt: float) -> Tensor:
    """``rho = exp(-dt / tau)`` (``tau``, ``dt`` in seconds)."""
    return torch.exp(-dt / tau)


# ------------------------------------------------------------------------------------------------
# pure step functions
# ------------------------------------------------------------------------------------------------
class HetSynState(NamedTuple):
    """State of the per-synapse (naive) form: ``I`` ``[B, out, in]``, ``R`` and ``z`` ``[B, out]``."""

    I: Tensor
    R: Tensor
    z: Tensor


class BinnedState(NamedTuple):
    """State of the binned form: row traces ``h`` ``[B, K, in]``, ``R`` and ``z`` ``[B, out]``."""

    h: Tensor
    R: Tensor
    z: Tensor


def reset_current_step(current: Tensor, R: Tensor, z: Tensor, p: HetSynParams) -> tuple[Tensor, Tensor, Tensor]:
    """The neuron part of one step: ``current`` = ``sum_i I_ji(t)`` ``[B, out]``; ``R``, ``z`` of the
    step before. Returns ``(z_new, v, R_new)``."""
    z_prev = z.detach() if p.detach_reset else z
    R_new = p.rho_r * R + p.threshold * z_prev
    v = current - R_new
    return p.spike_function()(v - p.threshold), v, R_new


def hetsyn_step(x: Tensor, state: HetSynState | None, weight: Tensor, rho: Tensor,
                p: HetSynParams) -> tuple[Tensor, Tensor, HetSynState]:
    """One step of the per-synapse form.

    Args:
        x: input spikes ``[B, in]``.
        state: the state before the step (None: at rest).
        weight: ``[out, in]`` (``nn.Linear`` orientation); rho: ``[out, in]`` decays (broadcastable).
        p: parameters.

    Returns:
        ``(z [B, out], v [B, out], new_state)``.
    """
    B, out = x.shape[0], weight.shape[0]
    if state is None:
        state = HetSynState(x.new_zeros(B, out, x.shape[1]), x.new_zeros(B, out), x.new_zeros(B, out))
    I = rho * state.I + weight * x[:, None, :]
    z, v, R = reset_current_step(I.sum(-1), state.R, state.z, p)
    return z, v, HetSynState(I, R, z)


def hetsyn_binned_step(x: Tensor, state: BinnedState | None, weight_bins: Tensor, rho_bins: Tensor,
                       p: HetSynParams) -> tuple[Tensor, Tensor, BinnedState]:
    """One step of the binned form.

    Args:
        x: input spikes ``[B, in]``.
        weight_bins: ``[K, in, out]`` = ``(W * M_k)^T`` per bin; rho_bins: ``[K]`` bin decays.

    Returns:
        ``(z [B, out], v [B, out], new_state)``.
    """
    K, n_in, out = weight_bins.shape
    B = x.shape[0]
    if state is None:
        state = BinnedState(x.new_zeros(B, K, n_in), x.new_zeros(B, out), x.new_zeros(B, out))
    h = rho_bins[None, :, None] * state.h + x[:, None, :]
    current = h.reshape(B, K * n_in) @ weight_bins.reshape(K * n_in, out)
    z, v, R = reset_current_step(current, state.R, state.z, p)
    return z, v, BinnedState(h, R, z)


# ------------------------------------------------------------------------------------------------
# whole-sequence currents
# ------------------------------------------------------------------------------------------------
def _scan_(y: Tensor, rho: Tensor) -> Tensor:
    """In place along dim 0: ``y[t] = rho * y[t-1] + y[t]`` (``rho`` broadcasts over ``y[t]``)."""
    for t in range(1, y.shape[0]):
        y[t].addcmul_(y[t - 1], rho)
    return y


def binned_traces(x: Tensor, rho_bins: Tensor) -> Tensor:
    """Row traces ``h_k(t) = rho_k h_k(t-1) + x(t)`` for ``x`` ``[T, B, in]``: ``[T, B, K, in]``.

    Without autograd the traces are written in place into one preallocated tensor (one fused
    multiply-add per step); with a gradient through ``x`` or ``rho_bins`` it steps out of place.
    """
    T, B, n_in = x.shape
    K = rho_bins.shape[0]
    r = rho_bins[None, :, None]
    if torch.is_grad_enabled() and (x.requires_grad or rho_bins.requires_grad):
        out, h = [], x.new_zeros(B, K, n_in)
        for t in range(T):
            h = r * h + x[t][:, None, :]
            out.append(h)
        return torch.stack(out) if out else x.new_zeros(0, B, K, n_in)
    return _scan_(x[:, :, None, :].expand(T, B, K, n_in).clone(), r.to(x.dtype))


def exact_current(x: Tensor, weight: Tensor, rho: Tensor) -> Tensor:
    """``sum_i I_ji(t)`` for any per-synapse ``rho`` ``[out, in]``, by FFT (module docstring).

    ``x`` ``[T, B, in]``, ``weight`` ``[out, in]`` -> ``[T, B, out]``.
    """
    T = x.shape[0]
    n = 2 * T
    X = torch.fft.rfft(x, n=n, dim=0)  # [F, B, in]
    F = X.shape[0]
    f = torch.arange(F, device=x.device, dtype=torch.float64)
    omega = (2 * math.pi / n) * f
    # with q = rho e^{-i omega}: q**T = rho**T (-1)**f (omega T = pi f), and 1 / (1 - q) =
    # (1 - rho cos - i rho sin) / |1 - q|**2 in real arithmetic, written with s2 = sin(omega/2)**2 as
    # 1 - rho cos = (1 - rho) + 2 rho s2, |1 - q|**2 = (1 - rho)**2 + 4 rho s2 (no cancellation
    # when rho is near 1 and omega near 0)
    s2 = (torch.sin(omega / 2) ** 2).to(x.dtype)[:, None, None]
    neg_sin = (-torch.sin(omega)).to(x.dtype)[:, None, None]
    sign = (1 - 2 * (f % 2)).to(x.dtype)[:, None, None]
    one_minus = 1 - rho
    num = weight * (1 - sign * rho ** T) / (one_minus * one_minus + (4 * s2) * rho)  # [F, out, in]
    kernel = torch.complex(num * (one_minus + (2 * s2) * rho), (num * rho) * neg_sin)
    Y = X @ kernel.transpose(1, 2)  # [F, B, out]
    return torch.fft.irfft(Y, n=n, dim=0)[:T]


def assign_bins(tau: Tensor, tau_bins: Tensor) -> Tensor:
    """Index of the bin nearest to each ``tau`` in log space (``tau_bins`` ascending ``[K]``)."""
    log_b = torch.log(tau_bins)
    edges = 0.5 * (log_b[1:] + log_b[:-1])
    return torch.bucketize(torch.log(tau.detach()), edges)


class _BinnedCurrent(torch.autograd.Function):
    """The binned form's summed current ``[T, B, out]`` with a hand-written backward.

    Forward: one GEMM ``y = x @ [(W M_1)^T | ... | (W M_K)^T]`` (``[T*B, K*out]``), then the bin
    filters on the outputs, ``h_k(t) = rho_k h_k(t-1) + y_k(t)``, and ``sum_k h_k`` - the same sum
    as filtering the input rows first (module docstring), with traces of width ``K*out`` instead of
    ``K*in`` and nothing saved but ``x``. Backward, for ``g = dL/dI`` ``[T, B, out]``:

        a_k(t) = rho_k a_k(t+1) + g(t)            dL/dW_ji  = sum_{t,b} a_{k(ji),j} x_i
        c_k(t) = rho_k c_k(t+1) + a_k(t+1)        dL/drho_ji = w_ji sum_{t,b} c_{k(ji),j} x_i
        dL/dx = a @ [(W M_k)^T]_k^T

    (``c_k`` is the adjoint of the sensitivity trace ``s_k = dh_k / drho_k``), so the weight and the
    straight-through tau gradient come from one GEMM ``x^T @ [a | c]`` over all ``T*B`` rows; the
    tau gradient, ``dL/drho * drho/dtau`` at the bin's ``tau_k``, is skipped when tau needs none.
    """

    @staticmethod
    def forward(ctx, x, weight, tau, index, rho_bins, tau_bins, dt):  # type: ignore[override]
        T, B, n_in = x.shape
        K, out = rho_bins.shape[0], weight.shape[0]
        masks = index[None] == torch.arange(K, device=index.device)[:, None, None]  # [K, out, in]
        w_cat = (weight[None] * masks).permute(2, 0, 1).reshape(n_in, K * out)  # column k*out + j
        y = (x.reshape(T * B, n_in) @ w_cat).reshape(T, B, K, out)
        current = _scan_(y, rho_bins[:, None]).sum(2)
        ctx.save_for_backward(x, weight, index, rho_bins, tau_bins, w_cat)
        ctx.dt = dt
        return current

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        x, weight, index, rho_bins, tau_bins, w_cat = ctx.saved_tensors
        need_x, need_w, need_tau = ctx.needs_input_grad[:3]
        T, B, n_in = x.shape
        K, out = rho_bins.shape[0], weight.shape[0]
        n_adj = 2 if need_tau else 1
        r = rho_bins[:, None]
        adj = grad.new_empty(T, B, n_adj, K, out)  # [:, :, 0, k] = a_k, [:, :, 1, k] = c_k
        a = adj[:, :, 0]
        g = grad[:, :, None]
        a[-1].copy_(g[-1].expand(B, K, out))
        for t in range(T - 2, -1, -1):
            torch.addcmul(g[t], a[t + 1], r, out=a[t])
        if need_tau:
            c = adj[:, :, 1]
            c[-1].zero_()
            for t in range(T - 2, -1, -1):
                torch.addcmul(a[t + 1], c[t + 1], r, out=c[t])
        g_x = g_w = g_tau = None
        if need_w or need_tau:
            G = (x.reshape(T * B, n_in).t() @ adj.reshape(T * B, n_adj * K * out)).reshape(n_in, n_adj, K, out)
            G = G.permute(1, 2, 3, 0)  # [n_adj, K, out, in]
            if need_w:
                g_w = torch.gather(G[0], 0, index[None]).squeeze(0)
            if need_tau:
                rho_syn, tau_syn = rho_bins[index], tau_bins[index]
                g_rho = torch.gather(G[1], 0, index[None]).squeeze(0) * weight
                g_tau = g_rho * rho_syn * ctx.dt / tau_syn ** 2
        if need_x:
            g_x = (a.reshape(T * B, K * out) @ w_cat.t()).reshape(T, B, n_in)
        return g_x, g_w, g_tau, None, None, None, None


class _LeakyFilter(torch.autograd.Function):
    """``h(t) = rho h(t-1) + y(t)`` over ``y`` ``[T, B, N]`` (``rho`` ``[N]`` or ``[1]``), in place
    forward; backward ``a(t) = rho a(t+1) + g(t)`` (= dL/dy) and ``dL/drho = sum_t a(t) h(t-1)``."""

    @staticmethod
    def forward(ctx, y, rho):  # type: ignore[override]
        h = _scan_(y.detach().clone(), rho)
        ctx.save_for_backward(h, rho)
        return h

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        h, rho = ctx.saved_tensors
        a = torch.empty_like(grad)
        a[-1].copy_(grad[-1])
        for t in range(grad.shape[0] - 2, -1, -1):
            torch.addcmul(grad[t], a[t + 1], rho, out=a[t])
        g_rho = None
        if ctx.needs_input_grad[1]:
            g_rho = (a[1:] * h[:-1]).sum_to_size(rho.shape) if grad.shape[0] > 1 else torch.zeros_like(rho)
        return a, g_rho


def _reset_currents(current: Tensor, p: HetSynParams) -> Tensor:
    """``R`` ``[T, B, out]`` of the feed-forward layer with the detached reset, without autograd:
    ``R(t) = rho_r R(t-1) + theta z(t-1)``, ``z(t) = H(I(t) - R(t) - theta)`` - the same float
    operations as :func:`reset_current_step`, so ``z`` and ``v = I - R`` come out bitwise equal."""
    with torch.no_grad():
        current = current.detach()
        R = torch.zeros_like(current)
        z = torch.zeros_like(current[0])
        v = torch.empty_like(current[0])
        for t in range(current.shape[0]):
            if t > 0:
                torch.mul(R[t - 1], p.rho_r, out=R[t]).add_(z, alpha=p.threshold)
            torch.sub(current[t], R[t], out=v)
            torch.gt(v, p.threshold, out=z)  # = (v - theta > 0): x - y == 0 only if x == y
    return R


# ------------------------------------------------------------------------------------------------
# the module
# ------------------------------------------------------------------------------------------------
class HetSynLinear(nn.Module):
    """A layer of HetSyn neurons fed by ``in_features`` inputs (optionally recurrent).

    Args:
        in_features, out_features: sizes.
        params: :class:`HetSynParams` (None: defaults); ``**overrides`` change its fields.
        form: ``"binned"`` (default), ``"exact"`` or ``"naive"`` (module docstring). Only used with
            ``granularity="synapse"``; the other granularities have one current per neuron.
        granularity: ``"synapse"`` (one tau per synapse, ``[out, in]``), ``"neuron"`` (one per
            neuron, ``[out, 1]``: HomNeu) or ``"layer"`` (one tau: LIF).
        n_bins: ``K`` of the binned form; ``tau_bins``: explicit bin centres (s, ascending), else
            ``K`` log-spaced over ``[tau_min, tau_max]``.
        recurrent: add recurrent synapses ``[out, out]`` with their own tau (same granularity and
            form; ``"exact"`` falls back to the per-synapse state for them, stepping in time).
        learn_tau: make tau an ``nn.Parameter`` (BPTT); else a buffer.
        weight_gain: the weights start uniform in ``+-weight_gain / sqrt(in_features)``.
        generator: torch.Generator or seed for the initial weights and taus.

    ``forward(x [T, B, in])`` returns ``(z [T, B, out], v [T, B, out])`` (spikes and membrane).
    """

    def __init__(self, in_features: int, out_features: int, params: HetSynParams | None = None, *,
                 form: str = "binned", granularity: str = "synapse", n_bins: int = 4,
                 tau_bins: Any = None, recurrent: bool = False, learn_tau: bool = True,
                 weight_gain: float = 1.0, generator: torch.Generator | int | None = 0,
                 dtype: torch.dtype = torch.float32, **overrides: Any):
        super().__init__()
        errors = []
        for name, v in (("in_features", in_features), ("out_features", out_features), ("n_bins", n_bins)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                errors.append(f"{name}={v!r} must be an integer >= 1")
        if form not in FORMS:
            errors.append(f"form={form!r} is not allowed: use one of {', '.join(map(repr, FORMS))}")
        if granularity not in GRANULARITIES:
            errors.append(f"granularity={granularity!r} is not allowed: use one of {', '.join(map(repr, GRANULARITIES))}")
        if errors:
            raise ValueError("; ".join(errors))
        self.params = HetSynParams.resolve(params, overrides)
        p = self.params
        self.in_features, self.out_features = in_features, out_features
        self.form, self.granularity, self.recurrent = form, granularity, bool(recurrent)
        gen = as_generator(generator, torch.device("cpu"))
        if tau_bins is None:
            tau_bins = torch.logspace(math.log10(p.tau_min), math.log10(p.tau_max), n_bins, dtype=torch.float64)
            tau_bins = tau_bins.clamp(p.tau_min, p.tau_max)  # logspace round-off at the ends
        tau_bins = torch.as_tensor(tau_bins, dtype=torch.float64).flatten()
        if tau_bins.numel() < 1 or bool((tau_bins[1:] <= tau_bins[:-1]).any()) or bool((tau_bins < p.tau_min).any()) \
                or bool((tau_bins > p.tau_max).any()):
            raise ValueError(f"tau_bins={tau_bins.tolist()} must be ascending and inside [tau_min, tau_max] = "
                             f"[{p.tau_min}, {p.tau_max}] s")
        self.register_buffer("tau_bins", tau_bins.to(dtype))
        bound = weight_gain / math.sqrt(in_features)
        self.weight = nn.Parameter((torch.rand(out_features, in_features, generator=gen, dtype=torch.float64) * 2 - 1).mul(bound).to(dtype))
        self._add_tau("tau", (out_features, in_features), gen, dtype, learn_tau)
        if self.recurrent:
            self.weight_rec = nn.Parameter((torch.rand(out_features, out_features, generator=gen, dtype=torch.float64) * 2 - 1)
                                           .mul(weight_gain / math.sqrt(out_features)).to(dtype))
            self._add_tau("tau_rec", (out_features, out_features), gen, dtype, learn_tau)

    def _tau_shape(self, full: tuple[int, int]) -> tuple[int, int]:
        return {"synapse": full, "neuron": (full[0], 1), "layer": (1, 1)}[self.granularity]

    def _add_tau(self, name: str, full: tuple[int, int], gen: torch.Generator, dtype, learn: bool) -> None:
        p = self.params
        shape = self._tau_shape(full)
        if p.tau_init == "constant":
            tau = torch.full(shape, p.tau_init_low, dtype=torch.float64)
        else:
            lo, hi = math.log(p.tau_init_low), math.log(p.tau_init_high)
            tau = torch.exp(lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=torch.float64))
        tau = tau.to(dtype)
        if learn:
            setattr(self, name, nn.Parameter(tau))
        else:
            self.register_buffer(name, tau)

    # -- tau handling -----------------------------------------------------------------------------
    def clamped(self, tau: Tensor) -> Tensor:
        return tau.clamp(self.params.tau_min, self.params.tau_max)

    @torch.no_grad()
    def project_(self) -> None:
        """Put every tau back into ``[tau_min, tau_max]`` (call after an optimiser step)."""
        for name in ("tau", "tau_rec"):
            t = getattr(self, name, None)
            if t is not None:
                t.clamp_(self.params.tau_min, self.params.tau_max)

    def set_tau(self, tau: Tensor, *, recurrent: bool = False) -> None:
        """Overwrite the (latent) tau, seconds, broadcast to its shape."""
        name = "tau_rec" if recurrent else "tau"
        t = getattr(self, name)
        with torch.no_grad():
            t.copy_(torch.as_tensor(tau, dtype=t.dtype).expand_as(t))

    def bin_index(self, recurrent: bool = False) -> Tensor:
        """Bin of each synapse (binned form), ``[out, in]`` int64."""
        return assign_bins(self.clamped(self.tau_rec if recurrent else self.tau), self.tau_bins)

    def effective_tau(self, recurrent: bool = False) -> Tensor:
        """The tau each synapse uses in the forward pass (s): the bin centre in the binned form."""
        tau = self.clamped(self.tau_rec if recurrent else self.tau)
        if self.granularity == "synapse" and self.form == "binned":
            return self.tau_bins[self.bin_index(recurrent)]
        return tau

    def bin_weights(self, weight: Tensor, index: Tensor) -> Tensor:
        """``(W * M_k)^T`` ``[K, in, out]`` for ``weight`` ``[out, in]`` and bin indices."""
        K = self.tau_bins.shape[0]
        masks = (index[None] == torch.arange(K, device=index.device)[:, None, None]).to(weight.dtype)
        return (weight[None] * masks).transpose(1, 2)

    # -- forward ----------------------------------------------------------------------------------
    def _check_input(self, x: Any) -> None:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"input spikes must be a floating torch.Tensor [T, B, {self.in_features}], got "
                            f"{type(x).__name__}{'' if not isinstance(x, Tensor) else ' ' + str(x.dtype)}")
        if x.dim() != 3 or x.shape[2] != self.in_features:
            raise ValueError(f"input spikes have shape {tuple(x.shape)}, expected [T, B, {self.in_features}]")
        if torch.isnan(x).any():
            raise ValueError("input spikes contain NaN")

    def feedforward_current(self, x: Tensor) -> Tensor:
        """``sum_i I_ji(t)`` ``[T, B, out]`` of the feed-forward synapses (no neuron dynamics)."""
        p = self.params
        tau = self.clamped(self.tau)
        if self.granularity != "synapse":  # one current per neuron: filter W x
            return _LeakyFilter.apply(x @ self.weight.t(), decay(tau[:, 0], p.dt))
        if self.form == "exact":
            return exact_current(x, self.weight, decay(tau, p.dt))
        if self.form == "naive":
            rho = decay(tau, p.dt)
            out, I = [], None
            for t in range(x.shape[0]):
                I = self.weight * x[t][:, None, :] if I is None else rho * I + self.weight * x[t][:, None, :]
                out.append(I.sum(-1))
            return torch.stack(out)
        index = assign_bins(tau, self.tau_bins)
        return _BinnedCurrent.apply(x, self.weight, tau, index, decay(self.tau_bins, p.dt), self.tau_bins, p.dt)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self._check_input(x)
        p = self.params
        current = self.feedforward_current(x)
        T, B, out = current.shape
        if not self.recurrent and p.detach_reset:  # R needs no graph: v = I - R, z = H(v - theta) at once
            v = current - _reset_currents(current, p)
            return p.spike_function()(v - p.threshold), v
        R = current.new_zeros(B, out)
        z = current.new_zeros(B, out)
        rec = self._recurrent_stepper(B, current) if self.recurrent else None
        zs, vs = [], []
        for t in range(T):
            c = current[t] if rec is None else current[t] + rec(z)
            z, v, R = reset_current_step(c, R, z, p)
            zs.append(z)
            vs.append(v)
        return torch.stack(zs), torch.stack(vs)

    def _recurrent_stepper(self, B: int, like: Tensor):
        """A closure ``rec(z_prev) -> [B, out]``: the recurrent synapses' summed current."""
        p = self.params
        tau = self.clamped(self.tau_rec)
        w = self.weight_rec
        if self.granularity != "synapse":
            rho = decay(tau[:, 0], p.dt)
            state = {"I": like.new_zeros(B, self.out_features)}

            def rec(z):
                state["I"] = rho * state["I"] + z @ w.t()
                return state["I"]
            return rec
        if self.form == "binned":
            index = assign_bins(tau, self.tau_bins)
            rho_bins = decay(self.tau_bins, p.dt)
            wb = self.bin_weights(w, index)
            K = wb.shape[0]
            st = {"h": like.new_zeros(B, K, self.out_features)}
            # straight-through for the latent tau: gradient of the synapse's own decay at its bin
            delta = None
            if tau.requires_grad and torch.is_grad_enabled():
                delta = decay(tau, p.dt) - decay(tau, p.dt).detach()  # value 0, gradient d rho / d tau
                st["s"] = like.new_zeros(B, K, self.out_features)

            def rec(z):
                if delta is not None:  # sensitivity traces s_k = d h_k / d rho_k, from h(t-1)
                    st["s"] = rho_bins[None, :, None] * st["s"] + st["h"]
                st["h"] = rho_bins[None, :, None] * st["h"] + z[:, None, :]
                c = st["h"].reshape(B, -1) @ wb.reshape(-1, self.out_features)
                if delta is not None:  # zero-valued term whose gradient is the straight-through rule
                    sens = self.bin_weights(w * delta, index).reshape(-1, self.out_features)
                    c = c + st["s"].reshape(B, -1) @ sens
                return c
            return rec
        rho = decay(tau, p.dt)
        st = {"I": None}

        def rec(z):
            add = w * z[:, None, :]
            st["I"] = add if st["I"] is None else rho * st["I"] + add
            return st["I"].sum(-1)
        return rec

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, form={self.form!r}, granularity={self.granularity!r}, "
                f"bins={self.tau_bins.numel()}, recurrent={self.recurrent}")

"""LIF neurons, surrogate gradients, traces and first-spike times.

The expected traces below are worked out by hand from the equations in
``memsnn/crossbar/neurons.py`` (v' = beta v + I; spike where v' > theta; reset; refractory hold;
a' = adapt_decay a + adapt_increment s).
"""

import math

import pytest
import torch

from memsnn.crossbar.neurons import LIF, LIFParams, LIFState, exponential_trace, first_spike_times, lif_step
from memsnn.crossbar.surrogate import SURROGATES, Surrogate, atan, fast_sigmoid, get_surrogate, spike_fn, triangular
from memsnn.params import ParameterError

D = torch.float64


def run_steps(currents, p):
    """Drive one neuron ([B=1, N=1]) with a list of currents; return spikes, v, refrac, a lists."""
    state = None
    out = {"s": [], "v": [], "refrac": [], "a": []}
    for c in currents:
        s, state = lif_step(torch.tensor([[c]], dtype=D), state, p)
        out["s"].append(s.item())
        out["v"].append(state.v.item())
        out["refrac"].append(int(state.refrac.item()))
        out["a"].append(state.a.item())
    return out


# ---------------------------------------------------------------------------------- LIF traces
CURRENTS = [0.6, 0.8, 0.9, 0.0, 1.5]


@pytest.mark.parametrize(
    "reset, spikes, v",
    [
        # subtract: 0.6 | .3+.8=1.1 -> fire, 1.1-1=.1 | .05+.9=.95 | .475 | .2375+1.5=1.7375 -> fire, .7375
        ("subtract", [0, 1, 0, 0, 1], [0.6, 0.1, 0.95, 0.475, 0.7375]),
        # zero: 0.6 | 1.1 -> fire, 0 | .9 | .45 | .225+1.5=1.725 -> fire, 0
        ("zero", [0, 1, 0, 0, 1], [0.6, 0.0, 0.9, 0.45, 0.0]),
        # none: 0.6 | 1.1 fire | .55+.9=1.45 fire | .725 | .3625+1.5=1.8625 fire
        ("none", [0, 1, 1, 0, 1], [0.6, 1.1, 1.45, 0.725, 1.8625]),
    ],
)
def test_lif_hand_traces_per_reset(reset, spikes, v):
    out = run_steps(CURRENTS, LIFParams(beta=0.5, threshold=1.0, reset=reset))
    assert out["s"] == spikes
    assert out["v"] == pytest.approx(v, abs=1e-12)


def test_lif_threshold_is_strict():
    # v' == threshold exactly does not fire (Heaviside(0) = 0)
    s, st = lif_step(torch.tensor([[1.0, 1.0 + 1e-9]], dtype=D), None, LIFParams(threshold=1.0))
    assert s.tolist() == [[0.0, 1.0]]


def test_lif_refractory_hand_trace():
    # refractory=2: after a spike at t the membrane is held at 0 for t+1, t+2; integrates at t+3.
    p = LIFParams(beta=0.5, threshold=1.0, reset="subtract", refractory=2)
    out = run_steps([1.2] * 7, p)
    assert out["s"] == [1, 0, 0, 1, 0, 0, 1]
    assert out["v"] == pytest.approx([0.2, 0, 0, 0.2, 0, 0, 0.2], abs=1e-12)
    assert out["refrac"] == [2, 1, 0, 2, 1, 0, 2]
    # without the refractory period it fires every step (1.2 > 1, then .1 + 1.2 > 1, ...)
    assert run_steps([1.2] * 7, p.replace(refractory=0))["s"] == [1] * 7


def test_lif_refractory_ignores_input():
    p = LIFParams(beta=1.0, threshold=1.0, reset="zero", refractory=1)
    # t0: 1.5 fire -> 0, refrac 1 | t1: held at 0 though input is 5 | t2: 0.4 | t3: 0.4+0.4=0.8
    out = run_steps([1.5, 5.0, 0.4, 0.4], p)
    assert out["s"] == [1, 0, 0, 0]
    assert out["v"] == pytest.approx([0.0, 0.0, 0.4, 0.8], abs=1e-12)


def test_lif_adaptive_threshold_hand_trace():
    # beta .5, threshold 1, a += .5 per spike, a decays by .5 per step, subtract reset, I = 1.2
    # t0: theta 1      v' 1.2   fire v .2    a .5
    # t1: theta 1.5    v' 1.3   -    v 1.3   a .25
    # t2: theta 1.25   v' 1.85  fire v .6    a .125+.5=.625
    # t3: theta 1.625  v' 1.5   -    v 1.5   a .3125
    # t4: theta 1.3125 v' 1.95  fire v .6375 a .15625+.5=.65625
    p = LIFParams(beta=0.5, threshold=1.0, reset="subtract", adapt_increment=0.5, adapt_decay=0.5)
    out = run_steps([1.2] * 5, p)
    assert out["s"] == [1, 0, 1, 0, 1]
    assert out["v"] == pytest.approx([0.2, 1.3, 0.6, 1.5, 0.6375], abs=1e-12)
    assert out["a"] == pytest.approx([0.5, 0.25, 0.625, 0.3125, 0.65625], abs=1e-12)


def test_from_tau():
    p = LIFParams.from_tau(tau_mem=20e-3, dt=1e-3, threshold=0.5)
    assert p.beta == pytest.approx(math.exp(-1 / 20))
    assert p.threshold == 0.5
    with pytest.raises(ParameterError, match="tau_mem"):
        LIFParams.from_tau(tau_mem=0.0, dt=1e-3)
    with pytest.raises(ParameterError, match="beta"):
        LIFParams.from_tau(tau_mem=1.0, dt=1e-3, beta=0.5)


def test_params_validation_names_every_problem():
    with pytest.raises(ParameterError) as err:
        LIFParams(beta=1.5, threshold=0.0, reset="hard", refractory=-1, surrogate="sigmoid")
    text = str(err.value)
    for name in ("beta=1.5", "threshold=0.0", "reset='hard'", "refractory=-1", "surrogate='sigmoid'"):
        assert name in text
    assert len(err.value.errors) == 5


# ------------------------------------------------------------------------------ module and step
def test_module_equals_looping_step():
    torch.manual_seed(0)
    p = LIFParams(beta=0.8, threshold=0.7, reset="subtract", refractory=1, adapt_increment=0.2, adapt_decay=0.7)
    currents = torch.rand(25, 3, 6, dtype=D) * 0.8
    spikes, final, membrane = LIF(p, return_membrane=True)(currents)
    state, ref_s, ref_v = None, [], []
    for t in range(currents.shape[0]):
        s, state = lif_step(currents[t], state, p)
        ref_s.append(s)
        ref_v.append(state.v)
    assert spikes.shape == membrane.shape == currents.shape
    assert torch.equal(spikes, torch.stack(ref_s))
    assert torch.equal(membrane, torch.stack(ref_v))
    for a, b in zip(final, state):
        assert torch.equal(a, b)
    assert spikes.sum() > 10  # the test is not vacuous


def test_module_overrides_state_carry_and_shapes():
    lif = LIF(beta=0.5, reset="zero")
    assert lif.params.beta == 0.5 and lif.params.reset == "zero"
    assert LIF(LIFParams(beta=0.3), threshold=2.0).params == LIFParams(beta=0.3, threshold=2.0)
    x = torch.rand(10, 2, 4)
    s_all, st_all = lif(x)
    s1, st = lif(x[:4])
    s2, st2 = lif(x[4:], st)  # continuing from a state equals one long run
    assert torch.equal(torch.cat([s1, s2]), s_all)
    assert torch.equal(st2.v, st_all.v)
    assert len(lif(x)) == 2 and len(lif(x, return_membrane=True)) == 3


def test_input_validation():
    with pytest.raises(ValueError, match="NaN"):
        lif_step(torch.tensor([[float("nan"), 0.0]]), None)
    with pytest.raises(ValueError, match="NaN"):
        LIF()(torch.full((3, 1, 2), float("nan")))
    bad = LIFState.zeros_like(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"state.v has shape \(2, 3\).*\(2, 4\)"):
        lif_step(torch.zeros(2, 4), bad)
    with pytest.raises(ValueError, match=r"\[T, B, N\]"):
        LIF()(torch.zeros(5))
    with pytest.raises(TypeError, match="floating"):
        lif_step(torch.zeros(2, 3, dtype=torch.long), None)
    with pytest.raises(ParameterError, match="unknown parameter 'betta'"):
        LIF(betta=0.5)


# ---------------------------------------------------------------------------------- gradients
def atan_grad(x, alpha):
    return alpha / 2 / (1 + (math.pi / 2 * alpha * x) ** 2)


@pytest.mark.parametrize(
    "name, slope, grad",
    [
        ("atan", 2.0, lambda x: atan_grad(x, 2.0)),
        ("atan", 5.0, lambda x: atan_grad(x, 5.0)),
        ("fast_sigmoid", 25.0, lambda x: 1 / (25 * abs(x) + 1) ** 2),
        ("triangular", 1.0, lambda x: max(0.0, 1 - abs(x) / 1.0) / 1.0),
    ],
)
def test_gradient_through_one_step_is_surrogate_at_v_minus_theta(name, slope, grad):
    c = torch.tensor([[0.7, 1.0, 1.3, 2.5, -0.2]], dtype=D, requires_grad=True)
    p = LIFParams(threshold=1.0, surrogate=name, surrogate_slope=slope)
    s, _ = lif_step(c, None, p)
    s.sum().backward()
    expected = [grad(x - 1.0) for x in c.detach()[0].tolist()]
    assert c.grad[0].tolist() == pytest.approx(expected, rel=1e-12)


def test_adaptive_threshold_moves_where_the_gradient_is_taken():
    # with a = 0.5 the spike sits at v' - 1.5: gradient is sigma'(c - 1.5), not sigma'(c - 1)
    c = torch.tensor([[1.2]], dtype=D, requires_grad=True)
    state = LIFState(torch.zeros(1, 1, dtype=D), torch.zeros(1, 1, dtype=torch.int32), torch.full((1, 1), 0.5, dtype=D))
    s, _ = lif_step(c, state, LIFParams(adapt_increment=0.1))
    s.sum().backward()
    assert c.grad.item() == pytest.approx(atan_grad(1.2 - 1.5, 2.0), rel=1e-12)


def test_reset_is_detached():
    # subtract reset v_new = v' - sg(s) * theta: dv_new/dI = 1 (not 1 - sigma' * theta)
    for reset, expected in (("subtract", 1.0), ("zero", 0.0), ("none", 1.0)):
        c = torch.tensor([[1.1]], dtype=D, requires_grad=True)
        _, st = lif_step(c, None, LIFParams(reset=reset))
        st.v.sum().backward()
        assert c.grad.item() == pytest.approx(expected), reset


def test_gradient_flows_through_time_in_module():
    x = torch.full((5, 1, 1), 0.3, dtype=D, requires_grad=True)
    spikes, _ = LIF(beta=0.9)(x)
    spikes.sum().backward()
    # the last spike's surrogate reaches every earlier input through the leak
    assert (x.grad.abs() > 0).all()


# ---------------------------------------------------------------------------------- surrogates
X = torch.tensor([-1.0, -0.1, 0.0, 0.1, 0.5, 2.0], dtype=D)


@pytest.mark.parametrize("name", list(SURROGATES))
def test_surrogate_forward_is_heaviside(name):
    assert get_surrogate(name)(X).tolist() == [0, 0, 0, 1, 1, 1]
    assert spike_fn(X, name).dtype == D


@pytest.mark.parametrize(
    "surrogate, expected",
    [
        # atan(2): 1 / (1 + (pi x)^2)
        (atan(), [1 / (1 + math.pi**2), 1 / (1 + (0.1 * math.pi) ** 2), 1.0, 1 / (1 + (0.1 * math.pi) ** 2),
                  1 / (1 + (0.5 * math.pi) ** 2), 1 / (1 + (2 * math.pi) ** 2)]),
        # fast_sigmoid(25): 1 / (25|x| + 1)^2
        (fast_sigmoid(), [1 / 26**2, 1 / 3.5**2, 1.0, 1 / 3.5**2, 1 / 13.5**2, 1 / 51**2]),
        # fast_sigmoid(10)
        (fast_sigmoid(10.0), [1 / 11**2, 1 / 4.0, 1.0, 1 / 4.0, 1 / 36.0, 1 / 21**2]),
        # triangular(1): max(0, 1 - |x|)
        (triangular(), [0.0, 0.9, 1.0, 0.9, 0.5, 0.0]),
        # triangular(2): max(0, 1 - |x| / 2) / 2
        (triangular(2.0), [0.25, 0.475, 0.5, 0.475, 0.375, 0.0]),
    ],
)
def test_surrogate_backward_values(surrogate, expected):
    x = X.clone().requires_grad_(True)
    y = surrogate(x)
    y.backward(torch.full_like(x, 2.0))  # the incoming gradient is multiplied in
    assert x.grad.tolist() == pytest.approx([2 * e for e in expected], rel=1e-12)
    assert surrogate.derivative(X).tolist() == pytest.approx(expected, rel=1e-12)


def test_surrogates_agree_with_snntorch():
    snn_surrogate = pytest.importorskip("snntorch.surrogate")
    for ours, theirs in ((atan(3.0), snn_surrogate.atan(alpha=3.0)), (fast_sigmoid(7.0), snn_surrogate.fast_sigmoid(slope=7.0))):
        x1 = X.clone().requires_grad_(True)
        x2 = X.clone().requires_grad_(True)
        assert torch.equal(ours(x1), theirs(x2))
        ours(x1).sum().backward()
        theirs(x2).sum().backward()
        assert torch.allclose(x1.grad, x2.grad, rtol=1e-12)


def test_custom_callable_and_factory_results():
    s = get_surrogate(lambda x: 3.0 * torch.exp(-x.abs()))
    assert isinstance(s, Surrogate) and s.name == "custom"
    x = torch.tensor([0.0, 1.0], dtype=D, requires_grad=True)
    s(x).sum().backward()
    assert x.grad.tolist() == pytest.approx([3.0, 3.0 * math.exp(-1.0)])
    f = fast_sigmoid(3.0)
    assert get_surrogate(f) is f
    assert get_surrogate("triangular", 0.5).parameter == 0.5
    assert get_surrogate("ATAN").name == "atan"


def test_surrogate_errors():
    with pytest.raises(ValueError, match="'atan', 'fast_sigmoid', 'triangular'"):
        get_surrogate("sigmoid")
    with pytest.raises(TypeError):
        get_surrogate(3.0)
    with pytest.raises(ValueError, match="slope=-1"):
        fast_sigmoid(-1)
    with pytest.raises(ValueError, match="only to a surrogate given by name"):
        get_surrogate(atan(), 3.0)


# ------------------------------------------------------------------ traces and first spike times
def test_exponential_trace_hand_computed():
    spikes = torch.zeros(5, 1, 2, dtype=D)
    spikes[[0, 2], 0, 0] = 1.0
    spikes[4, 0, 1] = 1.0
    d = math.exp(-1 / 2.0)
    tr = exponential_trace(spikes, tau_steps=2.0)
    assert tr.shape == spikes.shape
    assert tr[:, 0, 0].tolist() == pytest.approx([1, d, d * d + 1, d**3 + d, d**4 + d * d])
    assert tr[:, 0, 1].tolist() == pytest.approx([0, 0, 0, 0, 1])
    assert exponential_trace(spikes, math.inf)[:, 0, 0].tolist() == [1, 1, 2, 2, 2]
    with pytest.raises(ValueError, match="tau_steps=0"):
        exponential_trace(spikes, 0)


def test_first_spike_times_hand_computed():
    spikes = torch.zeros(4, 2, 3)
    spikes[2, 0, 0] = spikes[3, 0, 0] = 1  # first at 2
    spikes[0, 0, 2] = spikes[1, 0, 2] = 1  # first at 0
    spikes[3, 1, 1] = 1                    # first at 3
    fst = first_spike_times(spikes)
    assert fst.dtype.is_floating_point
    assert fst.tolist() == [[2.0, 4.0, 0.0], [4.0, 3.0, 4.0]]
    assert first_spike_times(spikes.bool()).tolist() == fst.tolist()

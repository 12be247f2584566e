"""HetSyn layer: special cases, a hand-computed trace, the forms agree, gradients of tau."""

import math

import pytest
import torch

from memsnn.crossbar.hetsyn import HetSynLinear, HetSynParams, hetsyn_binned_step, hetsyn_step
from memsnn.crossbar.neurons import LIF
from memsnn.params import ParameterError

D = torch.float64
P = dict(dt=1.0, tau_r=2.0, tau_min=0.5, tau_max=20.0, tau_init_low=1.0, tau_init_high=10.0)


def _spikes(T, B, n, seed=0, p=0.3):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, n, generator=g, dtype=D) < p).to(D)


def _layer(n_in, n_out, **kw):
    kw.setdefault("dtype", D)
    opts = {**P, **kw.pop("p", {})}
    return HetSynLinear(n_in, n_out, HetSynParams(**opts), **kw)


def test_hand_computed_trace_every_form():
    rho = torch.tensor([0.5, 0.8], dtype=D)
    tau = -1.0 / torch.log(rho)
    x = torch.tensor([[1, 0], [1, 1], [0, 0], [0, 1]], dtype=D)[:, None, :]
    for form in ("naive", "exact", "binned"):
        layer = _layer(2, 1, form=form, tau_bins=tau, p=dict(tau_r=float(tau[0])))
        with torch.no_grad():
            layer.weight.copy_(torch.tensor([[0.6, 0.5]], dtype=D))
        layer.set_tau(tau[None, :])
        z, v = layer(x)
        # I1 = .6, .9, .45, .225; I2 = 0, .5, .4, .82; R = 0, 0, 1, .5
        torch.testing.assert_close(v[:, 0, 0], torch.tensor([0.6, 1.4, -0.15, 0.545], dtype=D), rtol=0, atol=1e-12)
        assert z[:, 0, 0].tolist() == [0.0, 1.0, 0.0, 0.0], form


def test_pure_step_functions_match_module():
    x = _spikes(12, 3, 5, seed=1)
    bins = torch.tensor([1.0, 3.0, 9.0], dtype=D)
    layer = _layer(5, 4, form="binned", tau_bins=bins, weight_gain=3.0)
    layer.set_tau(bins[torch.randint(0, 3, (4, 5), generator=torch.Generator().manual_seed(2))])
    z_mod, v_mod = layer(x)
    p = layer.params
    rho = torch.exp(-p.dt / layer.effective_tau())
    st_n = st_b = None
    wb = layer.bin_weights(layer.weight, layer.bin_index())
    for t in range(12):
        z_n, v_n, st_n = hetsyn_step(x[t], st_n, layer.weight, rho, p)
        z_b, v_b, st_b = hetsyn_binned_step(x[t], st_b, wb, torch.exp(-p.dt / bins), p)
        torch.testing.assert_close(v_n, v_mod[t], rtol=0, atol=1e-12)
        torch.testing.assert_close(v_b, v_mod[t], rtol=0, atol=1e-12)
        assert torch.equal(z_n, z_mod[t]) and torch.equal(z_b, z_mod[t])
    assert z_mod.sum() > 0  # the comparison covered spikes and resets


@pytest.mark.parametrize("form", ["naive", "exact", "binned"])
def test_equal_tau_per_neuron_is_homneu(form):
    x = _spikes(20, 4, 6, seed=3)
    tau_n = torch.tensor([[1.0], [3.0], [9.0]], dtype=D)
    syn = _layer(6, 3, form=form, tau_bins=tau_n.flatten(), weight_gain=3.0)
    neu = _layer(6, 3, granularity="neuron", weight_gain=3.0)
    with torch.no_grad():
        neu.weight.copy_(syn.weight)
    syn.set_tau(tau_n.expand(3, 6))
    neu.set_tau(tau_n)
    z1, v1 = syn(x)
    z2, v2 = neu(x)
    torch.testing.assert_close(v1, v2, rtol=0, atol=1e-12)
    assert torch.equal(z1, z2) and z1.sum() > 0


def test_all_equal_with_tau_r_equal_is_vanilla_lif():
    x = _spikes(25, 3, 5, seed=4)
    layer = _layer(5, 4, granularity="layer", weight_gain=3.0, p=dict(tau_r=4.0))
    layer.set_tau(torch.tensor([[4.0]], dtype=D))
    z, v = layer(x)
    rho, theta = math.exp(-1.0 / 4.0), 1.0
    vv = torch.zeros(3, 4, dtype=D)
    zz = torch.zeros(3, 4, dtype=D)
    for t in range(25):  # v(t) = rho v(t-1) + W x(t) - theta z(t-1)
        vv = rho * vv + x[t] @ layer.weight.t() - theta * zz
        zz = (vv > theta).to(D)
        torch.testing.assert_close(v[t], vv, rtol=0, atol=1e-12)
        assert torch.equal(z[t], zz)
    assert z.sum() > 0


def test_all_equal_with_other_tau_r_is_threshold_adaptation():
    x = _spikes(25, 3, 5, seed=5)
    tau, tau_r = 3.0, 8.0
    layer = _layer(5, 4, granularity="layer", weight_gain=3.0, p=dict(tau_r=tau_r))
    layer.set_tau(torch.tensor([[tau]], dtype=D))
    z, v = layer(x)
    lif = LIF(beta=math.exp(-1 / tau), threshold=1.0, reset="none", adapt_increment=1.0,
              adapt_decay=math.exp(-1 / tau_r))
    s_lif, _ = lif(x @ layer.weight.t())
    assert torch.equal(z, s_lif) and z.sum() > 0


@pytest.mark.parametrize("form", ["naive", "exact"])
def test_gradcheck_tau(form):
    x = _spikes(8, 2, 3, seed=6, p=0.5)
    layer = _layer(3, 2, form=form, weight_gain=2.0, learn_tau=False)

    def membrane(tau):
        layer.tau = tau  # a buffer: assigning a tensor that requires grad keeps the graph
        return layer(x)[1]

    tau0 = torch.tensor([[1.3, 2.2, 5.0], [0.9, 7.5, 3.3]], dtype=D, requires_grad=True)
    assert layer(x)[0].sum() > 0  # spikes and resets happen inside the checked function
    assert torch.autograd.gradcheck(membrane, (tau0,), eps=1e-6, atol=1e-7)


def test_binned_equals_exact_when_tau_takes_k_values():
    x = _spikes(30, 4, 16, seed=7)
    bins = torch.tensor([0.8, 2.0, 5.0, 15.0], dtype=D)
    idx = torch.randint(0, 4, (10, 16), generator=torch.Generator().manual_seed(8))
    out = {}
    for form in ("binned", "exact", "naive"):
        layer = _layer(16, 10, form=form, tau_bins=bins, weight_gain=3.0, generator=9)
        layer.set_tau(bins[idx])
        out[form] = layer(x)
    for form in ("exact", "naive"):
        torch.testing.assert_close(out["binned"][1], out[form][1], rtol=0, atol=1e-10)
        assert torch.equal(out["binned"][0], out[form][0])
    assert out["binned"][0].sum() > 0


def test_binned_float32_matches_exact_float32():
    x = _spikes(30, 4, 16, seed=7).float()
    bins = torch.tensor([0.8, 2.0, 5.0, 15.0])
    a = _layer(16, 10, form="binned", tau_bins=bins, dtype=torch.float32, generator=1)
    b = _layer(16, 10, form="exact", tau_bins=bins, dtype=torch.float32, generator=1)
    b.set_tau(a.effective_tau())
    torch.testing.assert_close(a.feedforward_current(x), b.feedforward_current(x), rtol=1e-4, atol=1e-5)


def test_straight_through_gradient_is_exact_gradient_at_bin_value():
    x = _spikes(15, 3, 6, seed=10, p=0.5)
    bins = torch.tensor([1.0, 4.0, 12.0], dtype=D)
    binned = _layer(6, 4, form="binned", tau_bins=bins, weight_gain=2.0, generator=3)
    exact = _layer(6, 4, form="exact", tau_bins=bins, weight_gain=2.0, generator=3)
    # latent taus off the bin centres; exact runs at the bin centres
    binned.set_tau(torch.exp(torch.empty(4, 6, dtype=D).uniform_(0.0, math.log(15.0), generator=torch.Generator().manual_seed(1))))
    exact.set_tau(binned.effective_tau())
    assert not torch.equal(binned.tau, binned.effective_tau())
    for layer in (binned, exact):
        _, v = layer(x)
        (v * torch.linspace(-1, 1, v.numel(), dtype=D).reshape(v.shape)).sum().backward()
    torch.testing.assert_close(binned.tau.grad, exact.tau.grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(binned.weight.grad, exact.weight.grad, rtol=1e-9, atol=1e-12)


def test_latent_tau_moves_between_bins_at_geometric_midpoint():
    bins = torch.tensor([1.0, 4.0], dtype=D)  # boundary at sqrt(4) = 2
    layer = _layer(2, 1, form="binned", tau_bins=bins)
    layer.set_tau(torch.tensor([[1.99, 2.01]], dtype=D))
    assert layer.bin_index().tolist() == [[0, 1]]
    torch.testing.assert_close(layer.effective_tau(), torch.tensor([[1.0, 4.0]], dtype=D))
    # one SGD step that pushes the first synapse's latent tau over the boundary moves it to bin 1
    with torch.no_grad():
        layer.tau -= torch.tensor([[-0.05, 0.0]], dtype=D)
    assert layer.bin_index().tolist() == [[1, 1]]


def test_recurrent_binned_equals_naive_and_st_gradient():
    x = _spikes(20, 3, 5, seed=11, p=0.4)
    bins = torch.tensor([1.0, 3.0, 9.0], dtype=D)
    idx = torch.randint(0, 3, (4, 4), generator=torch.Generator().manual_seed(2))
    layers = {}
    for form in ("binned", "naive"):
        layer = _layer(5, 4, form=form, tau_bins=bins, recurrent=True, weight_gain=3.0, generator=4)
        layer.set_tau(bins[idx], recurrent=True)
        layer.set_tau(layer.effective_tau() if form == "naive" else layer.tau)
        layers[form] = layer
    layers["naive"].set_tau(layers["binned"].effective_tau())
    outs = {f: l(x) for f, l in layers.items()}
    torch.testing.assert_close(outs["binned"][1], outs["naive"][1], rtol=0, atol=1e-10)
    assert outs["binned"][0].sum() > 0
    for f in layers:
        outs[f][1].sum().backward()
    torch.testing.assert_close(layers["binned"].tau_rec.grad, layers["naive"].tau_rec.grad, rtol=1e-9, atol=1e-12)
    assert layers["binned"].tau_rec.grad.abs().sum() > 0


def test_project_and_clamp():
    layer = _layer(3, 2, form="exact")
    layer.set_tau(torch.tensor([[0.1, 5.0, 100.0], [1.0, 1.0, 1.0]], dtype=D))
    torch.testing.assert_close(layer.effective_tau()[0], torch.tensor([0.5, 5.0, 20.0], dtype=D))
    layer.project_()
    assert float(layer.tau.detach().min()) == 0.5 and float(layer.tau.detach().max()) == 20.0


def test_initial_tau_log_uniform_statistics():
    layer = HetSynLinear(200, 100, HetSynParams(tau_init_low=1e-3, tau_init_high=1e-1), generator=0)
    logs = torch.log10(layer.tau.detach().double())
    assert float(logs.min()) >= -3 and float(logs.max()) <= -1
    # log-uniform over two decades: mean -2, std 2 / sqrt(12)
    assert abs(float(logs.mean()) + 2.0) < 0.02 and abs(float(logs.std()) - 2 / math.sqrt(12)) < 0.02


def test_bad_input_errors():
    with pytest.raises(ValueError, match="form='fast'"):
        HetSynLinear(3, 2, form="fast")
    with pytest.raises(ParameterError, match="tau_min"):
        HetSynParams(tau_min=1.0, tau_max=0.5, tau_init_low=0.6, tau_init_high=0.7)
    with pytest.raises(ValueError, match=r"expected \[T, B, 3\]"):
        HetSynLinear(3, 2)(torch.zeros(4, 2, 5))
    with pytest.raises(ValueError, match="tau_bins"):
        HetSynLinear(3, 2, tau_bins=[0.1, 0.01])


def test_binned_input_and_weight_gradients_equal_exact_form():
    """The binned form's hand-written backward (input, weight, tau frozen or learnable) against
    autograd through the FFT form at the bin values."""
    bins = torch.tensor([1.0, 4.0, 12.0], dtype=D)
    for learn_tau in (True, False):
        grads = {}
        for form in ("binned", "exact"):
            x = _spikes(15, 3, 6, seed=12, p=0.5).requires_grad_()
            layer = _layer(6, 4, form=form, tau_bins=bins, weight_gain=2.0, generator=5, learn_tau=learn_tau)
            layer.set_tau(bins[torch.randint(0, 3, (4, 6), generator=torch.Generator().manual_seed(3))])
            z, v = layer(x)
            (v * torch.linspace(-1, 1, v.numel(), dtype=D).reshape(v.shape)).sum().backward()
            grads[form] = (x.grad, layer.weight.grad, layer.tau.grad if learn_tau else None)
            assert z.sum() > 0
        for gb, ge in zip(grads["binned"], grads["exact"]):
            if ge is None:
                assert gb is None
            else:
                torch.testing.assert_close(gb, ge, rtol=1e-9, atol=1e-12)


def test_vectorised_neuron_backward_equals_stepwise_autograd():
    """The feed-forward layer computes R without a graph and v = I - R at once; its gradients
    equal autograd through the pure step function looped in time (detached reset)."""
    x = _spikes(20, 3, 5, seed=13, p=0.4)
    bins = torch.tensor([1.0, 3.0, 9.0], dtype=D)
    layer = _layer(5, 4, form="naive", tau_bins=bins, weight_gain=3.0, generator=6)
    w = layer.weight.detach().clone().requires_grad_()
    z, v = layer(x)
    coef = torch.linspace(-1, 1, v.numel(), dtype=D).reshape(v.shape)
    ((v * coef).sum() + z.sum()).backward()
    rho = torch.exp(-1.0 / layer.tau.detach())
    st, zs, vs = None, [], []
    for t in range(20):
        z_t, v_t, st = hetsyn_step(x[t], st, w, rho, layer.params)
        zs.append(z_t)
        vs.append(v_t)
    z2, v2 = torch.stack(zs), torch.stack(vs)
    assert torch.equal(z, z2) and z.sum() > 0
    ((v2 * coef).sum() + z2.sum()).backward()
    torch.testing.assert_close(layer.weight.grad, w.grad, rtol=1e-12, atol=1e-12)


def test_binned_traces_in_place_and_autograd_paths_agree_with_recurrence():
    x = _spikes(7, 2, 3, seed=14)
    rho = torch.tensor([0.3, 0.9], dtype=D)
    h = torch.zeros(2, 2, 3, dtype=D)
    ref = []
    for t in range(7):
        h = rho[None, :, None] * h + x[t][:, None, :]
        ref.append(h)
    ref = torch.stack(ref)
    from memsnn.crossbar.hetsyn import binned_traces
    torch.testing.assert_close(binned_traces(x, rho), ref, rtol=0, atol=1e-15)
    xg = x.clone().requires_grad_()
    out = binned_traces(xg, rho)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-15)
    out.sum().backward()  # d/dx_i(t) of sum_{t'>=t, k} rho_k^(t'-t)
    expect = sum(((1 - r ** (7 - torch.arange(7, dtype=D))) / (1 - r)) for r in rho.tolist())
    torch.testing.assert_close(xg.grad, expect[:, None, None].expand(7, 2, 3), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("granularity", ["neuron", "layer"])
def test_gradcheck_tau_neuron_and_layer_granularity(granularity):
    """The per-neuron current's hand-written filter backward (``_LeakyFilter``) against finite
    differences, and its weight gradient against the per-synapse form with tau equal per neuron."""
    x = _spikes(8, 2, 3, seed=15, p=0.5)
    layer = _layer(3, 2, granularity=granularity, weight_gain=2.0, learn_tau=False)

    def membrane(tau):
        layer.tau = tau
        return layer(x)[1]

    tau0 = torch.tensor([[1.3], [4.1]] if granularity == "neuron" else [[2.2]], dtype=D, requires_grad=True)
    assert layer(x)[0].sum() > 0
    assert torch.autograd.gradcheck(membrane, (tau0,), eps=1e-6, atol=1e-7)
    syn = _layer(3, 2, form="naive", weight_gain=2.0, learn_tau=False)
    syn.set_tau(tau0.detach().expand(2, 3))
    layer.tau = tau0.detach()
    for m in (layer, syn):
        _, v = m(x)
        (v * torch.linspace(-1, 1, v.numel(), dtype=D).reshape(v.shape)).sum().backward()
    torch.testing.assert_close(layer.weight.grad, syn.weight.grad, rtol=1e-10, atol=1e-12)

"""Event-driven float synapses (``memsnn.crossbar.event_linear``) against the dense GEMM."""

import pytest
import torch
from torch import nn

from memsnn.crossbar import event_linear as el
from memsnn.crossbar.network import SpikingNetwork
from memsnn.crossbar.neurons import LIFParams


def spikes(shape, p, seed=0, dtype=torch.float64):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < p).to(dtype)


def test_event_mm_by_hand():
    x = torch.tensor([[0.0, 1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    wt = torch.tensor([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    y = el.event_mm(x, wt)
    assert y.tolist() == [[2.0 + 8.0, 20.0 + 80.0], [0.0, 0.0], [10.0, 100.0]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n_in", [3, 8, 13, 100])  # every remainder of the gather's groups of 4
def test_event_mm_equals_the_gemm(dtype, n_in):
    g = torch.Generator().manual_seed(1)
    x = spikes((37, n_in), 0.3, dtype=dtype) * torch.randn(37, n_in, generator=g, dtype=dtype)  # any values
    wt = torch.randn(n_in, 9, generator=g, dtype=dtype)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(el.event_mm(x, wt), x @ wt, **tol)


def test_event_mm_does_not_depend_on_threads_or_batch_split():
    x, wt = spikes((300, 200), 0.2, dtype=torch.float32), torch.randn(200, 64, generator=torch.Generator().manual_seed(2))
    one = el.event_mm(x, wt, threads=1)
    assert torch.equal(one, el.event_mm(x, wt, threads=3))
    assert torch.equal(one, torch.cat([el.event_mm(x[i:i + 7], wt) for i in range(0, 300, 7)]))


def test_event_mm_rejects_bad_operands():
    x, wt = torch.zeros(4, 3), torch.zeros(3, 2)
    with pytest.raises(ValueError, match=r"x \[B, in\] and wt \[in, out\]; got \(4, 3\) and \(2, 3\)"):
        el.event_mm(x, wt.t().contiguous())
    with pytest.raises(ValueError, match="float32 or float64 operands of one dtype; got torch.float32 and torch.float64"):
        el.event_mm(x, wt.double())
    with pytest.raises(ValueError, match="contiguous CPU"):
        el.event_mm(x, torch.zeros(2, 3).t())
    with pytest.raises(ValueError, match=r"out must be a contiguous torch.float32 tensor of shape \(4, 2\)"):
        el.event_mm(x, wt, out=torch.zeros(4, 3))


def test_event_linear_chooses_by_density_and_setting():
    lin = el.EventLinear(50, 6, bias=False).double()
    sparse, dense = spikes((64, 50), 0.1), spikes((64, 50), 0.6)
    assert el.uses_events(sparse, lin)
    assert not el.uses_events(dense, lin)  # above MAX_DENSITY the GEMM is faster
    assert not el.uses_events(sparse, lin, "dense")
    assert not el.uses_events(sparse.float(), lin)  # dtypes differ: nn.Linear's own error
    with pytest.raises(ValueError, match="spike_read='events' is not allowed: use one of 'sparse', 'dense'"):
        el.uses_events(sparse, lin, "events")
    ref = nn.Linear(50, 6, bias=False).double()
    ref.load_state_dict(lin.state_dict())  # the same parameters as nn.Linear
    for x in (sparse, dense, sparse.reshape(4, 16, 50)):
        torch.testing.assert_close(lin(x), ref(x), rtol=1e-12, atol=1e-12)
    lin.spike_read = "events"
    with pytest.raises(ValueError, match="spike_read='events' is not allowed"):
        lin(sparse)


def test_event_linear_with_bias_and_gradients_equal_nn_linear():
    torch.manual_seed(0)
    lin = el.EventLinear(40, 7).double()
    ref = nn.Linear(40, 7).double()
    ref.load_state_dict(lin.state_dict())
    x = spikes((30, 40), 0.15).requires_grad_(True)
    assert el.uses_events(x, lin)
    g = torch.randn(30, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    y, y_ref = lin(x), ref(x)
    got = torch.autograd.grad(y, (x, lin.weight, lin.bias), g)
    want = torch.autograd.grad(y_ref, (x, ref.weight, ref.bias), g)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_frozen_weights_reads_the_weight_of_entry_and_hooks_fire():
    lin = el.EventLinear(20, 3, bias=False).double()
    x = spikes((8, 20), 0.2)
    seen = []
    lin.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape))
    before = lin(x)
    with el.frozen_weights([lin, nn.ReLU()]):
        with torch.no_grad():
            lin.weight.mul_(2.0)
        inside = lin(x)
    after = lin(x)
    torch.testing.assert_close(inside, before, rtol=0, atol=0)  # the transpose made on entry
    torch.testing.assert_close(after, 2.0 * before, rtol=1e-12, atol=1e-12)
    assert seen == [(8, 20)] * 3 and lin._frozen_wt is None


def set_spike_read(net, how):
    for s in net.synapses:
        s.spike_read = how


@pytest.mark.parametrize("mode", ["multi", "step"])
def test_network_sparse_equals_dense_spike_read(mode):
    net = SpikingNetwork([60, 40, 5], neuron=LIFParams(beta=0.85, threshold=0.3), seed=4, mode=mode).double()
    assert all(isinstance(s, el.EventLinear) for s in net.synapses)
    x = spikes((15, 9, 60), 0.2, seed=5)
    a = net(x, record=True)
    set_spike_read(net, "dense")
    b = net(x, record=True)
    assert a.records[1].pre.sum() > 0 and a.spikes.sum() > 0
    assert torch.equal(a.spikes, b.spikes)
    for ra, rb in zip(a.records, b.records):
        torch.testing.assert_close(ra.current, rb.current, rtol=1e-12, atol=1e-12)


def test_network_training_step_gets_the_dense_gradients():
    """A surrogate-gradient backward through the event-driven forward equals the GEMM's."""
    x = spikes((10, 6, 30), 0.2, seed=6)

    def grads(spike_read):
        net = SpikingNetwork([30, 20, 4], neuron=LIFParams(beta=0.9, threshold=0.2), seed=7).double()
        set_spike_read(net, spike_read)
        out = net(x)
        out.membrane.sum().backward()
        return [s.weight.grad for s in net.synapses], out.spikes

    ga, sa = grads("sparse")
    gb, sb = grads("dense")
    assert torch.equal(sa, sb) and sa.sum() > 0
    for a, b in zip(ga, gb):
        assert a.abs().sum() > 0
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)

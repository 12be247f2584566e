"""The CUDA paths (skipped without a GPU): the multi-step crossbar network, the pulsed update and a
short in-situ training give what the CPU gives."""

import pytest
import torch

from memsnn.crossbar import Crossbar, CrossbarParams
from memsnn.crossbar.network import SpikingNetwork
from memsnn.crossbar.neurons import LIFParams
from memsnn.device_models import make_device

pytestmark = pytest.mark.cuda

#: no device-to-device spread and no noise: CPU and CUDA sample the same (deterministic) devices
CLEAN = dict(r_dtod=0.0, c_dtod=0.0, g_min_dtod=0.0, g_max_dtod=0.0, g_init_dtod=0.0, read_noise_std=0.0,
             tau_volatile_dtod=0.0, drift_nu_dtod=0.0, step_std=0.0, write_noise_std=0.0)


def test_multistep_crossbar_network_on_cuda_matches_step_mode_and_the_cpu():
    net = SpikingNetwork([40, 32, 8], neuron=LIFParams(beta=0.9, threshold=0.4), seed=1)
    model = make_device("srtio3", **CLEAN)
    x = (torch.rand(10, 16, 40, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    outs = {}
    for dev in ("cpu", "cuda"):
        xnet, _ = net.to_crossbars(model, method="direct", seed=2, device=dev, params=CrossbarParams(tile_rows=16))
        xnet = xnet.to(dev)
        a = xnet(x.to(dev), record=True)
        xnet.mode = "step"
        b = xnet(x.to(dev), record=True)
        assert torch.equal(a.spikes, b.spikes)
        outs[dev] = a
    cpu, gpu = outs["cpu"], outs["cuda"]
    assert gpu.spikes.is_cuda
    torch.testing.assert_close(gpu.records[0].current.cpu(), cpu.records[0].current, rtol=1e-4, atol=1e-5)
    assert float((gpu.spikes.cpu() != cpu.spikes).float().mean()) < 0.01  # float32 threshold crossings


def test_pulsed_update_on_cuda_matches_the_cpu():
    model = make_device("srtio3", write_noise_std=0.0, step_std=0.0)  # d2d spread kept: the CPU array moved over
    pulses = torch.randint(-3, 4, (64, 32), generator=torch.Generator().manual_seed(1))
    cpu = Crossbar(64, 32, model, seed=0)
    g = {}
    for dev in ("cpu", "cuda"):
        xbar = cpu.to(dev)  # a copy: the same sampled devices on both
        res = xbar.apply_pulses(pulses.to(dev), -pulses.to(dev))
        assert res.pulses == 2 * int(pulses.abs().sum())
        g[dev] = xbar.conductances()[0].cpu()
    torch.testing.assert_close(g["cuda"], g["cpu"], rtol=1e-5, atol=1e-12)


def test_short_insitu_csdp_training_on_cuda():
    from memsnn.experiments.datasets import Dataset
    from memsnn.learning.loop import accuracy, fit
    from memsnn.learning.csdp import CSDP

    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([0, 1, 1, 1])
    data = Dataset("logic", x.repeat(16, 1), y.repeat(16), x, y, classes=["0", "1"])
    m = CSDP(2, 2, hidden=(16,), device="srtio3", program="direct", seed=0, num_steps=20, complement=True,
             torch_device="cuda")
    hist = fit(m, data, epochs=6, batch_size=8, progress=False)
    assert all(xb.device.type == "cuda" for xb in m.crossbars())
    assert hist.pulses.iloc[-1] > 0
    assert accuracy(m, x.repeat(25, 1), y.repeat(25), seed=5) >= 0.95

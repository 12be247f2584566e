import pytest
import torch

from memsnn.device_models import load_devices, make_device, save_devices


@pytest.mark.parametrize("preset", ["srtio3", "ideal", "pcm", "rram"])
def test_save_load_round_trip_is_exact(tmp_path, preset):
    model = make_device(preset, p_stuck_min=0.05, n_levels=None)
    state = model.init_state((6, 7), generator=3)
    state = model.apply_pulses(state, torch.randint(-4, 5, (6, 7), dtype=torch.int32), generator=4)
    state = model.set_bias(model.advance(state, 12.5), 0.3)
    path = save_devices(tmp_path / "arr.pt", model, state)
    model2, state2 = load_devices(path)
    assert type(model2) is type(model) and model2.params == model.params
    assert state2.time == state.time
    t1, t2 = state.tensors(), state2.tensors()
    assert t1.keys() == t2.keys()
    for name in t1:
        assert t1[name].dtype == t2[name].dtype, name
        assert torch.equal(t1[name], t2[name]), name
    # the loaded array behaves identically
    k = torch.ones(6, 7, dtype=torch.int32)
    a = model.read(model.apply_pulses(state, k, generator=9), generator=10)
    b = model2.read(model2.apply_pulses(state2, k, generator=9), generator=10)
    assert torch.equal(a, b)


def test_save_refuses_to_overwrite(tmp_path):
    model = make_device("ideal")
    state = model.init_state((2,))
    save_devices(tmp_path / "a.pt", model, state)
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        save_devices(tmp_path / "a.pt", model, state)
    save_devices(tmp_path / "a.pt", model, state, overwrite=True)


def test_load_rejects_foreign_file(tmp_path):
    torch.save({"format": "something-else"}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a memsnn device file"):
        load_devices(tmp_path / "x.pt")

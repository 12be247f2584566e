import pytest
import torch

from memsnn.device_models import make_device
from memsnn.experiments.datasets import load_dataset
from memsnn.learning.loop import accuracy, fit
from memsnn.learning.scheduler import SchedulerParams
from memsnn.learning.stdp import STDPParams, SupervisedSTDP, teacher, update_targets
from memsnn.params import ParameterError

T = 20  # steps; a gap of 0.05 t_max is exactly one step
# linear latency code, t_i = round(19 * (1 - x_i)): pattern A fires inputs 0-3 at steps 1, 3, 5, 7
# and inputs 4-7 at steps 13, 14, 15, 16; pattern B the other way round
PAT_A = torch.tensor([[0.95, 0.85, 0.75, 0.65, 0.3, 0.25, 0.2, 0.15]])
PAT_B = PAT_A.flip(1)
TOY = dict(num_steps=T, gap_t=0.05, gap_nt=0.05, a_plus=0.5, a_minus=-0.5, threshold_init=0.125,
           threshold_min=0.01, input_threshold=0.05)


def toy_method(npc=1, n_classes=2, in_situ=False, threshold_lr=0.0, step="nominal", **kw):
    """8 inputs; in-situ on an ideal device with 50 levels (one pulse = 0.02 weight)."""
    params = STDPParams(neurons_per_class=npc, threshold_lr=threshold_lr, **{**TOY, **kw})
    device = make_device("ideal", step=2e-9) if in_situ else None
    m = SupervisedSTDP(8, n_classes, params, device=device, program="direct", seed=0,
                       scheduler=SchedulerParams(quantisation="round", step=step))
    m.theta[:] = 1.0
    return m


def test_encoding_matches_the_hand_computed_times():
    m = toy_method()
    t_in = m.encode(PAT_A).argmax(0)[0]
    assert t_in.tolist() == [1, 3, 5, 7, 13, 14, 15, 16]


@pytest.mark.parametrize("in_situ", [False, True])
def test_one_update_moves_target_earlier_and_wrong_winner_later(in_situ):
    m = toy_method(in_situ=in_situ)
    # neuron 1 (class 1) is the strong one: on pattern A (class 0) it fires first, neuron 0 late
    w = torch.empty(8, 2)
    w[:, 0], w[:, 1] = 0.3, 0.55
    m.set_weights(w, method="direct")
    before = m.firing_times(PAT_A)[0]
    assert before.tolist() == [7.0, 3.0]  # 4 x 0.3 > 1 at step 7; 2 x 0.55 > 1 at step 3
    assert m.predict(PAT_A).item() == 1
    st = m.train_batch(PAT_A, torch.tensor([0]))
    after = m.firing_times(PAT_A)[0]
    assert after[0] < before[0]  # target earlier
    assert after[1] > before[1]  # wrong-class winner later
    assert st.seen == 1 and st.correct == 0
    if in_situ:
        assert st.pulses > 0 and st.phases > 0
        assert m.counters()["pulses"] >= st.pulses
    else:
        assert st.pulses == 0
        # float: exactly e * a (e = +-0.15 as in the teacher test below), clipped to [0, 1]
        d = m.weights() - w
        torch.testing.assert_close(d[:4, 0], torch.full((4,), 0.075))
        torch.testing.assert_close(d[4:, 0], torch.full((4,), -0.075))
        torch.testing.assert_close(d[:2, 1], torch.full((2,), -0.075))
        torch.testing.assert_close(d[2:, 1], torch.full((6,), 0.075))


def test_threshold_adaptation_lowers_late_and_raises_early_neurons():
    m = toy_method(threshold_lr=0.1)
    w = torch.empty(8, 2)
    w[:, 0], w[:, 1] = 0.3, 0.55
    m.set_weights(w)
    m.train_batch(PAT_A, torch.tensor([0]))
    # theta_j -= threshold_lr * n_in * e_j with e = (+0.15, -0.15), n_in = 8
    torch.testing.assert_close(m.theta, torch.tensor([1.0 - 0.12, 1.0 + 0.12]))


def test_teacher_matches_hand_computed_example():
    classes = torch.tensor([0, 0, 1, 1])
    times = torch.tensor([[6.0, 20.0, 4.0, 10.0],     # neuron 1 silent (t = T)
                          [20.0, 20.0, 20.0, 20.0]])  # nobody fired
    labels = torch.tensor([0, 1])
    # gap_t = 0.05 * 20 = 1 step, gap_nt = 0.1 * 20 = 2 steps
    t_star, e = teacher(times, labels, classes, 20, gap_t=0.05, gap_nt=0.1)
    # sample 0: t_base = mean(6, 4, 10) = 20/3 (below the cap 20 - 2 = 18)
    tb = 20.0 / 3.0
    torch.testing.assert_close(t_star[0], torch.tensor([tb - 1, tb - 1, tb + 2, tb + 2]))
    torch.testing.assert_close(e[0], torch.tensor([(6 - tb + 1) / 20, (20 - tb + 1) / 20,
                                                   (4 - tb - 2) / 20, (10 - tb - 2) / 20]))
    # = [0.01667, 0.71667, -0.23333, 0.06667]: the true class is late (potentiate), neuron 2 of
    # the other class fired too early (anti-STDP), neuron 3 slightly late
    assert e[0].sign().tolist() == [1.0, 1.0, -1.0, 1.0]
    # sample 1: nobody fired -> t_base = cap = 18; class 1 targets 17, class 0 targets 20
    torch.testing.assert_close(t_star[1], torch.tensor([20.0, 20.0, 17.0, 17.0]))
    torch.testing.assert_close(e[1], torch.tensor([0.0, 0.0, 0.15, 0.15]))
    # updated neurons: sample 0 - target = first of class 0 to fire (neuron 0), winner = neuron 2
    # (class 1); sample 1 - nobody fired: the class-1 neuron with the higher membrane, no winner
    memb = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.5, 0.9, -0.2, 0.3]])
    mask = update_targets(times, memb, labels, classes, 20)
    assert mask.tolist() == [[True, False, True, False], [False, False, False, True]]
    # a correct winner is not updated twice: only the target
    mask = update_targets(times, memb, torch.tensor([1, 1]), classes, 20)
    assert mask[0].tolist() == [False, False, True, False]


@pytest.mark.parametrize("step", ["nominal", "state_aware"])
def test_pulses_only_in_target_and_winner_columns_gated_by_causal_inputs(step):
    """Rank-1 phases (nominal) and column writes (state-aware) give the same counts on an ideal
    device, whose local step is the nominal one everywhere."""
    # 3 classes x 2 neurons; weights 0.1 keep four neurons silent (8 x 0.1 < 1)
    m = toy_method(npc=2, n_classes=3, in_situ=True, step=step)
    w = torch.full((8, 6), 0.1)
    w[:, 1] = 0.3   # class 0, second neuron: fires at step 7 -> the target
    w[:, 3] = 0.55  # class 1: fires at step 3 -> the wrong winner
    m.set_weights(w, method="direct")
    assert m.firing_times(PAT_A)[0].tolist() == [20.0, 7.0, 20.0, 3.0, 20.0, 20.0]
    xb = m.xbar
    set0, reset0 = xb.plus.n_set.clone(), xb.plus.n_reset.clone()
    ref0 = xb.pulse_counts()["minus"].clone()
    st = m.train_batch(PAT_A, torch.tensor([0]))
    # rank-1: a causal and an other-rows phase per neuron; column writes: per polarity one
    # phase per column (both columns take SET and RESET)
    assert st.phases == 4
    n_set, n_reset = xb.plus.n_set - set0, xb.plus.n_reset - reset0
    touched = (n_set + n_reset).sum(0) > 0
    assert touched.tolist() == [False, True, False, True, False, False]
    assert torch.equal(xb.pulse_counts()["minus"], ref0)  # reference column untouched
    # t_base = mean(7, 3) = 5: target 4 for class 0 (e = +0.15), 6 for class 1 (e = -0.15);
    # |dw| = 0.15 * 0.5 = 0.075 = 3.75 pulses of 0.02 -> 4 pulses (round)
    causal_target = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0], dtype=torch.bool)  # fired at or before 7
    causal_winner = torch.tensor([1, 1, 0, 0, 0, 0, 0, 0], dtype=torch.bool)  # fired at or before 3
    assert torch.equal(n_set[:, 1], 4 * causal_target.long())      # late target: SET causal rows
    assert torch.equal(n_reset[:, 1], 4 * (~causal_target).long())  # RESET the others
    assert torch.equal(n_set[:, 3], 4 * (~causal_winner).long())   # early winner: anti-STDP
    assert torch.equal(n_reset[:, 3], 4 * causal_winner.long())


def test_lif_run_matches_closed_form_first_crossing():
    torch.manual_seed(0)
    m = SupervisedSTDP(5, 2, num_steps=16, neurons_per_class=3)
    x = torch.rand(7, 5)
    spikes = m.encode(x)
    v = torch.cumsum(spikes @ m.weights(), dim=0)  # IF, beta = 1, no reset before the first spike
    over = v > m.theta
    expected = torch.where(over.any(0), over.float().argmax(0).float(), torch.tensor(16.0))
    torch.testing.assert_close(m.firing_times(x), expected)


def test_in_situ_ideal_learns_iris_quickly():
    ds = load_dataset("iris", seed=0)
    params = STDPParams.for_dataset(False, ds.n_features)
    m = SupervisedSTDP(ds.n_features, ds.n_classes, params, device="ideal", seed=0)
    h = fit(m, ds, epochs=2, progress=False)
    assert h.test_acc.iloc[-1] > 0.85
    assert h.pulses.iloc[-1] > 0 and h.phases.sum() > 0
    assert accuracy(m, ds.x_test, ds.y_test) == h.test_acc.iloc[-1]


@pytest.mark.parametrize("field, value", [("a_plus", -0.01), ("a_minus", 0.05), ("neurons_per_class", 0),
                                          ("num_steps", 1), ("anneal", 1.5)])
def test_bad_parameters_name_the_field(field, value):
    with pytest.raises(ParameterError, match=field):
        STDPParams(**{field: value})
    with pytest.raises(ParameterError, match=field):
        SupervisedSTDP(4, 3, **{field: value})


def test_bad_construction_arguments():
    with pytest.raises(ValueError, match="mapping"):
        SupervisedSTDP(4, 3, mapping="differential")  # a mapping needs an in-situ device
    with pytest.raises(ValueError, match="n_classes"):
        SupervisedSTDP(4, 1)
    m = SupervisedSTDP(4, 3)
    with pytest.raises(ValueError, match=r"\[B, 4\]"):
        m.predict(torch.rand(2, 5))


def test_differential_pair_holds_signed_weights():
    ds = load_dataset("iris", seed=0)
    m = SupervisedSTDP(ds.n_features, ds.n_classes, device="ideal", mapping="differential", seed=0,
                       w_init_low=-0.2, w_init_high=0.6)
    assert m.params.signed and m.xbar.params.mapping == "differential"
    assert m.weights().min() < 0
    st = m.train_batch(ds.x_train[:16], ds.y_train[:16])
    assert st.pulses > 0 and st.seen == 16
    assert m.weights().min() >= -1 and m.weights().max() <= 1


def test_global_drift_compensation_keeps_firing_times_after_a_day():
    ds = load_dataset("iris", seed=0)
    params = STDPParams.for_dataset(False, ds.n_features)
    times = {}
    for comp in (True, False):
        m = SupervisedSTDP(ds.n_features, ds.n_classes, params, device="srtio3", seed=0, compensate_drift=comp)
        fit(m, ds, epochs=2, progress=False)
        before = m.firing_times(ds.x_test)
        m.advance(86400.0)
        times[comp] = (before, m.firing_times(ds.x_test))
    # srtio3 loses ~35 % of its conductance in a day: uncompensated neurons fire later or not at all
    shift = {}
    for comp, (b, a) in times.items():
        fired = b < 32  # the neurons the trained layer fires
        assert fired.float().mean() > 0.1
        shift[comp] = (a - b)[fired].abs().mean()
    # measured: 4.0 steps later without, 1.1 steps (device-to-device spread of nu) with
    assert shift[False] > 2.0
    assert shift[True] < 0.4 * shift[False]


def test_default_scheduler_is_state_aware_column_writes_on_native_crossbars():
    m = SupervisedSTDP(4, 2, device="ideal", program="direct")
    assert m.scheduler.params.step == "state_aware"
    assert SupervisedSTDP(4, 2, device="ideal", program="direct",
                          scheduler=SchedulerParams(step="nominal")).scheduler.params.step == "nominal"

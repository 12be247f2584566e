"""IR-drop models: closed forms, an independent nodal system, physics trends and input checks.

Every check here fails on a wrong implementation: hand-reduced and hand-written 2x2 circuits pin the
equations, conservation and monotonicity pin the physics, and the approximation is compared with the
exact solve.
"""

import numpy as np
import pytest
import torch

from memsnn.crossbar.irdrop import (
    ARRAY_TYPES,
    ir_drop_approx,
    solve_ir_drop_exact,
    solve_ir_drop_nodes,
)

F64 = torch.float64


def rand(shape, lo, hi, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=gen, dtype=F64) * (hi - lo) + lo


def rel_err(a, b):
    return ((a - b).norm() / b.norm()).item()


# --------------------------------------------------------------------------------- 2x2 networks
def test_exact_matches_hand_reduced_2x2_with_one_row_driven():
    """1T1R, only row 0 driven: row 1's transistors are off, so the circuit is series/parallel.

    From node r00 two branches go to ground: a = 1/g00' + 2 r_col (device 00, then both segments of
    column 0) and b = r_row + 1/g01' + 2 r_col (segment to r01, device 01, column 1). The source sees
    r_row in series with a || b.
    """
    g = torch.tensor([[50e-6, 20e-6], [80e-6, 30e-6]], dtype=F64)
    V, r_row, r_col, r_acc = 0.3, 70.0, 40.0, 5e3
    ge = 1.0 / (1.0 / g + r_acc)
    a = 1.0 / ge[0, 0].item() + 2 * r_col
    b = r_row + 1.0 / ge[0, 1].item() + 2 * r_col
    i_total = V / (r_row + a * b / (a + b))
    v_r00 = V - i_total * r_row
    expected = np.array([v_r00 / a, v_r00 / b])

    out = solve_ir_drop_exact(g, torch.tensor([[V, 0.0]], dtype=F64), r_row=r_row, r_col=r_col, r_access=r_acc)
    assert out.shape == (1, 2) and out.dtype == F64
    np.testing.assert_allclose(out[0].numpy(), expected, rtol=1e-12, atol=0)


def kcl_2x2(g, v, r_row, r_col, row1_driven=True):
    """Node voltages of the 2x2 crossbar from its 8 KCL equations, written out one by one.

    Unknowns x = [r00, r01, r10, r11, c00, c01, c10, c11]; each equation is the sum of the currents
    leaving that node. Returns the two sense currents G_c * c1j.
    """
    Gr, Gc = 1.0 / r_row, 1.0 / r_col
    (g00, g01), (g10, g11) = g
    V0, V1 = v
    d1 = 1.0 if row1_driven else 0.0  # a floating row 1 has no driver segment
    A = np.array([
        # r00: Gr(r00-V0) + Gr(r00-r01) + g00(r00-c00)
        [2 * Gr + g00, -Gr, 0, 0, -g00, 0, 0, 0],
        # r01: Gr(r01-r00) + g01(r01-c01)
        [-Gr, Gr + g01, 0, 0, 0, -g01, 0, 0],
        # r10: d1*Gr(r10-V1) + Gr(r10-r11) + g10(r10-c10)
        [0, 0, d1 * Gr + Gr + g10, -Gr, 0, 0, -g10, 0],
        # r11: Gr(r11-r10) + g11(r11-c11)
        [0, 0, -Gr, Gr + g11, 0, 0, 0, -g11],
        # c00: g00(c00-r00) + Gc(c00-c10)
        [-g00, 0, 0, 0, g00 + Gc, 0, -Gc, 0],
        # c01: g01(c01-r01) + Gc(c01-c11)
        [0, -g01, 0, 0, 0, g01 + Gc, 0, -Gc],
        # c10: g10(c10-r10) + Gc(c10-c00) + Gc(c10-0)
        [0, 0, -g10, 0, -Gc, 0, g10 + 2 * Gc, 0],
        # c11: g11(c11-r11) + Gc(c11-c01) + Gc(c11-0)
        [0, 0, 0, -g11, 0, -Gc, 0, g11 + 2 * Gc],
    ], dtype=float)
    rhs = np.array([Gr * V0, 0, d1 * Gr * V1, 0, 0, 0, 0, 0], dtype=float)
    x = np.linalg.solve(A, rhs)
    return Gc * x[6:8]


def test_exact_matches_written_out_kcl_2x2_both_rows_driven():
    g = torch.tensor([[50e-6, 20e-6], [80e-6, 30e-6]], dtype=F64)
    v = torch.tensor([[0.3, 0.1], [-0.2, 0.15]], dtype=F64)
    r_row, r_col, r_acc = 70.0, 40.0, 5e3
    ge = (1.0 / (1.0 / g + r_acc)).numpy()
    out = solve_ir_drop_exact(g, v, r_row=r_row, r_col=r_col, r_access=r_acc)
    for b in range(2):
        np.testing.assert_allclose(out[b].numpy(), kcl_2x2(ge, v[b].numpy(), r_row, r_col), rtol=1e-12)
    # the wire resistance matters here: the ideal answer is off by far more than the tolerance
    assert rel_err(out, v @ torch.from_numpy(ge)) > 1e-3


def test_exact_matches_written_out_kcl_2x2_floating_row_0t1r():
    g = torch.tensor([[50e-6, 20e-6], [80e-6, 30e-6]], dtype=F64)
    r_row, r_col = 70.0, 40.0
    out = solve_ir_drop_exact(g, torch.tensor([[0.3, 0.0]], dtype=F64), r_row=r_row, r_col=r_col, array_type="0T1R")
    np.testing.assert_allclose(out[0].numpy(), kcl_2x2(g.numpy(), (0.3, 0.0), r_row, r_col, row1_driven=False), rtol=1e-12)


# ------------------------------------------------------------------------------------ physics
@pytest.mark.parametrize("array_type", ARRAY_TYPES)
def test_output_falls_monotonically_with_wire_resistance(array_type):
    g = rand((8, 6), 40e-6, 140e-6, seed=1)
    v = rand((4, 8), 0.01, 0.2, seed=2)
    if array_type == "0T1R":
        v[:, ::3] = 0.0  # floating rows, so the sneak paths take part
    resistances = [0.0, 0.3, 1.0, 3.0, 10.0, 30.0]
    outs = torch.stack([solve_ir_drop_exact(g, v, r_row=r, r_col=r, array_type=array_type) for r in resistances])
    assert (outs.diff(dim=0) < 0).all(), "every column current must fall as the wires get more resistive"
    # and each wire on its own
    by_row = torch.stack([solve_ir_drop_exact(g, v, r_row=r, r_col=2.0, array_type=array_type) for r in resistances])
    by_col = torch.stack([solve_ir_drop_exact(g, v, r_row=2.0, r_col=r, array_type=array_type) for r in resistances])
    assert (by_row.sum(-1).diff(dim=0) < 0).all() and (by_col.sum(-1).diff(dim=0) < 0).all()


@pytest.mark.parametrize("array_type", ARRAY_TYPES)
def test_zero_wire_resistance_gives_ideal_vmm(array_type):
    g = rand((7, 5), 40e-6, 140e-6, seed=3)
    v = rand((6, 7), -0.2, 0.2, seed=4)
    v[1, 2] = 0.0
    v[3, :4] = 0.0
    exact = solve_ir_drop_exact(g, v, r_row=0.0, r_col=0.0, array_type=array_type)
    torch.testing.assert_close(exact, v @ g, rtol=1e-13, atol=0)
    assert torch.equal(ir_drop_approx(g, v, r_row=0.0, r_col=0.0), v @ g)
    g32, v32 = g.float(), v.float()
    assert torch.equal(ir_drop_approx(g32, v32, r_row=0, r_col=0, iterations=5), v32 @ g32)
    # with an access transistor the ideal answer uses g_eff = 1 / (1/g + r_access)
    g_eff = 1.0 / (1.0 / g + 2e3)
    torch.testing.assert_close(
        solve_ir_drop_exact(g, v, r_row=0, r_col=0, r_access=2e3), v @ g_eff, rtol=1e-13, atol=0
    )
    torch.testing.assert_close(ir_drop_approx(g, v, r_row=0, r_col=0, r_access=2e3), v @ g_eff, rtol=1e-15, atol=0)


@pytest.mark.parametrize("r_row, r_col", [(0.0, 5.0), (5.0, 0.0)])
def test_one_ideal_wire_is_merged_not_divided(r_row, r_col):
    """r = 0 on one wire only: finite, between the ideal and both-resistive answers, matches the limit."""
    g = rand((6, 5), 40e-6, 140e-6, seed=5)
    v = rand((3, 6), 0.0, 0.2, seed=6)
    out = solve_ir_drop_exact(g, v, r_row=r_row, r_col=r_col)
    near = solve_ir_drop_exact(g, v, r_row=max(r_row, 1e-9), r_col=max(r_col, 1e-9))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, near, rtol=1e-7, atol=0)
    assert (out < v @ g).all()


@pytest.mark.parametrize("array_type", ARRAY_TYPES)
@pytest.mark.parametrize("r_row, r_col", [(2.0, 3.0), (0.0, 3.0), (2.0, 0.0)])
def test_current_conservation(array_type, r_row, r_col):
    g = rand((9, 7), 40e-6, 140e-6, seed=7)
    v = rand((5, 9), -0.2, 0.2, seed=8)
    v[0, 3] = 0.0
    v[2, ::2] = 0.0
    sol = solve_ir_drop_nodes(g, v, r_row=r_row, r_col=r_col, array_type=array_type, r_access=1e3)
    scale = sol.column_currents.abs().sum()
    assert (sol.source_currents.sum(-1) - sol.column_currents.sum(-1)).abs().max() < 1e-10 * scale
    # undriven rows deliver nothing, and the node solve agrees with the plain one
    assert (sol.source_currents[v == 0] == 0).all()
    torch.testing.assert_close(
        sol.column_currents,
        solve_ir_drop_exact(g, v, r_row=r_row, r_col=r_col, array_type=array_type, r_access=1e3),
        rtol=1e-13, atol=0,
    )


def test_0t1r_all_rows_driven_equals_1t1r_without_access_resistance():
    g = rand((10, 8), 40e-6, 140e-6, seed=9)
    v = rand((4, 10), 0.01, 0.2, seed=10)
    one = solve_ir_drop_exact(g, v, r_row=3.0, r_col=2.0, array_type="1T1R", r_access=0.0)
    zero = solve_ir_drop_exact(g, v, r_row=3.0, r_col=2.0, array_type="0T1R", r_access=1e6)  # ignored
    torch.testing.assert_close(zero, one, rtol=1e-12, atol=0)


def test_floating_row_leaks_sneak_current_into_a_dark_column():
    """Column 1 has no conducting device on the driven rows, so a 1T1R array senses nothing there.

    In 0T1R the floating row 1 joins the columns: current leaves column 0 at row 1, crosses the
    floating row wire and reaches column 1's sense amplifier. Column 1 therefore rises from 0, column 0
    loses current, and (all drivers at one voltage) the total can only grow (Rayleigh monotonicity).
    """
    g = torch.tensor([[100e-6, 0.0], [100e-6, 100e-6], [100e-6, 0.0]], dtype=F64)
    v = torch.tensor([[0.2, 0.0, 0.2]], dtype=F64)
    for r in (1.0, 10.0, 100.0):
        one = solve_ir_drop_exact(g, v, r_row=r, r_col=r, array_type="1T1R")
        zero = solve_ir_drop_exact(g, v, r_row=r, r_col=r, array_type="0T1R")
        assert one[0, 1] == 0.0
        assert zero[0, 1] > 1e-5 * zero[0, 0]
        assert zero[0, 0] < one[0, 0]
        assert zero.sum() >= one.sum() * (1 - 1e-12)
    # with an ideal column wire every column node is at 0 V: no sneak path
    torch.testing.assert_close(
        solve_ir_drop_exact(g, v, r_row=5.0, r_col=0.0, array_type="0T1R"),
        solve_ir_drop_exact(g, v, r_row=5.0, r_col=0.0, array_type="1T1R"),
        rtol=1e-13, atol=0,
    )


def test_floating_row_without_conducting_devices_is_harmless():
    """A floating 0T1R row whose devices are all at 0 S is an isolated wire: no current, no
    singular matrix; its (undefined) voltage is reported as NaN."""
    g = rand((4, 3), 40e-6, 140e-6, seed=26)
    g[2] = 0.0
    v = rand((2, 4), 0.01, 0.2, seed=27)
    v[:, 2] = 0.0
    zero = solve_ir_drop_nodes(g, v, r_row=3.0, r_col=3.0, array_type="0T1R")
    torch.testing.assert_close(zero.column_currents, solve_ir_drop_exact(g, v, r_row=3.0, r_col=3.0), rtol=1e-12, atol=0)
    assert torch.isnan(zero.row_voltages[:, 2]).all() and torch.isfinite(zero.column_voltages).all()


def test_distinct_active_row_sets_in_one_batch_match_one_by_one():
    g = rand((6, 4), 40e-6, 140e-6, seed=11)
    v = rand((6, 6), 0.01, 0.2, seed=12)
    v[1, 0] = v[4, 0] = 0.0
    v[2, 3:] = 0.0
    for array_type in ARRAY_TYPES:
        batch = solve_ir_drop_exact(g, v, r_row=4.0, r_col=4.0, array_type=array_type)
        single = torch.cat([solve_ir_drop_exact(g, v[b : b + 1], r_row=4.0, r_col=4.0, array_type=array_type) for b in range(6)])
        torch.testing.assert_close(batch, single, rtol=1e-14, atol=0)


def test_exact_returns_on_g_dtype():
    g = rand((4, 3), 40e-6, 140e-6, seed=13).float()
    out = solve_ir_drop_exact(g, torch.full((2, 4), 0.1, dtype=F64), r_row=1.0, r_col=1.0)
    assert out.dtype == torch.float32 and out.device == g.device and out.shape == (2, 3)


# ------------------------------------------------------------------------------- approximation
def test_approx_converges_to_exact_1t1r():
    """Run long enough, the approximation solves the same 1T1R equations, inactive rows included."""
    g = rand((12, 10), 40e-6, 140e-6, seed=14)
    v = rand((5, 12), 0.0, 0.2, seed=15)
    v[0, 4] = 0.0
    v[3, ::2] = 0.0
    exact = solve_ir_drop_exact(g, v, r_row=10.0, r_col=5.0, r_access=2e3)
    approx = ir_drop_approx(g, v, r_row=10.0, r_col=5.0, r_access=2e3, iterations=60)
    torch.testing.assert_close(approx, exact, rtol=1e-10, atol=0)


def test_approx_is_conjugate_gradients_exact_after_n_steps():
    """CG on n device unknowns terminates in n steps: a 2x2 array (4 unknowns) is exact after 4,
    even with wires as resistive as the devices (a fixed-point or steepest-descent scheme is not)."""
    g = torch.tensor([[50e-6, 20e-6], [80e-6, 30e-6]], dtype=F64)
    v = torch.tensor([[0.3, 0.1], [-0.2, 0.15]], dtype=F64)
    exact = solve_ir_drop_exact(g, v, r_row=2e4, r_col=1e4)
    torch.testing.assert_close(ir_drop_approx(g, v, r_row=2e4, r_col=1e4, iterations=4), exact, rtol=1e-9, atol=0)
    assert rel_err(ir_drop_approx(g, v, r_row=2e4, r_col=1e4, iterations=2), exact) > 1e-6


def test_approx_accurate_for_small_rgn2_and_error_grows_with_wire_resistance():
    # SrTiO3-like array, r g_max N^2 ~ 1e-4: within 1e-9 after two iterations
    g = rand((32, 32), 4e-9, 100e-9, seed=16)
    v = rand((4, 32), 0.0, 0.2, seed=17)
    assert rel_err(ir_drop_approx(g, v, r_row=1.0, r_col=1.0), solve_ir_drop_exact(g, v, r_row=1.0, r_col=1.0)) < 1e-9
    # RRAM-like array: the error of a fixed number of iterations grows with the wire resistance
    g = rand((16, 16), 40e-6, 140e-6, seed=18)
    v = rand((4, 16), 0.0, 0.2, seed=19)
    for iterations in (1, 2):
        errs = [
            rel_err(ir_drop_approx(g, v, r_row=r, r_col=r, iterations=iterations), solve_ir_drop_exact(g, v, r_row=r, r_col=r))
            for r in (0.1, 1.0, 10.0, 30.0)
        ]
        assert all(b > 2 * a for a, b in zip(errs, errs[1:])), errs
        assert errs[0] < 1e-5
    # more iterations help, and any iteration beats the ideal (uncorrected) answer
    exact = solve_ir_drop_exact(g, v, r_row=10.0, r_col=10.0)
    errs = [rel_err(ir_drop_approx(g, v, r_row=10.0, r_col=10.0, iterations=k), exact) for k in (0, 1, 2, 4)]
    assert errs == sorted(errs, reverse=True) and errs[-1] < 1e-3 * errs[0], errs


def test_approx_leading_dims_equal_per_tile_calls():
    g = rand((3, 10, 7), 40e-6, 140e-6, seed=20)
    v = rand((3, 5, 10), 0.0, 0.2, seed=21)
    v[1, 2, :3] = 0.0
    out = ir_drop_approx(g, v, r_row=2.0, r_col=3.0, iterations=3)
    assert out.shape == (3, 5, 7)
    for t in range(3):
        torch.testing.assert_close(out[t], ir_drop_approx(g[t], v[t], r_row=2.0, r_col=3.0, iterations=3), rtol=1e-13, atol=0)
    # one input batch broadcast over the tiles
    shared = ir_drop_approx(g, v[0], r_row=2.0, r_col=3.0)
    assert shared.shape == (3, 5, 7)
    torch.testing.assert_close(shared[2], ir_drop_approx(g[2], v[0], r_row=2.0, r_col=3.0), rtol=1e-13, atol=0)


def test_approx_chunked_over_inputs_equals_one_shot(monkeypatch):
    import memsnn.crossbar.irdrop as irdrop

    g = rand((2, 9, 6), 40e-6, 140e-6, seed=28)
    v = rand((2, 7, 9), 0.0, 0.2, seed=29)
    v[0, 3, 2] = 0.0
    whole = ir_drop_approx(g, v, r_row=3.0, r_col=2.0, iterations=3)
    monkeypatch.setitem(irdrop._CHUNK_ELEMENTS, "cpu", 2 * 9 * 6 * 3)  # three inputs per chunk
    torch.testing.assert_close(ir_drop_approx(g, v, r_row=3.0, r_col=2.0, iterations=3), whole, rtol=1e-13, atol=0)


def test_approx_float32_close_to_float64():
    g = rand((64, 48), 40e-6, 140e-6, seed=22)
    v = rand((8, 64), 0.0, 0.2, seed=23)
    ref = ir_drop_approx(g, v, r_row=1.0, r_col=1.0, iterations=4)
    out = ir_drop_approx(g.float(), v.float(), r_row=1.0, r_col=1.0, iterations=4)
    assert out.dtype == torch.float32
    assert rel_err(out.double(), ref) < 1e-5


@pytest.mark.cuda
def test_approx_on_cuda_matches_cpu():
    g = rand((2, 128, 96), 40e-6, 140e-6, seed=24)
    v = rand((2, 16, 128), 0.0, 0.2, seed=25)
    cpu = ir_drop_approx(g, v, r_row=1.0, r_col=1.0, iterations=4)
    gpu = ir_drop_approx(g.cuda(), v.cuda(), r_row=1.0, r_col=1.0, iterations=4)
    assert gpu.is_cuda
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-10, atol=0)
    exact = solve_ir_drop_exact(g[0].cuda(), v[0].cuda(), r_row=1.0, r_col=1.0)
    assert exact.is_cuda


# --------------------------------------------------------------------------------- bad input
G = torch.full((3, 2), 50e-6, dtype=F64)
V = torch.full((4, 3), 0.1)


@pytest.mark.parametrize("fn", [solve_ir_drop_exact, ir_drop_approx])
@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(r_row=-1.0, r_col=1.0), r"r_row.*-1\.0"),
        (dict(r_row=1.0, r_col=float("inf")), r"r_col.*inf"),
        (dict(r_row=1.0, r_col=float("nan")), r"r_col.*nan"),
        (dict(r_row=1.0, r_col=1.0, r_access=-5.0), r"r_access.*-5\.0"),
    ],
)
def test_bad_resistance_is_named(fn, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        fn(G, V, **kwargs)


@pytest.mark.parametrize("fn", [solve_ir_drop_exact, ir_drop_approx])
def test_bad_tensors_are_named(fn):
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(4, 5\)"):
        fn(G, torch.zeros(4, 5), r_row=1.0, r_col=1.0)
    g = G.clone()
    g[1, 0] = float("nan")
    with pytest.raises(ValueError, match=r"g contains NaN.*\[1, 0\]"):
        fn(g, V, r_row=1.0, r_col=1.0)
    v = V.clone()
    v[2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"v_in contains NaN.*\[2, 1\]"):
        fn(G, v, r_row=1.0, r_col=1.0)
    g = G.clone()
    g[2, 1] = -1e-6
    with pytest.raises(ValueError, match=r"g\[2, 1\].*-1e-06"):
        fn(g, V, r_row=1.0, r_col=1.0)


def test_bad_array_type_lists_the_allowed_ones():
    with pytest.raises(ValueError, match=r"'2T1R'.*'1T1R'.*'0T1R'"):
        solve_ir_drop_exact(G, V, r_row=1.0, r_col=1.0, array_type="2T1R")


def test_bad_shapes_and_iterations():
    with pytest.raises(ValueError, match=r"\(3,\)"):
        solve_ir_drop_exact(G, torch.zeros(3), r_row=1.0, r_col=1.0)  # the exact solve wants [B, R]
    with pytest.raises(ValueError, match=r"\(2, 3, 2\).*\(3, 4, 3\)"):
        ir_drop_approx(torch.zeros(2, 3, 2), torch.zeros(3, 4, 3), r_row=1.0, r_col=1.0)
    with pytest.raises(ValueError, match=r"iterations.*-1"):
        ir_drop_approx(G, V, r_row=1.0, r_col=1.0, iterations=-1)

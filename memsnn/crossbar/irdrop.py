"""IR drop in a memristor crossbar: exact nodal analysis and a fast vectorised approximation.

Circuit
-------
A crossbar of ``R`` rows (inputs) by ``C`` columns (outputs); conductances ``g[i, j]`` (siemens) are
stored ``[rows = inputs, cols = outputs]``, the physical orientation. Device ``(i, j)`` joins the
row-wire node ``r(i, j)`` to the column-wire node ``c(i, j)``.

* Row ``i`` is driven at its ``j = 0`` end by a voltage source ``v_in[b, i]`` (volt) through one wire
  segment of resistance ``r_row`` (ohm); consecutive row nodes ``r(i, j)``-``r(i, j+1)`` are joined
  by ``r_row``.
* Column ``j`` is sensed at its ``i = R-1`` end by a virtual-ground sense amplifier held at 0 V,
  through one segment ``r_col`` (ohm); consecutive column nodes ``c(i, j)``-``c(i+1, j)`` are
  joined by ``r_col``.
* The output of column ``j`` is the current (ampere) flowing into its sense amplifier.

Array types (:data:`ARRAY_TYPES`)
* ``"1T1R"``: every device has an access transistor of on-resistance ``r_access`` (ohm) in series,
  so the device branch conducts ``g_eff = 1 / (1/g + r_access) = g / (1 + g r_access)``. A row whose
  input is exactly 0 has its transistors off: its devices are disconnected (no sneak paths).
* ``"0T1R"``: a passive array, ``g_eff = g`` (``r_access`` is ignored). A row whose input is exactly 0
  is left floating (driver in high impedance), so current can sneak through it from one column to
  another. Rows with a nonzero input are driven.

Nodal equations (Kirchhoff's current law at every unknown node; all conductances in siemens,
``G_r = 1/r_row``, ``G_c = 1/r_col``, terms with an index outside the array are dropped)::

    row node r(i, j):   G_r (V_r[i,j-1] - V_r[i,j]) + G_r (V_r[i,j+1] - V_r[i,j])
                        + g_eff[i,j] (V_c[i,j] - V_r[i,j]) = 0,     with V_r[i,-1] = v_in[b,i]
                        (driven rows; a floating row has no j = -1 segment)
    column node c(i, j): G_c (V_c[i-1,j] - V_c[i,j]) + G_c (V_c[i+1,j] - V_c[i,j])
                        + g_eff[i,j] (V_r[i,j] - V_c[i,j]) = 0,     with V_c[R,j] = 0 V
    output:             I_out[b, j] = G_c V_c[R-1, j]  =  sum_i g_eff[i,j] (V_r[i,j] - V_c[i,j])

The system ``A V = B v`` is a weighted graph Laplacian with the source and ground nodes eliminated:
symmetric positive definite (an M-matrix). A zero wire resistance is an ideal wire: the nodes it
joins are merged (``r_row = 0``: every node of a driven row *is* its source, a floating row is one
node; ``r_col = 0``: every column node is the virtual ground), so nothing is divided by zero. With
``r_row = r_col = 0`` the result is the ideal ``I_out = v_in @ g_eff``.

Device-voltage form (used by the approximation; exact for ``"1T1R"``)
-------------------------------------------------------------------
In a 1T1R array every row wire and every column wire is a chain that carries only the currents of
its own devices ``I[i, j] = g_eff[i, j] u[i, j]`` (``u`` = voltage across device branch, volt). The
current in row segment ``k`` (``k = 0`` is the driver segment) and in column segment ``k``
(``k = R-1`` ends at the sense amplifier) are reverse / forward cumulative sums, and the node
voltages are cumulative sums of the segment drops::

    J_r[i, k] = sum_{j' >= k} I[i, j']              V_r[i, j] = v_in[i] - r_row sum_{k <= j} J_r[i, k]
    J_c[k, j] = sum_{i' <= k} I[i', j]              V_c[i, j] =          r_col sum_{k >= i} J_c[k, j]

so ``V_r - V_c = v_in - K(I)`` with the linear "wire operator" ``K = r_row L_row + r_col L_col``,
``(L_row I)[i,j] = sum_j' (min(j, j') + 1) I[i,j']`` and ``(L_col I)[i,j] = sum_i' (R - max(i, i'))
I[i',j]`` (both symmetric positive semidefinite). The exact 1T1R solution solves::

    u + K(G u) = v_in        (G = g_eff, zeroed on rows whose input is 0)        (*)

``(*)`` is self-adjoint and positive definite in the ``G``-weighted inner product ``<a, b>_G =
sum a G b``. For an ``N x N`` array with ``r_row = r_col = r`` the
largest eigenvalue of ``K`` is ``~0.82 r N^2`` (each chain kernel contributes ``~(2N+1)^2 / pi^2``
``~ 0.41 N^2``), so the plain fixed point ``u <- v_in - K(G u)`` (start: ideal ``u = v_in``)
converges only while ``0.82 r g N^2 < 1`` (``g`` a typical conductance) and diverges beyond.
:func:`ir_drop_approx` instead runs ``iterations`` steps of conjugate gradients on ``(*)`` in that
inner product, started from the ideal solution. CG picks, in the energy norm, the best combination
of the first ``k`` fixed-point directions (the Krylov space), so it converges for every wire
resistance, error ``<~ 2 ((sqrt(kappa) - 1) / (sqrt(kappa) + 1))^k`` with ``kappa <= 1 + 0.82 r
g_max N^2``, and is exact after as many steps as there are device unknowns. With ``iterations = 0``
it returns the ideal ``v_in @ g_eff``. The iteration, per input vector (``s`` = KVL residual, volt)::

    u_0 = v_in,   s_0 = v_in - u_0 - K(G u_0),   p_0 = s_0
    q_k = p_k + K(G p_k)
    a_k = <s_k, s_k>_G / <p_k, q_k>_G
    u_{k+1} = u_k + a_k p_k,   s_{k+1} = s_k - a_k q_k
    p_{k+1} = s_{k+1} + (<s_{k+1}, s_{k+1}>_G / <s_k, s_k>_G) p_k
    I_out[b, j] = sum_i G[i, j] u_K[i, j]          (after K = ``iterations`` steps)

(Devices with ``G = 0`` drop out of every inner product and of the output, so the semi-definite
weight is harmless.)

Each CG step: ``G p`` -> wire operator (two cumulative sums along the rows, two along the columns,
plus flips) -> two inner products per input vector; all ``O(B R C)``, vectorised over tiles and
inputs (no loop over array elements).
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

__all__ = [
    "ARRAY_TYPES",
    "IRDropSolution",
    "ir_drop_approx",
    "solve_ir_drop_exact",
    "solve_ir_drop_nodes",
]

ARRAY_TYPES = ("1T1R", "0T1R")
"""Allowed ``array_type`` values: ``"1T1R"`` (access transistor per device) and ``"0T1R"`` (passive)."""


class IRDropSolution(NamedTuple):
    """Full result of :func:`solve_ir_drop_nodes` (float64 tensors on ``g``'s device)."""

    column_currents: torch.Tensor
    """``[B, C]`` ampere: current into each column's sense amplifier."""
    source_currents: torch.Tensor
    """``[B, R]`` ampere: current delivered by each row driver (0 for floating / off rows)."""
    row_voltages: torch.Tensor
    """``[B, R, C]`` volt: row-wire node voltages. Rows whose transistors are off (1T1R) sit at their
    driver's 0 V; a floating 0T1R row that touches no conducting device is undefined (NaN)."""
    column_voltages: torch.Tensor
    """``[B, R, C]`` volt: column-wire node voltages (0 everywhere when ``r_col = 0``)."""


# --------------------------------------------------------------------------------------- validation
def _resistance(name: str, value) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar resistance in ohm, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number (ohm), got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0.0:
        raise ValueError(f"{name} must be a finite resistance >= 0 ohm, got {name}={value!r}")
    return value


def _first_bad(mask: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(k) for k in torch.nonzero(mask)[0].tolist())


def _check_finite(name: str, x: torch.Tensor, unit: str) -> None:
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        idx = _first_bad(bad)
        what = "NaN" if bool(torch.isnan(x).any()) else "non-finite values"
        raise ValueError(
            f"{name} contains {what} ({int(bad.sum())} of {x.numel()} entries, first at {name}{list(idx)} = "
            f"{x[idx].item()!r}); {name} must be finite ({unit})"
        )


def _as_tensor(name: str, x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except Exception as exc:  # pragma: no cover - torch's own message is kept
            raise TypeError(f"{name} must be a torch tensor, got {type(x).__name__}") from exc
    if x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{name} must be a real tensor, got dtype {x.dtype}")
    return x


def _check_g_v(g, v_in, *, batched: bool) -> tuple[torch.Tensor, torch.Tensor]:
    g = _as_tensor("g", g)
    v_in = _as_tensor("v_in", v_in)
    if not g.is_floating_point():
        raise TypeError(f"g must be a floating-point tensor of conductances (siemens), got dtype {g.dtype}")
    if batched:
        if g.dim() < 2 or v_in.dim() < 2:
            raise ValueError(
                f"g must be [..., R, C] and v_in [..., B, R]; got g of shape {tuple(g.shape)} and v_in of "
                f"shape {tuple(v_in.shape)}"
            )
    elif g.dim() != 2 or v_in.dim() != 2:
        raise ValueError(
            f"g must be [R, C] and v_in [B, R]; got g of shape {tuple(g.shape)} and v_in of shape "
            f"{tuple(v_in.shape)}"
        )
    if g.shape[-2] != v_in.shape[-1]:
        raise ValueError(
            f"shape mismatch: g of shape {tuple(g.shape)} has R={g.shape[-2]} rows but v_in of shape "
            f"{tuple(v_in.shape)} has {v_in.shape[-1]} inputs in its last dim; need g [..., R, C] and "
            f"v_in [..., B, R]"
        )
    if batched:
        try:
            torch.broadcast_shapes(g.shape[:-2], v_in.shape[:-2])
        except RuntimeError:
            raise ValueError(
                f"leading dims do not broadcast: g of shape {tuple(g.shape)} (leading {tuple(g.shape[:-2])}) "
                f"and v_in of shape {tuple(v_in.shape)} (leading {tuple(v_in.shape[:-2])})"
            ) from None
    _check_finite("g", g, "siemens")
    _check_finite("v_in", v_in, "volt")
    neg = g < 0
    if bool(neg.any()):
        idx = _first_bad(neg)
        raise ValueError(f"conductances must be >= 0 siemens; g{list(idx)} = {g[idx].item()!r}")
    return g, v_in


def _check_array_type(array_type) -> str:
    if array_type not in ARRAY_TYPES:
        raise ValueError(f"unknown array_type={array_type!r}; allowed: {', '.join(map(repr, ARRAY_TYPES))}")
    return array_type


# ------------------------------------------------------------------------------------- exact solve
def _solve_group(
    g_eff: np.ndarray,
    active: np.ndarray,
    v: np.ndarray,
    r_row: float,
    r_col: float,
    passive: bool,
    want_nodes: bool,
):
    """Solve one set of active rows for all its inputs.

    ``g_eff`` [R, C] S, ``active`` [R] bool, ``v`` [n, R] V. Returns column currents [n, C] and, with
    ``want_nodes``, source currents [n, R], row and column node voltages [n, R, C].
    """
    R, C = g_eff.shape
    nb = v.shape[0]
    ground = R  # known node index; sources are known nodes 0 .. R-1
    driven = active
    if passive:  # floating rows take part unless they touch no conducting device at all
        present = active | (g_eff > 0).any(axis=1)
    else:
        present = active
    floating = present & ~driven
    pr = np.flatnonzero(present)
    dr = np.flatnonzero(driven)

    # node ids: >= 0 unknown, -1 - k known node k (source k < R, ground R), ABSENT for no node
    absent = np.iinfo(np.int64).min
    row_id = np.full((R, C), absent, dtype=np.int64)
    n = 0
    if r_row > 0:
        row_id[pr] = np.arange(pr.size * C, dtype=np.int64).reshape(pr.size, C)
        n = pr.size * C
    else:
        fl = np.flatnonzero(floating)
        row_id[dr] = (-1 - dr)[:, None]
        row_id[fl] = (n + np.arange(fl.size, dtype=np.int64))[:, None]
        n += fl.size
    if r_col > 0:
        col_id = n + np.arange(R * C, dtype=np.int64).reshape(R, C)
        n += R * C
    else:
        col_id = np.full((R, C), -1 - ground, dtype=np.int64)

    # edges (a, b, conductance)
    dev = present[:, None] & (g_eff > 0)
    ea, eb, ec = [row_id[dev]], [col_id[dev]], [g_eff[dev]]
    if r_row > 0:
        seg = row_id[pr]
        ea += [seg[:, :-1].ravel(), -1 - dr]
        eb += [seg[:, 1:].ravel(), row_id[dr, 0]]
        ec.append(np.full(seg[:, :-1].size + dr.size, 1.0 / r_row))
    if r_col > 0:
        ea += [col_id[:-1].ravel(), col_id[-1]]
        eb += [col_id[1:].ravel(), np.full(C, -1 - ground, dtype=np.int64)]
        ec.append(np.full((R - 1) * C + C, 1.0 / r_col))
    a, b, c = np.concatenate(ea), np.concatenate(eb), np.concatenate(ec)

    vk = np.zeros((R + 1, nb))  # known voltages: the sources, then ground
    vk[:R] = v.T
    if n > 0:
        ua, ub = a >= 0, b >= 0
        both = ua & ub
        rows = np.concatenate([a[ua], b[ub], a[both], b[both]])
        cols = np.concatenate([a[ua], b[ub], b[both], a[both]])
        vals = np.concatenate([c[ua], c[ub], -c[both], -c[both]])
        A = sp.csc_matrix((vals, (rows, cols)), shape=(n, n))  # duplicates are summed
        ka, kb = ua & ~ub, ub & ~ua
        Bk = sp.csr_matrix(
            (np.concatenate([c[ka], c[kb]]), (np.concatenate([a[ka], b[kb]]), np.concatenate([-1 - b[ka], -1 - a[kb]]))),
            shape=(n, R + 1),
        )
        rhs = np.asarray(Bk @ vk)
        # SPD M-matrix: symmetric ordering, no pivoting needed (a Cholesky in LU clothing)
        lu = spla.splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
        x = lu.solve(rhs)
    else:
        x = np.zeros((0, nb))
    allv = np.concatenate([x, vk], axis=0)  # unknowns, then known nodes

    def voltages(ids: np.ndarray) -> np.ndarray:  # ids [...] -> [..., nb]; absent -> NaN
        idx = np.where(ids >= 0, ids, n + (-1 - ids))
        ok = ids != absent
        out = np.full(ids.shape + (nb,), np.nan)
        out[ok] = allv[idx[ok]]
        return out

    if r_col > 0:
        i_col = voltages(col_id[-1]).T / r_col  # [nb, C]
        vr = vc = None
    else:
        vr = voltages(row_id)  # [R, C, nb]
        gd = np.where(dev, g_eff, 0.0)
        i_col = np.einsum("rc,rcb->bc", gd, np.nan_to_num(vr))
    if not want_nodes:
        return i_col, None, None, None

    if vr is None:
        vr = voltages(row_id)
    vc = voltages(col_id)
    if not passive:  # rows whose transistors are off sit at their driver (0 V)
        off = ~present
        vr[off] = v.T[off][:, None, :]
    i_src = np.zeros((nb, R))
    if r_row > 0:
        i_src[:, dr] = (v[:, dr] - vr[dr, 0].T) / r_row
    else:
        gd = np.where(dev, g_eff, 0.0)
        i_src[:, dr] = np.einsum("rc,rcb->br", gd[dr], v.T[dr][:, None, :] - vc[dr])
    return i_col, i_src, np.moveaxis(vr, -1, 0), np.moveaxis(vc, -1, 0)


def _exact(g, v_in, r_row, r_col, array_type, r_access, want_nodes):
    g, v_in = _check_g_v(g, v_in, batched=False)
    r_row = _resistance("r_row", r_row)
    r_col = _resistance("r_col", r_col)
    r_access = _resistance("r_access", r_access)
    array_type = _check_array_type(array_type)

    gn = g.detach().to("cpu", torch.float64).numpy()
    vn = v_in.detach().to("cpu", torch.float64).numpy()
    passive = array_type == "0T1R"
    g_eff = gn if passive else gn / (1.0 + gn * r_access)
    B, R = vn.shape
    C = gn.shape[1]
    i_col = np.zeros((B, C))
    i_src = np.zeros((B, R)) if want_nodes else None
    vr = np.zeros((B, R, C)) if want_nodes else None
    vc = np.zeros((B, R, C)) if want_nodes else None
    if B and R and C:
        active = vn != 0.0
        masks, inverse = np.unique(active, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        for k, mask in enumerate(masks):  # one factorisation per distinct set of active rows
            sel = np.flatnonzero(inverse == k)
            ic, isrc, nr, nc = _solve_group(g_eff, mask, vn[sel], r_row, r_col, passive, want_nodes)
            i_col[sel] = ic
            if want_nodes:
                i_src[sel], vr[sel], vc[sel] = isrc, nr, nc
    return i_col, i_src, vr, vc


def solve_ir_drop_exact(g, v_in, *, r_row, r_col, array_type="1T1R", r_access=0.0) -> torch.Tensor:
    """Column currents of a crossbar with wire resistance, by exact nodal analysis.

    Args:
        g: ``[R, C]`` device conductances, siemens (``[rows = inputs, cols = outputs]``), any
            device/dtype, ``>= 0``.
        v_in: ``[B, R]`` row input voltages, volt. A row whose input is exactly 0 is switched off
            (``"1T1R"``) or left floating (``"0T1R"``).
        r_row: resistance of one row-wire segment (including the driver segment), ohm, ``>= 0``.
        r_col: resistance of one column-wire segment (including the sense segment), ohm, ``>= 0``.
        array_type: ``"1T1R"`` or ``"0T1R"`` (see the module docstring).
        r_access: access-transistor on-resistance in series with each device, ohm (1T1R only).

    Returns:
        ``[B, C]`` currents into the column sense amplifiers, ampere, on ``g``'s device and dtype.

    The conductance matrix of the unknown node voltages is assembled with :mod:`scipy.sparse` in
    float64, factorised once per distinct set of active (nonzero-input) rows with
    :func:`scipy.sparse.linalg.splu`, and all inputs of that set are solved in one call. Zero wire resistances merge nodes. Cost for an ``N x N`` array is
    dominated by the sparse factorisation of ``~2 N^2`` unknowns (see ``benchmarks/irdrop_scaling.py``).
    """
    i_col, *_ = _exact(g, v_in, r_row, r_col, array_type, r_access, want_nodes=False)
    g = torch.as_tensor(g)
    return torch.from_numpy(i_col).to(device=g.device, dtype=g.dtype)


def solve_ir_drop_nodes(g, v_in, *, r_row, r_col, array_type="1T1R", r_access=0.0) -> IRDropSolution:
    """Like :func:`solve_ir_drop_exact` but returns every node voltage and the source currents.

    All four tensors of the :class:`IRDropSolution` are float64 on ``g``'s device, shapes ``[B, C]``,
    ``[B, R]``, ``[B, R, C]``, ``[B, R, C]`` (A, A, V, V). Useful for checks (KCL: the sources
    deliver what the sense amplifiers receive) and voltage maps.
    """
    i_col, i_src, vr, vc = _exact(g, v_in, r_row, r_col, array_type, r_access, want_nodes=True)
    dev = torch.as_tensor(g).device
    return IRDropSolution(*(torch.from_numpy(t).to(dev) for t in (i_col, i_src, vr, vc)))


# ---------------------------------------------------------------------------------- approximation
def _rev_cumsum(x: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.flip(torch.cumsum(torch.flip(x, (dim,)), dim), (dim,))


def _wire_operator(i_dev: torch.Tensor, r_row: float, r_col: float) -> torch.Tensor:
    """``K(I)``: voltage lost across the wires, ``v_in - (V_r - V_c)``, for device currents ``I``.

    ``i_dev`` ``[..., R, C]`` ampere -> ``[..., R, C]`` volt. Row drop ``r_row * cumsum_j(revcumsum_j
    I)`` (driver at j = 0) plus column rise ``r_col * revcumsum_i(cumsum_i I)`` (sense at i = R-1).
    """
    out = None
    if r_row > 0:
        out = r_row * torch.cumsum(_rev_cumsum(i_dev, -1), -1)
    if r_col > 0:
        rise = r_col * _rev_cumsum(torch.cumsum(i_dev, -2), -2)
        out = rise if out is None else out + rise
    return out if out is not None else torch.zeros_like(i_dev)


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    ok = den > 0
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(num))


def ir_drop_approx(g, v_in, *, r_row, r_col, r_access=0.0, iterations=2) -> torch.Tensor:
    """Fast vectorised IR-drop estimate of a 1T1R crossbar (CPU or CUDA, batched over tiles).

    Args:
        g: ``[..., R, C]`` conductances, siemens, ``>= 0`` (leading dims: e.g. tiles).
        v_in: ``[..., B, R]`` input voltages, volt; leading dims broadcast against ``g``'s.
            Rows whose input is exactly 0 are switched off (carry no current).
        r_row: row-wire segment resistance, ohm, ``>= 0``.
        r_col: column-wire segment resistance, ohm, ``>= 0``.
        r_access: access-transistor resistance in series with each device, ohm (``g_eff = g / (1 +
            g r_access)``).
        iterations: conjugate-gradient steps (``>= 0``); each costs one application of the wire
            operator (two cumulative sums along rows, two along columns on a ``[..., B, R, C]``
            tensor), plus one for the initial residual. ``0`` returns the ideal ``v_in @ g_eff``.

    Returns:
        ``[..., B, C]`` column currents, ampere, in the promoted dtype of ``g`` and ``v_in`` on
        ``g``'s device.

    Method (equations in the module docstring): conjugate gradients on the device-voltage equation
    ``u + K(G u) = v_in`` in the ``G``-weighted inner product, started from the ideal ``u = v_in``;
    ``I = G u`` and ``I_out[j] = sum_i I[i, j]``. It converges to the exact 1T1R solution as
    ``iterations`` grows (geometrically, for any wire resistance), and with few iterations is
    accurate while ``r g_max N^2`` is small (see ``benchmarks/irdrop_accuracy.py``).

    Limitation: it models the 1T1R case only. Rows with zero input carry no current; a passive
    (0T1R) array's floating rows, and the sneak currents through them, cannot be represented - use
    :func:`solve_ir_drop_exact` with ``array_type="0T1R"`` for those.
    """
    g, v_in = _check_g_v(g, v_in, batched=True)
    r_row = _resistance("r_row", r_row)
    r_col = _resistance("r_col", r_col)
    r_access = _resistance("r_access", r_access)
    if isinstance(iterations, bool) or not isinstance(iterations, Integral):
        raise TypeError(f"iterations must be an int >= 0, got {iterations!r}")
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got iterations={iterations}")
    if v_in.device != g.device:
        raise ValueError(f"g is on {g.device} but v_in is on {v_in.device}; put both on the same device")

    dtype = torch.promote_types(g.dtype, v_in.dtype)
    g = g.to(dtype)
    v = v_in.to(dtype)
    g_eff = g / (1.0 + g * r_access) if r_access > 0 else g
    ideal = torch.matmul(v, g_eff)  # [..., B, C]
    if iterations == 0 or (r_row == 0 and r_col == 0) or ideal.numel() == 0:
        return ideal

    # the per-input systems are independent: solve them in chunks of input vectors so that each
    # working tensor stays cache- and allocator-friendly (on the CPU, large temporaries are
    # page-faulted in afresh on every operation) and peak memory stays bounded
    lead = torch.broadcast_shapes(g_eff.shape[:-2], v.shape[:-2])
    per_input = math.prod(lead) * g_eff.shape[-2] * g_eff.shape[-1]
    limit = _CHUNK_ELEMENTS.get(g_eff.device.type, _CHUNK_ELEMENTS["cpu"])
    step = max(1, limit // max(per_input, 1))
    iterations = int(iterations)
    if step >= v.shape[-2]:
        return _cg_column_currents(g_eff, v, r_row, r_col, iterations)
    chunks = [_cg_column_currents(g_eff, vc, r_row, r_col, iterations) for vc in v.split(step, dim=-2)]
    return torch.cat(chunks, dim=-2)


_CHUNK_ELEMENTS = {"cpu": 2**18, "cuda": 2**26}
"""Elements (inputs x devices) per working tensor of :func:`ir_drop_approx`, per device type."""


def _cg_column_currents(g_eff: torch.Tensor, v: torch.Tensor, r_row: float, r_col: float, iterations: int) -> torch.Tensor:
    """``iterations`` CG steps on ``u + K(G u) = v`` (G-weighted inner product); ``[..., b, C]`` amperes.

    Tracks the device currents ``I = G u`` rather than ``u``; ``G`` is ``g_eff`` with the rows of zero
    input switched off, ``[..., b, R, C]``.
    """
    red = (-2, -1)  # inner products over one array, per input vector
    G = g_eff.unsqueeze(-3) * (v != 0).to(g_eff.dtype).unsqueeze(-1)
    i_dev = G * v.unsqueeze(-1)  # ideal start: u = v_in, I = G u
    res = -_wire_operator(i_dev, r_row, r_col)  # v - u - K(G u)
    p, g_p = res, G * res
    rho = (g_p * res).sum(red, keepdim=True)  # <res, res>_G
    for k in range(iterations):
        q = p + _wire_operator(g_p, r_row, r_col)  # (1 + K G) p
        alpha = _safe_div(rho, (g_p * q).sum(red, keepdim=True))
        i_dev = i_dev + alpha * g_p
        if k == iterations - 1:
            break
        res = res - alpha * q
        g_res = G * res
        rho_new = (g_res * res).sum(red, keepdim=True)
        beta = _safe_div(rho_new, rho)
        p, g_p, rho = res + beta * p, g_res + beta * g_p, rho_new
    return i_dev.sum(-2)

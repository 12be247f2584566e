"""Pulse schedules: the contract between learning rules and crossbars.

A :class:`PulseSchedule` is a list of programming phases. Each phase says how many pulses each
device of each array of the pair receives (signed: ``+`` SET, ``-`` RESET), at which amplitude and
width. Two kinds:

:class:`OuterPhase` - rank-1 coincidence phases, what a crossbar does in parallel. Row ``i`` carries
``rows[i]`` and column ``j`` of array ``a`` carries ``cols_a[j]``; device ``(i, j)`` gets
``sign(rows[i]) * sign(cols_a[j]) * coincidences``. With ``train="aligned"`` (deterministic pulse
trains starting together) the coincidences are ``min(|rows[i]|, |cols_a[j]|)``; with
``train="stochastic"`` ``rows`` / ``cols`` are firing probabilities per slot of a ``length``-slot
Bernoulli train (aihwkit's stochastic pulse update, ``BL = length``) and the coincidences are
counted slot by slot. A leading batch dimension ``[B, R]`` / ``[B, C]`` stacks B phases applied
one after the other (B sequential rank-1 updates, with state-dependent steps in between).

Half-select: in a V/2 scheme a device whose row or column - but not both - is driven sees half the
amplitude. For single-polarity phases the crossbar can apply these disturb pulses
(``|rows[i]| - |cols[j]|`` half pulses for aligned trains).

:class:`DensePhase` - any signed count per device (``[R, C]`` per array). On hardware it is
programmed one line at a time - row by row (the selected row's devices each get their own train
from the column drivers) or column by column (the reverse), whichever takes fewer steps - so it
costs, per polarity, ``min(rows with pulses, columns with pulses)`` phases: a dense write of one
column (a state-aware STDP update of one neuron) is one phase per polarity.

:meth:`PulseSchedule.hardware_phases` counts phases as time on real hardware: an outer phase costs
one phase per (row-sign, polarity) group that is non-empty, i.e. 1 for a single-polarity update,
up to 4 for a fully signed rank-1 update.

A schedule saves as a pulse log (CSV or Parquet) for hardware people: line-level rows for outer
phases (which row / column lines carry how many pulses) and device-level rows for dense phases.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from ..files import atomic_path
from . import train_kernel

__all__ = ["OuterPhase", "DensePhase", "PulseSchedule", "TRAINS"]

Tensor = torch.Tensor
TRAINS = ("aligned", "stochastic")


def _as_2d(t: Tensor) -> Tensor:
    return t.unsqueeze(0) if t.dim() == 1 else t


@dataclass
class OuterPhase:
    """Rank-1 coincidence phase(s); see the module docstring.

    Attributes:
        rows: ``[R]`` or ``[B, R]``: signed pulse counts (aligned, integer dtype) or signed firing
            probabilities in [-1, 1] (stochastic, float dtype).
        cols_plus: ``[C]`` or ``[B, C]``, the columns of the ``plus`` array (or the single array).
        cols_minus: same for the ``minus`` array of a differential pair, or None.
        amplitude: pulse amplitude magnitude (V); None: the device's defaults.
        width: pulse width (s); None: the device's default.
        train: ``"aligned"`` or ``"stochastic"``.
        length: slots of a stochastic train.
    """

    rows: Tensor
    cols_plus: Tensor
    cols_minus: Tensor | None = None
    amplitude: float | None = None
    width: float | None = None
    train: str = "aligned"
    length: int = 31

    def __post_init__(self) -> None:
        if self.train not in TRAINS:
            raise ValueError(f"train={self.train!r} is not allowed: use one of {', '.join(map(repr, TRAINS))}")
        if not (isinstance(self.length, int) and self.length >= 1):
            raise ValueError(f"length={self.length!r} must be an integer >= 1 (slots of a stochastic train)")
        for name in ("rows", "cols_plus", "cols_minus"):
            t = getattr(self, name)
            if t is None:
                continue
            if not isinstance(t, torch.Tensor) or t.dim() not in (1, 2):
                raise ValueError(f"{name} must be a 1-D [N] or 2-D [B, N] tensor, got {getattr(t, 'shape', type(t))}")
            if self.train == "aligned" and t.dtype.is_floating_point:
                raise TypeError(f"{name} must hold integer pulse counts for train='aligned', got {t.dtype}")
            if self.train == "stochastic":
                if not t.dtype.is_floating_point:
                    raise TypeError(f"{name} must hold probabilities (float) for train='stochastic', got {t.dtype}")
                if not torch.isfinite(t).all() or t.abs().max() > 1:
                    raise ValueError(f"{name} must hold finite probabilities in [-1, 1] for train='stochastic'")
        b = {_as_2d(t).shape[0] for t in (self.rows, self.cols_plus, self.cols_minus) if t is not None}
        if len(b) > 1:
            raise ValueError(f"rows and cols have different batch sizes {sorted(b)}")
        if self.cols_minus is not None and _as_2d(self.cols_minus).shape[1] != _as_2d(self.cols_plus).shape[1]:
            raise ValueError(
                f"cols_minus has {_as_2d(self.cols_minus).shape[1]} columns, cols_plus {_as_2d(self.cols_plus).shape[1]}"
            )

    @property
    def batch(self) -> int:
        return _as_2d(self.rows).shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        return _as_2d(self.rows).shape[1], _as_2d(self.cols_plus).shape[1]

    def single_polarity(self) -> int | None:
        """+1 / -1 when every coincidence has that polarity, else None."""
        signs = set()
        r = _as_2d(self.rows)
        for cols in (self.cols_plus, self.cols_minus):
            if cols is None:
                continue
            c = _as_2d(cols)
            for rs in (1, -1):
                for cs in (1, -1):
                    if ((r * rs > 0).any(dim=1) & (c * cs > 0).any(dim=1)).any():
                        signs.add(rs * cs)
        return signs.pop() if len(signs) == 1 else (1 if not signs else None)

    def hardware_phases(self) -> int:
        """Phases on hardware: per stacked update, one per non-empty (row sign, polarity) group."""
        r = _as_2d(self.rows)
        cols = [_as_2d(c) for c in (self.cols_plus, self.cols_minus) if c is not None]
        total = 0
        for rs in (1, -1):
            rows_on = (r * rs > 0).any(dim=1)  # [B]
            for pol in (1, -1):
                cols_on = torch.zeros_like(rows_on)
                for c in cols:
                    cols_on |= (c * (pol * rs) > 0).any(dim=1)
                total += int((rows_on & cols_on).sum())
        return total

    def coincidences(
        self, array: str, generator: torch.Generator | None = None, *, half: bool = False, dtype=torch.float32
    ) -> tuple[Tensor, Tensor | None]:
        """Signed coincidence counts ``[B, R, C]`` of ``array`` ("plus" / "minus"), and - with
        ``half=True`` - the half-selected slot counts ``[B, R, C]`` (exactly one line driven).

        Counts are whole numbers held in ``dtype`` (float by default: it feeds the device loop
        directly). Stochastic trains draw their bits from ``generator``.
        """
        cols = self.cols_plus if array == "plus" else self.cols_minus
        r = _as_2d(self.rows)
        if cols is None:
            z = torch.zeros((r.shape[0], r.shape[1], _as_2d(self.cols_plus).shape[1]), dtype=dtype, device=r.device)
            return z, (z if half else None)
        c = _as_2d(cols).to(r.device)
        if self.train == "aligned":
            ra, ca = r.abs().to(dtype), c.abs().to(dtype)
            sign = torch.sign(r).to(dtype)[:, :, None] * torch.sign(c).to(dtype)[:, None, :]
            both = torch.minimum(ra[:, :, None], ca[:, None, :]) * sign
            return both, ((ra[:, :, None] - ca[:, None, :]).abs() if half else None)
        L = self.length
        if (not half and r.device.type == "cpu" and L <= train_kernel.MAX_SLOTS
                and dtype in (torch.float32, torch.float64)):  # packed bits and popcounts
            return train_kernel.coincidences(r, c, L, generator, dtype), None
        # stochastic Bernoulli trains: bits carry the line's sign, so one bmm counts signed coincidences
        bits_r = (torch.rand((*r.shape, L), generator=generator, device=r.device) < r.abs()[..., None]).to(dtype)
        bits_c = (torch.rand((*c.shape, L), generator=generator, device=r.device) < c.abs()[..., None]).to(dtype)
        signed = torch.bmm(bits_r * torch.sign(r).to(dtype)[..., None], (bits_c * torch.sign(c).to(dtype)[..., None]).transpose(1, 2))
        if not half:
            return signed, None
        both = signed.abs()
        return signed, bits_r.sum(-1)[:, :, None] + bits_c.sum(-1)[:, None, :] - 2 * both

    def to_frame(self, phase: int) -> pd.DataFrame:
        """Line-level log: one row per (update, line) that carries pulses."""
        parts = []
        for line, t in (("row", self.rows), ("col_plus", self.cols_plus), ("col_minus", self.cols_minus)):
            if t is None:
                continue
            t2 = _as_2d(t).detach().cpu()
            b, idx = torch.nonzero(t2, as_tuple=True)
            parts.append(pd.DataFrame({
                "phase": phase, "update": b.numpy(), "kind": "outer", "line": line,
                "row": idx.numpy() if line == "row" else -1,
                "col": idx.numpy() if line != "row" else -1,
                "value": t2[b, idx].numpy().astype(float),
            }))
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        frame["train"] = self.train
        frame["length"] = self.length if self.train == "stochastic" else 0
        return frame


def sparse_phases(flat: list[int], cols: int) -> int:
    """:meth:`DensePhase.hardware_phases` of one polarity for few pulsed devices, given by their
    flat (row-major) indices into an array of ``cols`` columns: the smaller of the number of rows
    and of columns they occupy (Python sets: cheaper than tensor reductions for a handful)."""
    return min(len({i // cols for i in flat}), len({i % cols for i in flat}))


@dataclass
class DensePhase:
    """Signed pulse counts per device: ``plus`` ``[R, C]`` and ``minus`` ``[R, C]`` (or None)."""

    plus: Tensor
    minus: Tensor | None = None
    amplitude: float | None = None
    width: float | None = None

    def __post_init__(self) -> None:
        for name in ("plus", "minus"):
            t = getattr(self, name)
            if t is None:
                continue
            if not isinstance(t, torch.Tensor) or t.dim() != 2:
                raise ValueError(f"{name} must be a 2-D [rows, cols] tensor, got {getattr(t, 'shape', type(t))}")
            if t.dtype.is_floating_point or t.dtype == torch.bool:
                raise TypeError(f"{name} must hold integer pulse counts, got {t.dtype}")
        if self.minus is not None and self.minus.shape != self.plus.shape:
            raise ValueError(f"minus has shape {tuple(self.minus.shape)}, plus {tuple(self.plus.shape)}")

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.plus.shape)

    def hardware_phases(self) -> int:
        """Line-by-line programming along the cheaper direction: per polarity, the smaller of the
        number of rows and of columns that have pulses of that polarity."""
        lines = []  # rows and columns with pulses, per polarity: [set rows, set cols, reset rows, reset cols]
        for on in ((self.plus > 0), (self.plus < 0)):
            if self.minus is not None:
                on = on | ((self.minus > 0) if len(lines) == 0 else (self.minus < 0))
            lines += [on.any(dim=1).sum(), on.any(dim=0).sum()]
        n = torch.stack(lines).tolist()  # one transfer
        return min(n[0], n[1]) + min(n[2], n[3])

    def to_frame(self, phase: int) -> pd.DataFrame:
        """Device-level log: one row per device that receives pulses."""
        parts = []
        for array, t in (("plus", self.plus), ("minus", self.minus)):
            if t is None:
                continue
            t = t.detach().cpu()
            r, c = torch.nonzero(t, as_tuple=True)
            parts.append(pd.DataFrame({
                "phase": phase, "update": 0, "kind": "dense", "line": array,
                "row": r.numpy(), "col": c.numpy(), "value": t[r, c].numpy().astype(float),
            }))
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        frame["train"] = "dense"
        frame["length"] = 0
        return frame


@dataclass
class PulseSchedule:
    """An ordered list of phases (see the module docstring)."""

    phases: list = field(default_factory=list)

    def __iter__(self):
        return iter(self.phases)

    def __len__(self) -> int:
        return len(self.phases)

    def add(self, phase: OuterPhase | DensePhase) -> "PulseSchedule":
        if not isinstance(phase, (OuterPhase, DensePhase)):
            raise TypeError(f"a schedule holds OuterPhase or DensePhase, got {type(phase).__name__}")
        self.phases.append(phase)
        return self

    def hardware_phases(self) -> int:
        return sum(ph.hardware_phases() for ph in self.phases)

    def to_frame(self) -> pd.DataFrame:
        """The pulse log. Columns: phase, update (index within a stacked outer phase), kind
        (outer / dense), line (row, col_plus, col_minus for outer; plus, minus for dense), row, col
        (-1 where not applicable), value (signed pulse count, or firing probability for stochastic
        trains), amplitude_V and width_s (NaN: device default), train, length."""
        frames = []
        for i, ph in enumerate(self.phases):
            f = ph.to_frame(i)
            f["amplitude_V"] = float("nan") if ph.amplitude is None else float(ph.amplitude)
            f["width_s"] = float("nan") if ph.width is None else float(ph.width)
            frames.append(f)
        cols = ["phase", "update", "kind", "line", "row", "col", "value", "amplitude_V", "width_s", "train", "length"]
        if not frames:
            return pd.DataFrame(columns=cols)
        return pd.concat(frames, ignore_index=True)[cols]

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the pulse log as CSV (``.csv``) or Parquet (``.parquet``); refuses to overwrite."""
        path = Path(path)
        if path.suffix not in (".csv", ".parquet"):
            raise ValueError(f"pulse log {path.name!r} must end in .csv or .parquet")
        frame = self.to_frame()
        with atomic_path(path, overwrite) as tmp:
            if path.suffix == ".csv":
                frame.to_csv(tmp, index=False)
            else:
                frame.to_parquet(tmp, index=False)
        return path

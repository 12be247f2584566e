"""Conductance maps of a tiled crossbar layer: export to CSV / NPZ / PNG, and exact reload.

A crossbar layer stores a weight matrix ``[rows = inputs, cols = outputs]`` (the physical
orientation, not ``nn.Linear.weight``'s ``[out, in]``) split into tiles of
``tile_rows x tile_cols``; the last tile in each direction may be smaller. Each weight is a
differential pair of devices ``g_plus`` / ``g_minus`` (siemens), or a single device against a
reference column, in which case ``g_minus`` is absent (``None``). ``weight`` is the effective
weight (weight units) the pair stands for.

File formats (all written through :func:`memsnn.files.atomic_path`, never overwriting silently)
-----------------------------------------------------------------------------------------------
``{name}_maps.csv``  long format, one row per device (weight position), tile by tile
    (tile_row, tile_col, then row, col)::

        # memsnn-maps {"format": "memsnn-maps", "version": 1, "shape": [R, C], ...}
        tile_row,tile_col,row,col,g_plus_S,g_minus_S,weight
        0,0,0,0,1.2345678901234567e-05,3.0000000000000001e-06,0.31415926535897931
        ...

    The first line is a comment: ``# memsnn-maps `` followed by one line of JSON with keys
    ``format`` (``"memsnn-maps"``), ``version`` (1), ``shape`` ([R, C]), ``tile_size``
    ([tile_rows, tile_cols]), ``dtypes`` (``{"g_plus": "float32", "g_minus": "float32" | null,
    "weight": "float32"}``, the dtypes to restore) and ``meta`` (the free-form metadata).
    Other tools: skip the first line, e.g. ``pd.read_csv(path, skiprows=1)`` (pandas < 3.1 also
    needs ``float_precision="round_trip"`` to parse the floats exactly).
    ``row`` / ``col`` are global indices in the full matrix; ``tile_row`` / ``tile_col`` the tile
    indices. Floats are written with 17 significant digits (``%.17g`` of the float64 value), so
    float32 and float64 data reload bit-exactly; ``g_minus_S`` is empty when there is no G-.
``{name}_maps.npz``  (compressed, no pickles) keys:
    ``header`` (0-d str array, the same JSON as the CSV header line), ``shape`` (int64 [2]),
    ``tile_size`` (int64 [2]) and per tile ``t{r}_{c}_g_plus``, ``t{r}_{c}_g_minus`` (only when
    G- exists) and ``t{r}_{c}_weight``, each in its original dtype.
``{name}_tile{r}_{c}.png``  one heatmap per tile: G+ and G- panels in uS (one shared colour
    scale across the layer, colour bar "conductance (uS)") and the effective weight (diverging map
    centred at 0, symmetric scale shared across the layer, colour bar "weight"); the title gives
    the tile index and its row / col ranges. Without G- the G- panel is left out. Images only:
    :func:`load_maps` reads the CSV or the NPZ.

Tau maps (version 2): a HetSyn layer whose synaptic filter lives in the devices
(:mod:`memsnn.crossbar.hetsyn_memristive`) also exports each device's volatile time constant
``tau_plus`` / ``tau_minus`` (seconds). The CSV then has two more columns ``tau_plus_s``,
``tau_minus_s`` (``tau_minus_s`` empty without G-), the NPZ keys ``t{r}_{c}_tau_plus`` /
``t{r}_{c}_tau_minus``, the PNG a log10 tau panel per device array, and the header's ``version``
is 2 with the tau dtypes in ``dtypes``. Files without tau maps stay version 1, byte for byte as
before; the reader takes both.

With ``overwrite=True`` the listed files are replaced; files of an earlier export with a different
tiling (e.g. a PNG for a tile that no longer exists) are left as they are.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..files import atomic_path, check_writable

__all__ = ["TileMap", "MapSet", "export_maps", "load_maps", "CSV_COLUMNS", "CSV_TAU_COLUMNS", "FORMATS"]

FORMAT_TAG = "memsnn-maps"
FORMAT_VERSION = 1
FORMAT_VERSION_TAU = 2  # written when tau maps are present
FORMATS = ("csv", "npz", "png")
CSV_COLUMNS = ("tile_row", "tile_col", "row", "col", "g_plus_S", "g_minus_S", "weight")
_CSV_HEADER_PREFIX = f"# {FORMAT_TAG} "
_BASE_ARRAYS = ("g_plus", "g_minus", "weight")
_TAU_ARRAYS = ("tau_plus", "tau_minus")
_ARRAYS = (*_BASE_ARRAYS, *_TAU_ARRAYS)
_OPTIONAL = ("g_minus", *_TAU_ARRAYS)  # may be absent (None)
_CSV_VALUE_COLUMNS = {"g_plus": "g_plus_S", "g_minus": "g_minus_S", "weight": "weight",
                      "tau_plus": "tau_plus_s", "tau_minus": "tau_minus_s"}
CSV_TAU_COLUMNS = (*CSV_COLUMNS, "tau_plus_s", "tau_minus_s")
_DTYPES = ("float16", "float32", "float64")


@dataclass
class TileMap:
    """One tile of a crossbar layer's maps.

    ``rows`` / ``cols`` are the ``[start, stop)`` ranges of the tile in the full
    ``[rows = inputs, cols = outputs]`` matrix; the arrays have shape
    ``[rows[1] - rows[0], cols[1] - cols[0]]``.
    """

    tile: tuple[int, int]
    """(tile row index, tile col index)."""
    rows: tuple[int, int]
    """[start, stop) row (input) range in the full matrix."""
    cols: tuple[int, int]
    """[start, stop) col (output) range in the full matrix."""
    g_plus: np.ndarray
    """Conductance of the positive device of each pair, siemens."""
    g_minus: np.ndarray | None
    """Conductance of the negative device, siemens; None for single-device (reference column) arrays."""
    weight: np.ndarray
    """Effective weight, weight units."""
    tau_plus: np.ndarray | None = None
    """Volatile time constant of the positive device, seconds (tau maps only, else None)."""
    tau_minus: np.ndarray | None = None
    """Volatile time constant of the negative device, seconds (None without tau maps or G-)."""


@dataclass
class MapSet:
    """All tiles of one layer, as read back by :func:`load_maps`."""

    tiles: list[TileMap]
    shape: tuple[int, int]
    """Full matrix shape [rows = inputs, cols = outputs]."""
    tile_size: tuple[int, int]
    """(tile_rows, tile_cols); the last tile in each direction may be smaller."""
    meta: dict
    """Free-form metadata (str / int / float / bool values), e.g. preset, time."""

    def full(self, name: str) -> np.ndarray:
        """Reassemble the full ``[rows, cols]`` matrix of ``name`` ("g_plus" | "g_minus" | "weight" |
        "tau_plus" | "tau_minus")."""
        if name not in _ARRAYS:
            raise ValueError(f"unknown map {name!r}; allowed: {', '.join(_ARRAYS)}")
        if not self.tiles:
            raise ValueError("MapSet has no tiles")
        parts = [getattr(t, name) for t in self.tiles]
        if any(p is None for p in parts):
            why = "no tau maps were exported" if name in _TAU_ARRAYS else "single-device crossbar without G-"
            raise ValueError(f"{name} is absent in this map set ({why})")
        out = np.empty(self.shape, dtype=parts[0].dtype)
        covered = np.zeros(self.shape, dtype=bool)
        for t, part in zip(self.tiles, parts):
            (r0, r1), (c0, c1) = t.rows, t.cols
            if part.shape != (r1 - r0, c1 - c0):
                raise ValueError(f"tile {t.tile}: {name} has shape {part.shape}, expected {(r1 - r0, c1 - c0)}")
            out[r0:r1, c0:c1] = part
            covered[r0:r1, c0:c1] = True
        if not covered.all():
            raise ValueError(f"tiles cover only {int(covered.sum())} of {covered.size} entries of {self.shape}")
        return out


# --------------------------------------------------------------------------- helpers


def _tile_ranges(shape: tuple[int, int], tile_size: tuple[int, int]) -> list[tuple[tuple[int, int], tuple[int, int], tuple[int, int]]]:
    """[(tile index, row range, col range)] in row-major tile order."""
    (n_r, n_c), (t_r, t_c) = shape, tile_size
    out = []
    for i in range(math.ceil(n_r / t_r)):
        for j in range(math.ceil(n_c / t_c)):
            out.append(((i, j), (i * t_r, min((i + 1) * t_r, n_r)), (j * t_c, min((j + 1) * t_c, n_c))))
    return out


def _to_numpy(name: str, x: Any) -> np.ndarray:
    import torch

    if isinstance(x, torch.Tensor):
        if x.dtype not in (torch.float16, torch.float32, torch.float64):
            raise TypeError(f"{name} has dtype {x.dtype}; allowed: {', '.join(_DTYPES)}")
        x = x.detach().cpu().numpy()
    elif not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(x).__name__}")
    if x.dtype.name not in _DTYPES:
        raise TypeError(f"{name} has dtype {x.dtype}; allowed: {', '.join(_DTYPES)}")
    return np.ascontiguousarray(x)


def _check_values(name: str, a: np.ndarray, conductance: bool) -> None:
    bad = ~np.isfinite(a)
    n_bad = int(bad.sum())
    if n_bad:
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} has {n_bad} non-finite entr{'y' if n_bad == 1 else 'ies'} (NaN or inf), first at {list(first)}; "
            "all values must be finite"
        )
    if conductance:
        neg = a < 0
        n_neg = int(neg.sum())
        if n_neg:
            first = tuple(int(i) for i in np.argwhere(neg)[0])
            raise ValueError(
                f"{name} has {n_neg} negative conductance{'' if n_neg == 1 else 's'} (min {float(a.min())!r} S, "
                f"first at {list(first)}); conductances must be >= 0 S"
            )


def _check_tile_size(tile_size: Any) -> tuple[int, int]:
    ok = (
        isinstance(tile_size, (tuple, list))
        and len(tile_size) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v > 0 for v in tile_size)
    )
    if not ok:
        raise ValueError(f"tile_size must be two positive ints (tile_rows, tile_cols), got {tile_size!r}")
    return int(tile_size[0]), int(tile_size[1])


def _check_formats(formats: Any) -> list[str]:
    if isinstance(formats, str):
        formats = (formats,)
    formats = list(formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        what = f"unknown format(s) {bad!r}" if bad else "no format given"
        raise ValueError(f"{what}; formats must be a non-empty subset of {{{', '.join(FORMATS)}}}")
    return list(dict.fromkeys(formats))  # de-duplicated, order kept


def _check_meta(meta: Any) -> dict:
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict of str -> str/int/float/bool, got {type(meta).__name__}")
    out = {}
    for k, v in meta.items():
        if not isinstance(k, str):
            raise TypeError(f"meta key {k!r} must be a str")
        if isinstance(v, np.generic):
            v = v.item()
        if v is not None and not isinstance(v, (str, int, float, bool)):
            raise TypeError(f"meta[{k!r}] = {v!r} has type {type(v).__name__}; allowed: str, int, float, bool, None")
        out[k] = v
    return out


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", name) or name in (".", ".."):
        raise ValueError(f"name must be a non-empty file-name stem of letters, digits, '_', '-', '.'; got {name!r}")
    return name


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# --------------------------------------------------------------------------- export


def export_maps(
    directory: str | os.PathLike,
    *,
    g_plus: Any,
    g_minus: Any,
    weight: Any,
    tile_size: tuple[int, int] = (256, 256),
    formats: Iterable[str] = ("csv", "npz", "png"),
    name: str = "layer",
    meta: dict | None = None,
    overwrite: bool = False,
    tau_plus: Any = None,
    tau_minus: Any = None,
) -> list[Path]:
    """Write the conductance maps of one layer; return the written paths.

    ``g_plus`` / ``g_minus`` (siemens, >= 0; ``g_minus`` may be None) and ``weight`` are
    ``[rows = inputs, cols = outputs]`` torch tensors (CPU or CUDA) or numpy arrays of float16 /
    float32 / float64. Everything is validated, and every output path checked for existence,
    before the first file is written; with ``overwrite=False`` an existing output is an error.
    See the module docstring for the formats. Paths are returned in the order of ``formats``
    (PNGs in row-major tile order). ``tau_plus`` / ``tau_minus``: optional per-device volatile
    time constants (s, > 0, same shape; ``tau_minus`` needs ``g_minus``), written as version 2.
    """
    # ---- validate everything before writing anything
    name = _check_name(name)
    fmts = _check_formats(formats)
    tile = _check_tile_size(tile_size)
    meta = _check_meta(meta)
    arrays: dict[str, np.ndarray | None] = {
        "g_plus": _to_numpy("g_plus", g_plus),
        "g_minus": None if g_minus is None else _to_numpy("g_minus", g_minus),
        "weight": _to_numpy("weight", weight),
        "tau_plus": None if tau_plus is None else _to_numpy("tau_plus", tau_plus),
        "tau_minus": None if tau_minus is None else _to_numpy("tau_minus", tau_minus),
    }
    if arrays["tau_minus"] is not None and arrays["g_minus"] is None:
        raise ValueError("tau_minus given without g_minus: a single-device crossbar has no minus devices")
    if arrays["tau_minus"] is not None and arrays["tau_plus"] is None:
        raise ValueError("tau_minus given without tau_plus")
    given = {k: a for k, a in arrays.items() if a is not None}
    for k, a in given.items():
        if a.ndim != 2:
            raise ValueError(f"{k} must be 2-D [rows = inputs, cols = outputs], got shape {tuple(a.shape)}")
    shapes = {k: tuple(a.shape) for k, a in given.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError("shape mismatch: " + ", ".join(f"{k} has shape {s}" for k, s in shapes.items()) + "; all must be equal")
    shape = shapes["g_plus"]
    if 0 in shape:
        raise ValueError(f"the matrices are empty (shape {shape}); need at least one row and one column")
    for k, a in given.items():
        _check_values(k, a, conductance=k in ("g_plus", "g_minus"))
        if k in _TAU_ARRAYS and not (a > 0).all():
            raise ValueError(f"{k} must be > 0 seconds everywhere (found {int((a <= 0).sum())} values <= 0)")

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} exists and is not a directory")
    ranges = _tile_ranges(shape, tile)
    plan: list[tuple[str, Path, Any]] = []
    for f in fmts:
        if f == "csv":
            plan.append(("csv", directory / f"{name}_maps.csv", None))
        elif f == "npz":
            plan.append(("npz", directory / f"{name}_maps.npz", None))
        else:
            for idx, rr, cc in ranges:
                plan.append(("png", directory / f"{name}_tile{idx[0]}_{idx[1]}.png", (idx, rr, cc)))
    for _, path, _ in plan:
        check_writable(path, overwrite)

    with_tau = arrays["tau_plus"] is not None
    if not with_tau:
        arrays = {k: arrays[k] for k in _BASE_ARRAYS}
    header = {
        "format": FORMAT_TAG,
        "version": FORMAT_VERSION_TAU if with_tau else FORMAT_VERSION,
        "shape": list(shape),
        "tile_size": list(tile),
        "dtypes": {k: (None if a is None else a.dtype.name) for k, a in arrays.items()},
        "meta": meta,
    }
    header_json = json.dumps(header, separators=(", ", ": "))
    if "\n" in header_json:  # json.dumps escapes newlines; keep the guarantee explicit
        raise ValueError("metadata must serialise to one line")

    # ---- write
    written: list[Path] = []
    plotter = _TilePlotter(arrays) if "png" in fmts else None
    try:
        for kind, path, extra in plan:
            with atomic_path(path, overwrite) as tmp:
                if kind == "csv":
                    _write_csv(tmp, arrays, shape, tile, header_json)
                elif kind == "npz":
                    _write_npz(tmp, arrays, ranges, shape, tile, header_json)
                else:
                    assert plotter is not None
                    plotter.write(tmp, extra)
            written.append(path)
    finally:
        if plotter is not None:
            plotter.close()
    return written


def _write_csv(tmp: Path, arrays: dict, shape: tuple[int, int], tile: tuple[int, int], header_json: str) -> None:
    import pandas as pd

    n_r, n_c = shape
    grid_r, grid_c = np.meshgrid(np.arange(n_r, dtype=np.int64), np.arange(n_c, dtype=np.int64), indexing="ij")
    row, col = grid_r.ravel(), grid_c.ravel()
    t_r, t_c = row // tile[0], col // tile[1]
    order = np.lexsort((col, row, t_c, t_r))  # tile by tile, then row-major inside a tile
    data = {"tile_row": t_r[order], "tile_col": t_c[order], "row": row[order], "col": col[order]}
    for k, a in arrays.items():
        data[_CSV_VALUE_COLUMNS[k]] = np.full(row.size, np.nan) if a is None else a.astype(np.float64).ravel()[order]
    columns = CSV_TAU_COLUMNS if "tau_plus" in arrays else CSV_COLUMNS
    df = pd.DataFrame(data, columns=list(columns))
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        fh.write(_CSV_HEADER_PREFIX + header_json + "\n")
        df.to_csv(fh, index=False, float_format="%.17g", na_rep="", lineterminator="\n")


def _write_npz(tmp: Path, arrays: dict, ranges: list, shape: tuple[int, int], tile: tuple[int, int], header_json: str) -> None:
    out: dict[str, np.ndarray] = {
        "header": np.array(header_json),
        "shape": np.array(shape, dtype=np.int64),
        "tile_size": np.array(tile, dtype=np.int64),
    }
    for (i, j), (r0, r1), (c0, c1) in ranges:
        for k, a in arrays.items():
            if a is not None:
                out[f"t{i}_{j}_{k}"] = np.ascontiguousarray(a[r0:r1, c0:c1])
    with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a path
        np.savez_compressed(fh, **out)  # type: ignore[arg-type]


class _TilePlotter:
    """One figure reused for every tile of a layer (building a figure costs more than drawing it).

    Colour scales are shared across the layer so tiles compare: G+ and G- in uS over
    [min, max] of both, the weight symmetric around 0 over max |weight|.
    """

    def __init__(self, arrays: dict):
        plt = _plt()
        self.plt = plt
        self.arrays = arrays
        gs = [arrays["g_plus"]] + ([arrays["g_minus"]] if arrays["g_minus"] is not None else [])
        g_lo = min(float(g.min()) for g in gs) * 1e6
        g_hi = max(float(g.max()) for g in gs) * 1e6
        if g_hi <= g_lo:  # constant map: give the colour bar a non-empty range
            g_hi = g_lo + max(abs(g_lo) * 1e-6, 1e-9)
        w_abs = float(np.abs(arrays["weight"]).max()) or 1.0
        self.panels = [("g_plus", "G+ (uS)", 1e6, "viridis", g_lo, g_hi, "conductance (uS)")]
        if arrays["g_minus"] is not None:
            self.panels.append(("g_minus", "G- (uS)", 1e6, "viridis", g_lo, g_hi, "conductance (uS)"))
        self.panels.append(("weight", "effective weight", 1.0, "RdBu_r", -w_abs, w_abs, "weight"))
        taus = [k for k in _TAU_ARRAYS if arrays.get(k) is not None]
        if taus:  # log10 of the volatile time constants, one shared scale
            t_lo = min(float(np.log10(arrays[k]).min()) for k in taus)
            t_hi = max(float(np.log10(arrays[k]).max()) for k in taus)
            t_hi = t_hi if t_hi > t_lo else t_lo + 1e-6
            for k in taus:
                self.panels.append((k, f"tau{'+' if k == 'tau_plus' else '-'} (log10 s)", "log10", "magma", t_lo, t_hi, "log10 tau (s)"))
        n = len(self.panels)
        self.fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.0), squeeze=False)
        self.axes = list(axes[0])
        self.images = []
        for ax, (_, title, _, cmap, lo, hi, cbar) in zip(self.axes, self.panels):
            im = ax.imshow(np.zeros((1, 1)), cmap=cmap, vmin=lo, vmax=hi, aspect="auto", interpolation="nearest")
            ax.set_title(title)
            ax.set_xlabel("col (output)")
            ax.set_ylabel("row (input)")
            self.fig.colorbar(im, ax=ax, label=cbar)
            self.images.append(im)
        self.title = self.fig.suptitle(" ")
        self.note = "" if arrays["g_minus"] is not None else " - single device vs reference (no G-)"
        self._laid_out = False

    def write(self, tmp: Path, where: tuple) -> None:
        (i, j), (r0, r1), (c0, c1) = where
        extent = (c0 - 0.5, c1 - 0.5, r1 - 0.5, r0 - 0.5)  # global indices on the axes
        for ax, im, (key, _, factor, *_rest) in zip(self.axes, self.images, self.panels):
            part = self.arrays[key][r0:r1, c0:c1].astype(np.float64)
            im.set_data(np.log10(part) if factor == "log10" else part * factor)
            im.set_extent(extent)
            ax.set_xlim(extent[0], extent[1])
            ax.set_ylim(extent[2], extent[3])
        self.title.set_text(f"tile ({i}, {j}): rows [{r0}, {r1}), cols [{c0}, {c1}){self.note}")
        if not self._laid_out:
            self.fig.tight_layout()
            self._laid_out = True
        self.fig.savefig(tmp, format="png", dpi=100)

    def close(self) -> None:
        self.plt.close(self.fig)


# --------------------------------------------------------------------------- load


def _parse_header(text: str, source: Path) -> dict:
    try:
        header = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: the {FORMAT_TAG} header is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_TAG:
        raise ValueError(f"{source} is not a {FORMAT_TAG} file (header format {header.get('format') if isinstance(header, dict) else header!r})")
    if header.get("version") not in (FORMAT_VERSION, FORMAT_VERSION_TAU):
        raise ValueError(f"{source}: unsupported {FORMAT_TAG} version {header.get('version')!r}; this reader knows "
                         f"{FORMAT_VERSION} and {FORMAT_VERSION_TAU}")
    missing = [k for k in ("shape", "tile_size", "dtypes", "meta") if k not in header]
    if missing:
        raise ValueError(f"{source}: header lacks {', '.join(missing)}")
    shape, tile = header["shape"], header["tile_size"]
    for key, v in (("shape", shape), ("tile_size", tile)):
        if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v)):
            raise ValueError(f"{source}: header {key} must be two positive ints, got {v!r}")
    dtypes = header["dtypes"]
    names = _ARRAYS if header["version"] == FORMAT_VERSION_TAU else _BASE_ARRAYS
    if not isinstance(dtypes, dict) or set(dtypes) != set(names):
        raise ValueError(f"{source}: header dtypes must name {', '.join(names)}, got {dtypes!r}")
    for k, d in dtypes.items():
        if (d is None and k not in _OPTIONAL) or (d is not None and d not in _DTYPES):
            raise ValueError(f"{source}: header dtype of {k} is {d!r}; allowed: {', '.join(_DTYPES)}" + (" or null" if k in _OPTIONAL else ""))
    if header["version"] == FORMAT_VERSION_TAU and dtypes["tau_plus"] is None:
        raise ValueError(f"{source}: a version {FORMAT_VERSION_TAU} header must give the dtype of tau_plus")
    header["arrays"] = names
    if not isinstance(header["meta"], dict):
        raise ValueError(f"{source}: header meta must be an object, got {header['meta']!r}")
    header["shape"], header["tile_size"] = (shape[0], shape[1]), (tile[0], tile[1])
    return header


def _assemble(header: dict, full: dict[str, np.ndarray | None]) -> MapSet:
    tiles = []
    for idx, (r0, r1), (c0, c1) in _tile_ranges(header["shape"], header["tile_size"]):
        parts = {k: None if full.get(k) is None else full[k][r0:r1, c0:c1].copy() for k in _ARRAYS}  # type: ignore[index]
        tiles.append(TileMap(tile=idx, rows=(r0, r1), cols=(c0, c1), **parts))
    return MapSet(tiles=tiles, shape=header["shape"], tile_size=header["tile_size"], meta=header["meta"])


def load_maps(path: str | os.PathLike) -> MapSet:
    """Read a ``{name}_maps.csv`` or ``{name}_maps.npz`` written by :func:`export_maps`.

    Values come back bit-exactly in their original dtypes. The file is validated (format tag,
    columns / keys, shapes, tile indices, coverage of every position exactly once) and any
    problem raises a ValueError naming the file and what is wrong.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".npz"):
        raise ValueError(f"{path}: expected a .csv or .npz file written by export_maps (PNG maps are images only)")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return _load_csv(path) if suffix == ".csv" else _load_npz(path)


def _exact_float_kwargs() -> dict:
    """pandas < 3.1 parses floats exactly only with float_precision="round_trip"; from 3.1 on every
    mode uses the one correctly rounded converter and the argument is deprecated."""
    import pandas as pd

    major, minor = (int(x) for x in re.findall(r"\d+", pd.__version__)[:2])
    return {"float_precision": "round_trip"} if (major, minor) < (3, 1) else {}


def _load_csv(path: Path) -> MapSet:
    import pandas as pd

    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
    if not first.startswith(_CSV_HEADER_PREFIX):
        raise ValueError(f"{path} is not a {FORMAT_TAG} CSV: the first line must start with {_CSV_HEADER_PREFIX.strip()!r}")
    header = _parse_header(first[len(_CSV_HEADER_PREFIX):], path)
    try:
        # value columns forced to float64: an all-integral column ("0", "-0") must not become int
        expected = CSV_TAU_COLUMNS if header["version"] == FORMAT_VERSION_TAU else CSV_COLUMNS
        floats64 = {_CSV_VALUE_COLUMNS[k]: "float64" for k in header["arrays"]}
        df = pd.read_csv(path, skiprows=1, dtype=floats64, low_memory=False, **_exact_float_kwargs())
    except Exception as exc:  # noqa: BLE001 - re-raised with the file named
        raise ValueError(f"{path}: cannot parse the CSV table ({exc})") from None
    missing = [c for c in expected if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(expected)}")
    n_r, n_c = header["shape"]
    if len(df) != n_r * n_c:
        raise ValueError(f"{path}: {len(df)} data rows, expected {n_r * n_c} (one per position of {n_r}x{n_c})")

    def ints(c: str) -> np.ndarray:
        if df[c].dtype.kind not in "iu":
            raise ValueError(f"{path}: column {c} must hold integers only (found {df[c].dtype})")
        return df[c].to_numpy().astype(np.int64)

    def floats(c: str, allow_empty: bool) -> np.ndarray | None:
        col = df[c]
        if col.dtype.kind not in "fiu":
            raise ValueError(f"{path}: column {c} must hold numbers only (found {col.dtype})")
        values = col.to_numpy().astype(np.float64)
        empty = np.isnan(values)
        if empty.all() and allow_empty:
            return None
        if empty.any():
            raise ValueError(
                f"{path}: column {c} has {int(empty.sum())} empty or NaN entries "
                "(must be all filled, or all empty for g_minus_S / tau_minus_s)"
            )
        return values

    row, col, t_r, t_c = ints("row"), ints("col"), ints("tile_row"), ints("tile_col")
    if row.min() < 0 or row.max() >= n_r or col.min() < 0 or col.max() >= n_c:
        raise ValueError(f"{path}: row/col indices outside the matrix shape {n_r}x{n_c}")
    flat = row * n_c + col
    if np.unique(flat).size != flat.size:
        raise ValueError(f"{path}: some (row, col) positions appear more than once")
    if not (np.array_equal(t_r, row // header["tile_size"][0]) and np.array_equal(t_c, col // header["tile_size"][1])):
        raise ValueError(f"{path}: tile_row/tile_col do not match row/col for tile_size {header['tile_size']}")

    full: dict[str, np.ndarray | None] = {}
    for k in header["arrays"]:
        c = _CSV_VALUE_COLUMNS[k]
        values = floats(c, allow_empty=k in _OPTIONAL)
        want = header["dtypes"][k]
        if (values is None) != (want is None):
            raise ValueError(f"{path}: column {c} is {'empty' if values is None else 'filled'} but the header dtype of {k} is {want!r}")
        if values is None:
            full[k] = None
            continue
        if not np.isfinite(values).all():
            raise ValueError(f"{path}: column {c} holds non-finite values")
        restored = values.astype(want)
        if not np.array_equal(restored.astype(np.float64), values):
            raise ValueError(f"{path}: column {c} holds values that are not exact {want} numbers")
        a = np.empty(n_r * n_c, dtype=want)
        a[flat] = restored
        full[k] = a.reshape(n_r, n_c)
    return _assemble(header, full)


def _load_npz(path: Path) -> MapSet:
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - re-raised with the file named
        raise ValueError(f"{path} is not a readable .npz file ({exc})") from None
    with npz:
        keys = set(npz.files)
        missing = [k for k in ("header", "shape", "tile_size") if k not in keys]
        if missing:
            raise ValueError(f"{path} is not a {FORMAT_TAG} NPZ: missing key(s) {', '.join(missing)}")
        h = npz["header"]
        if h.ndim != 0 or h.dtype.kind != "U":
            raise ValueError(f"{path}: key 'header' must be a 0-d string array")
        header = _parse_header(str(h), path)
        for k in ("shape", "tile_size"):
            if npz[k].tolist() != list(header[k]):
                raise ValueError(f"{path}: key {k!r} = {npz[k].tolist()} disagrees with the header ({list(header[k])})")
        ranges = _tile_ranges(header["shape"], header["tile_size"])
        present = [k for k in header["arrays"] if header["dtypes"][k] is not None]
        expected = {f"t{i}_{j}_{k}" for (i, j), _, _ in ranges for k in present}
        lacking, extra = sorted(expected - keys), sorted(keys - expected - {"header", "shape", "tile_size"})
        if lacking:
            raise ValueError(f"{path}: missing tile array(s) {', '.join(lacking[:5])}{' ...' if len(lacking) > 5 else ''}")
        if extra:
            raise ValueError(f"{path}: unexpected key(s) {', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''} for shape {header['shape']} and tile_size {header['tile_size']}")
        tiles = []
        for (i, j), (r0, r1), (c0, c1) in ranges:
            parts: dict[str, np.ndarray | None] = {k: None for k in _OPTIONAL}
            for k in present:
                a = npz[f"t{i}_{j}_{k}"]
                if a.shape != (r1 - r0, c1 - c0):
                    raise ValueError(f"{path}: t{i}_{j}_{k} has shape {a.shape}, expected {(r1 - r0, c1 - c0)}")
                if a.dtype.name != header["dtypes"][k]:
                    raise ValueError(f"{path}: t{i}_{j}_{k} has dtype {a.dtype}, header says {header['dtypes'][k]}")
                parts[k] = a
            tiles.append(TileMap(tile=(i, j), rows=(r0, r1), cols=(c0, c1), **parts))
    return MapSet(tiles=tiles, shape=header["shape"], tile_size=header["tile_size"], meta=header["meta"])

"""Datasets for the spiking networks: deterministic splits, scaling fitted on the training split.

Nothing is ever downloaded. The sources are

- ``"digits"``, ``"iris"``, ``"breast_cancer"``: scikit-learn's bundled copies;
- ``"patterns_5x3"``: the ten digits 0-9 as 5 x 3 binary bitmaps (:data:`PATTERNS_5X3`), written
  out in this module: 20 clean copies of each, 200 samples of 15 features in {0, 1};
- ``"fashion_mnist"``: the four IDX files in :data:`FASHION_MNIST_DIR` (Debian's package
  ``dataset-fashion-mnist``) or in a directory given as ``path``;
- ``"csv"``: any CSV file with a label column;
- temporal tasks (:mod:`memsnn.experiments.temporal`): ``"dmts"`` (delayed match-to-sample) and
  ``"spike_patterns"`` (spike-timing templates), generated from ``seed`` with options
  ``task_params``, and ``"seq_fashion_mnist"`` (Fashion-MNIST read row by row, 28 steps of 28
  channels).

Every loader returns a :class:`Dataset` of float32 features ``[N, F]`` and int64 labels ``[N]``.
A temporal dataset (``Dataset.time_steps`` set) holds each sample as a sequence flattened
time-major, ``[N, T * C]``; :meth:`Dataset.sequences` returns ``[T, N, C]``.
``classes=`` keeps a subset of the classes of any dataset, relabelled ``0 .. k-1`` in the order
given, before the split, ``limit`` and the scaling.
The features are scaled with statistics of the training split only and the test split is
transformed with those same statistics, so no information leaks from the test split (test
features may therefore leave ``[0, 1]``).

Example::

    ds = load_dataset("digits", seed=1)          # 1347 train / 450 test, 64 features in [0, 1]
    ds = load_dataset("fashion_mnist", limit=6000)  # first 6000 train / first 1000 test images
    ds = load_dataset("patterns_5x3")            # 150 train / 50 test bitmaps, 15 features in {0, 1}
    ds = load_dataset("fashion_mnist", classes=[0, 1, 2, 3, 4], limit=600)  # 5 classes, 600 + 100
    ds = load_dataset("csv", path="data.csv", label_column="species")
    ds = load_dataset("dmts", task_params={"delay": 50, "noise_rate": 0.05})  # 1000 / 300 trials
    ds.sequences("train")                        # [T = 70, 1000, C = 24] spikes
"""

from __future__ import annotations

import difflib
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from memsnn.experiments.idx import read_idx
from memsnn.experiments.temporal import TASK_PARAMS, generate_task, resolve_task_params, task_params_errors

__all__ = [
    "Dataset",
    "load_dataset",
    "dataset_names",
    "dataset_time_steps",
    "temporal_names",
    "FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "PATTERNS_5X3",
    "SCALINGS",
    "check_csv_header",
    "csv_columns",
    "dataset_errors",
    "dataset_kwargs",
    "default_label_column",
    "dataset_slug",
    "is_csv_path",
]

#: Where Debian's package ``dataset-fashion-mnist`` installs the Fashion-MNIST IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

#: Fashion-MNIST class names, index = label.
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

#: The digits 0-9 of dataset ``"patterns_5x3"`` as 5-row x 3-column bitmaps (``#`` = 1, ``.`` = 0),
#: index = label. A plain 3x5 pixel font; the "1" has no foot so that every pixel is 1 in some
#: digit and 0 in another (``minmax`` scaling of the full set then leaves every pixel as it is).
#: The closest pairs differ in one pixel (0/8, 3/9, 5/6, 5/9, 6/8, 8/9).
PATTERNS_5X3 = {
    "0": ("###",
          "#.#",
          "#.#",
          "#.#",
          "###"),
    "1": (".#.",
          "##.",
          ".#.",
          ".#.",
          ".#."),
    "2": ("###",
          "..#",
          "###",
          "#..",
          "###"),
    "3": ("###",
          "..#",
          "###",
          "..#",
          "###"),
    "4": ("#.#",
          "#.#",
          "###",
          "..#",
          "..#"),
    "5": ("###",
          "#..",
          "###",
          "..#",
          "###"),
    "6": ("###",
          "#..",
          "###",
          "#.#",
          "###"),
    "7": ("###",
          "..#",
          "..#",
          "..#",
          "..#"),
    "8": ("###",
          "#.#",
          "###",
          "#.#",
          "###"),
    "9": ("###",
          "#.#",
          "###",
          "..#",
          "###"),
}

#: Allowed values of ``scaling``.
SCALINGS = ("minmax", "standard", "none")

_SKLEARN = ("digits", "iris", "breast_cancer")
_GENERATED = tuple(TASK_PARAMS)  # temporal tasks generated from seed and task_params
_BUILTIN = (*_SKLEARN, "patterns_5x3", *_GENERATED)  # no file to read: path= is refused
_FASHION = ("fashion_mnist", "seq_fashion_mnist")  # read from the IDX files, official split
_NAMES = (*_SKLEARN, "patterns_5x3", *_FASHION, *_GENERATED, "csv")
#: classes per dataset, for checking ``classes=`` before loading (csv: known after reading;
#: spike_patterns: after its task_params are resolved)
_N_CLASSES = {"digits": 10, "iris": 3, "breast_cancer": 2, "patterns_5x3": len(PATTERNS_5X3), "fashion_mnist": 10,
              "seq_fashion_mnist": 10, "dmts": 2}
#: steps per sample of seq_fashion_mnist: one image row per step
_FASHION_ROWS = 28
#: datasets whose samples are sequences (Dataset.time_steps set)
_TEMPORAL = (*_GENERATED, "seq_fashion_mnist")
_PATTERN_COPIES = 20  # clean copies of each bitmap in "patterns_5x3"
_FASHION_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


@dataclass
class Dataset:
    """A classification dataset split into training and test sets.

    Features are ``[N, F]`` float32 (one sample per row), labels ``[N]`` int64 class indices
    ``0 .. n_classes - 1``. The scaling was fitted on the training split only.
    """

    name: str
    """Dataset name as passed to :func:`load_dataset` (``"digits"``, ``"csv"``, ...)."""
    x_train: torch.Tensor
    """``[N_train, F]`` float32 training features, scaled (``[0, 1]`` for ``minmax``)."""
    y_train: torch.Tensor
    """``[N_train]`` int64 training labels."""
    x_test: torch.Tensor
    """``[N_test, F]`` float32 test features, scaled with the training statistics."""
    y_test: torch.Tensor
    """``[N_test]`` int64 test labels."""
    classes: list[str]
    """Class names; ``classes[k]`` is the name of label ``k``."""
    feature_names: list[str] | None = None
    """One name per feature column, or None (images)."""
    image_shape: tuple[int, int] | None = None
    """``(height, width)`` when each sample is a flattened image, else None."""
    source: str | None = None
    """The file or directory read (None for scikit-learn's bundled data and generated tasks)."""
    time_steps: int | None = None
    """Temporal datasets: T, the steps of each sample; each row of ``x_train`` / ``x_test`` is a
    sequence flattened time-major, ``[N, T * C]`` with ``C = n_features // T`` channels
    (``x[:, t * C + c]`` = channel ``c`` at step ``t``). None: static features."""

    def __post_init__(self) -> None:
        problems = []
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.dtype != torch.float32:
                problems.append(f"x_{split} must be a 2-D float32 tensor [N, F], got {_describe_tensor(x)}")
            if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.dtype != torch.int64:
                problems.append(f"y_{split} must be a 1-D int64 tensor [N], got {_describe_tensor(y)}")
            elif isinstance(x, torch.Tensor) and x.ndim >= 1 and x.shape[0] != y.shape[0]:
                problems.append(f"x_{split} has {x.shape[0]} samples but y_{split} has {y.shape[0]}")
        if not problems:
            if self.x_train.shape[1] != self.x_test.shape[1]:
                problems.append(
                    f"x_train has {self.x_train.shape[1]} features but x_test has {self.x_test.shape[1]}"
                )
            for split in ("train", "test"):
                y = getattr(self, f"y_{split}")
                if y.numel() and (int(y.min()) < 0 or int(y.max()) >= len(self.classes)):
                    problems.append(
                        f"y_{split} holds labels {int(y.min())}..{int(y.max())}, allowed "
                        f"0..{len(self.classes) - 1} for {len(self.classes)} classes"
                    )
            if self.feature_names is not None and len(self.feature_names) != self.x_train.shape[1]:
                problems.append(
                    f"{len(self.feature_names)} feature_names for {self.x_train.shape[1]} features"
                )
            if self.image_shape is not None and math.prod(self.image_shape) != self.x_train.shape[1]:
                problems.append(
                    f"image_shape {self.image_shape} does not match {self.x_train.shape[1]} features"
                )
            t = self.time_steps
            if t is not None:
                if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 1:
                    problems.append(f"time_steps={t!r} is not allowed: must be an integer >= 1 or None")
                elif self.x_train.shape[1] % t or self.x_train.shape[1] == 0:
                    problems.append(
                        f"time_steps={t} does not divide the {self.x_train.shape[1]} features into T * C "
                        "(a temporal sample is [T * C], time-major)"
                    )
        if problems:
            raise ValueError(f"invalid Dataset {self.name!r}: " + "; ".join(problems))

    @property
    def n_features(self) -> int:
        """Number of input features F."""
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def n_channels(self) -> int:
        """Input channels per step: ``n_features // time_steps`` for a temporal dataset, else
        ``n_features``."""
        return self.n_features // self.time_steps if self.time_steps else self.n_features

    def sequences(self, split: str) -> torch.Tensor:
        """The samples of ``split`` (``"train"`` or ``"test"``) as sequences ``[T, N, C]`` (a view
        of the features, time first as the spiking layers take them). Only for a temporal
        dataset."""
        if split not in ("train", "test"):
            raise ValueError(f"split={split!r} is not allowed: must be 'train' or 'test'")
        if self.time_steps is None:
            raise ValueError(f"dataset {self.name!r} is not temporal (time_steps is None): its samples are static "
                             f"features [N, {self.n_features}]; temporal datasets: "
                             + ", ".join(n for n in _NAMES if n in _TEMPORAL))
        x = getattr(self, f"x_{split}")
        return x.reshape(x.shape[0], self.time_steps, self.n_channels).permute(1, 0, 2)

    def describe(self) -> dict:
        """Sizes and class balance as plain Python values (for tables and logs)."""
        train_counts = torch.bincount(self.y_train, minlength=self.n_classes).tolist()
        test_counts = torch.bincount(self.y_test, minlength=self.n_classes).tolist()
        return {
            "name": self.name,
            "n_train": int(self.x_train.shape[0]),
            "n_test": int(self.x_test.shape[0]),
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "image_shape": self.image_shape,
            "time_steps": self.time_steps,
            "n_channels": self.n_channels,
            "source": self.source,
            "classes": list(self.classes),
            "train_counts": dict(zip(self.classes, train_counts)),
            "test_counts": dict(zip(self.classes, test_counts)),
            "train_fractions": {
                c: n / max(1, self.x_train.shape[0]) for c, n in zip(self.classes, train_counts)
            },
            "test_fractions": {
                c: n / max(1, self.x_test.shape[0]) for c, n in zip(self.classes, test_counts)
            },
        }


def _describe_tensor(t) -> str:
    if isinstance(t, torch.Tensor):
        return f"{t.dtype} tensor of shape {tuple(t.shape)}"
    return type(t).__name__


def dataset_time_steps(name: str, task_params: Mapping | None = None) -> int | None:
    """T, the steps per sample, of dataset ``name`` with these ``task_params`` (without loading
    it), or None for a dataset of static features. Raises the loader's errors for a bad name or
    bad task_params."""
    name = _check_name(name)
    if name == "seq_fashion_mnist":
        return _FASHION_ROWS
    if name in _GENERATED:
        return int(resolve_task_params(name, task_params).time_steps)
    return None


def temporal_names() -> list[str]:
    """Names of the datasets whose samples are sequences (``Dataset.time_steps`` set)."""
    return list(_TEMPORAL)


def dataset_names() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return list(_NAMES)


# -- argument validation --------------------------------------------------------------------


def _check_name(name) -> str:
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, got {type(name).__name__} {name!r}")
    if name in _NAMES:
        return name
    lowered = {n.lower(): n for n in _NAMES}
    close = difflib.get_close_matches(name.lower().replace("-", "_"), list(lowered), n=1, cutoff=0.4)
    hint = f"; did you mean {lowered[close[0]]!r}?" if close else ""
    raise ValueError(f"unknown dataset {name!r}{hint} (valid: {', '.join(_NAMES)})")


def _check_classes(classes, n_classes: int | None, what: str) -> list[int] | None:
    """``classes`` as a list of Python ints (None: all classes). ``n_classes`` is the dataset's
    number of classes, None where it is not known yet (csv before reading); ``what`` names the
    dataset in the message."""
    if classes is None:
        return None
    is_list = isinstance(classes, np.ndarray) or (
        isinstance(classes, Sequence) and not isinstance(classes, (str, bytes))
    )
    shown = [c.item() if isinstance(c, np.generic) else c for c in classes] if is_list else classes
    if n_classes is None:
        allowed = "integers >= 0"
    else:
        allowed = f"integers in 0..{n_classes - 1} ({what} has {n_classes} classes)"
    head = (
        f"classes={shown!r} is not allowed: must be distinct class indices, {allowed}, "
        "at least 2 of them (None: all classes)"
    )
    if not is_list:
        raise ValueError(f"{head}; got type {type(classes).__name__}")
    bad = [c for c in classes if isinstance(c, bool) or not isinstance(c, numbers.Integral)]
    if bad:
        raise ValueError(f"{head}; {bad[0]!r} is not an integer")
    keep = [int(c) for c in classes]
    if any(c < 0 for c in keep):
        raise ValueError(f"{head}; {min(keep)} is negative")
    if n_classes is not None and any(c >= n_classes for c in keep):
        raise ValueError(f"{head}; {max(keep)} is out of range")
    repeated = sorted({c for c in keep if keep.count(c) > 1})
    if repeated:
        raise ValueError(f"{head}; {', '.join(map(str, repeated))} given more than once")
    if len(keep) < 2:
        raise ValueError(f"{head}; {len(keep)} given")
    return keep


def _check_args(name, seed, test_fraction, scaling, path, label_column, limit, classes=None,
                task_params=None) -> str:
    name = _check_name(name)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
        raise ValueError(f"seed={seed!r} is not allowed: must be an integer in [0, 2**32)")
    if (
        isinstance(test_fraction, bool)
        or not isinstance(test_fraction, numbers.Real)
        or not math.isfinite(test_fraction)
        or not 0.0 < test_fraction < 1.0
    ):
        raise ValueError(f"test_fraction={test_fraction!r} is not allowed: must be a number in (0, 1)")
    if scaling not in SCALINGS:
        raise ValueError(f"scaling={scaling!r} is not allowed: must be one of {', '.join(map(repr, SCALINGS))}")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 1
    ):
        raise ValueError(f"limit={limit!r} is not allowed: must be an integer >= 1 or None")
    _check_classes(classes, _N_CLASSES.get(name), f"dataset {name!r}")
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a string or path, got {type(path).__name__} {path!r}")
    errors = task_params_errors(name, task_params)
    if errors:
        raise ValueError(f"invalid task_params of dataset {name!r}:\n  - " + "\n  - ".join(errors))
    if name in _GENERATED and scaling == "standard":
        raise ValueError(
            f"scaling='standard' is not allowed for dataset {name!r}: its features are spikes in {{0, 1}} and are "
            "used as they are; use 'minmax' or 'none' (neither is applied to generated spike tasks)"
        )
    if name in _BUILTIN and path is not None:
        where = "scikit-learn's bundled copy" if name in _SKLEARN else "built into memsnn"
        raise ValueError(
            f"path={str(path)!r} is not used by dataset {name!r} ({where}); "
            "path is for 'fashion_mnist' / 'seq_fashion_mnist' (a directory) and 'csv' (a file)"
        )
    if name != "csv" and label_column is not None:
        raise ValueError(f"label_column={label_column!r} is only used by dataset 'csv', not {name!r}")
    if name == "csv":
        if path is None:
            raise ValueError("dataset 'csv' needs path= (the CSV file to read)")
        if label_column is None:
            raise ValueError("dataset 'csv' needs label_column= (the name of the column holding the class labels)")
        if not isinstance(label_column, str):
            raise TypeError(f"label_column must be a string, got {type(label_column).__name__} {label_column!r}")
        if not Path(path).is_file():
            raise FileNotFoundError(f"CSV file {str(path)!r} does not exist or is not a file")
    return name


# -- public entry point -----------------------------------------------------------------------


def load_dataset(
    name: str,
    *,
    seed: int = 0,
    test_fraction: float = 0.25,
    scaling: str = "minmax",
    path: str | os.PathLike | None = None,
    label_column: str | None = None,
    limit: int | None = None,
    classes: Sequence[int] | None = None,
    task_params: Mapping | None = None,
) -> Dataset:
    """Load a dataset, split it into training and test sets and scale its features.

    Args:
        name: one of :func:`dataset_names`: ``"digits"`` (1797 x 64, 10 classes, 8x8 images),
            ``"iris"`` (150 x 4, 3 classes), ``"breast_cancer"`` (569 x 30, 2 classes),
            ``"patterns_5x3"`` (200 x 15, 10 classes, 5x3 binary images),
            ``"fashion_mnist"`` (60000 + 10000 x 784, 10 classes, 28x28 images) or ``"csv"``.
            ``"patterns_5x3"`` holds the bitmaps of :data:`PATTERNS_5X3`, 20 identical copies of
            each (no noise), features in {0, 1}, classes ``"0" .. "9"``. It is the kind of task of
            the "5x3 binary patterns" row of Prajapati et al., arXiv 2507.20998 (supervised in-situ
            STDP); that paper's exact pattern set is not public, so this is a plain 3x5 pixel font
            of the ten digits, not its patterns.
            Temporal (``Dataset.time_steps`` set, samples ``[T * C]`` time-major;
            :mod:`memsnn.experiments.temporal`): ``"dmts"`` (delayed match-to-sample, 2 classes,
            default 1000 + 300 trials of 40 steps x 24 channels), ``"spike_patterns"`` (default
            5 classes, 1000 + 300 samples of 40 steps x 20 channels) - both spikes in {0, 1} -
            and ``"seq_fashion_mnist"`` (``fashion_mnist`` with each image's 28 rows as 28 steps
            of 28 channels; same files, official split, ``limit``, ``classes`` and scaling).
        seed: seed of the stratified train/test split (integer in [0, 2**32)); the same seed gives
            the same split. Not used by ``fashion_mnist`` / ``seq_fashion_mnist``, whose split is
            the official one. ``dmts``, ``spike_patterns``: the seed of the generator of the whole
            task (its frozen stimuli / templates and every sample).
        test_fraction: fraction of the samples in the test split, in (0, 1). Ignored by
            ``fashion_mnist`` / ``seq_fashion_mnist`` (official split) and by the generated tasks
            (``task_params`` ``n_train`` / ``n_test``).
        scaling: ``"minmax"`` - per feature to [0, 1] on the training split (constant features
            map to 0); ``"standard"`` - per feature zero mean and unit variance on the training
            split (constant features map to 0); ``"none"`` - raw values as float32.
            The test split is transformed with the training statistics. The generated spike tasks
            (``dmts``, ``spike_patterns``) are never scaled: their spikes stay exactly 0 / 1
            (``"minmax"`` and ``"none"`` both leave them; ``"standard"`` is refused).
        path: ``fashion_mnist``: directory with the four IDX files, plain or ``.gz``
            (default :data:`FASHION_MNIST_DIR`). ``csv``: the CSV file (required).
            ``seq_fashion_mnist``: as ``fashion_mnist``. Not allowed for the scikit-learn datasets,
            ``patterns_5x3`` and the generated tasks.
        label_column: ``csv`` only (required there): the column with the class labels. Labels may
            be strings or numbers; they map to ``0 .. C-1`` in sorted order (numeric order for a
            numeric column) and ``classes`` keeps the original labels as strings. Every other
            column is a feature and must be numeric and free of NaN / infinities.
        limit: quick runs: keep only the first ``limit`` training samples and the first
            ``max(1, limit // 6)`` test samples (the 6:1 ratio of Fashion-MNIST's 60000:10000).
            For ``fashion_mnist`` these are the first samples of the official files (not
            stratified; the files are well mixed). For the other datasets the cut is taken from
            the already shuffled stratified split. The scaling is fitted on the kept training
            samples.
        classes: keep only the samples whose label index (of the full dataset, e.g. 0 = "T-shirt/top"
            for ``fashion_mnist``; csv: the sorted order above) is in ``classes`` and relabel them
            ``0 .. k-1`` in the order given; ``Dataset.classes`` holds the kept names in that order.
            Distinct integers >= 0, at least 2, each below the dataset's number of classes (csv:
            checked after reading). Applied before the stratified split, before ``limit`` (which
            then counts kept samples: for ``fashion_mnist`` the first ``limit`` training images of
            those classes) and before the scaling is fitted (so a feature constant over the kept
            training samples, e.g. a pixel on in every kept bitmap, maps to 0 under ``minmax`` and
            ``standard``; ``scaling="none"`` keeps it). None: all classes. Generated tasks: applied
            to the generated splits (``spike_patterns``: checked against its ``n_classes``).
        task_params: options of a generated task (``dmts``: :class:`~memsnn.experiments.temporal.DMTSParams`,
            ``spike_patterns``: :class:`~memsnn.experiments.temporal.SpikePatternParams`), e.g.
            ``{"delay": 50, "noise_rate": 0.05}``; unknown keys and bad values are errors before
            anything is generated. Refused (unless None or empty) for every other dataset.

    Returns:
        A :class:`Dataset`.

    Raises:
        ValueError / TypeError: a bad argument (checked before anything is loaded), or bad data.
        FileNotFoundError: the Fashion-MNIST files or the CSV file are missing.
    """
    name = _check_args(name, seed, test_fraction, scaling, path, label_column, limit, classes, task_params)
    keep = _check_classes(classes, _N_CLASSES.get(name), f"dataset {name!r}")
    if name in _GENERATED:
        return _generated(name, seed, limit, keep, task_params)
    if name in _FASHION:
        directory = Path(path) if path is not None else Path(FASHION_MNIST_DIR)
        x_tr, y_tr, x_te, y_te = _read_fashion_mnist(directory, limit, keep)
        meta = dict(
            classes=list(FASHION_MNIST_CLASSES),
            feature_names=None,
            image_shape=(28, 28),
            source=str(directory),
        )
        if name == "seq_fashion_mnist":  # row-major pixels = time-major rows: x[t * 28 + c] = row t, column c
            meta["time_steps"] = _FASHION_ROWS
    else:
        if name == "csv":
            x, y, meta = _read_csv(Path(path), label_column)
            _check_classes(keep, len(meta["classes"]), f"CSV file {str(path)!r}")
        elif name == "patterns_5x3":
            x, y, meta = _read_patterns()
        else:
            x, y, meta = _read_sklearn(name)
        if keep is not None:
            x, y = _subset(x, y, keep)
        x_tr, x_te, y_tr, y_te = _split(name, x, y, seed, test_fraction)
        if limit is not None:
            x_tr, y_tr = x_tr[:limit], y_tr[:limit]
            x_te, y_te = x_te[: max(1, limit // 6)], y_te[: max(1, limit // 6)]
    if keep is not None:
        meta["classes"] = [meta["classes"][c] for c in keep]
    x_tr, x_te = _scale(x_tr, x_te, scaling)
    return Dataset(
        name=name,
        x_train=torch.from_numpy(np.ascontiguousarray(x_tr, dtype=np.float32)),
        y_train=torch.from_numpy(np.ascontiguousarray(y_tr, dtype=np.int64)),
        x_test=torch.from_numpy(np.ascontiguousarray(x_te, dtype=np.float32)),
        y_test=torch.from_numpy(np.ascontiguousarray(y_te, dtype=np.int64)),
        **meta,
    )


def _generated(name: str, seed: int, limit: int | None, keep: list[int] | None, task_params) -> Dataset:
    """A generated temporal task (:mod:`memsnn.experiments.temporal`): ``classes`` and ``limit``
    applied to each generated split as for the other datasets, no scaling (spikes stay 0 / 1)."""
    params = resolve_task_params(name, task_params)
    x_tr, y_tr, x_te, y_te, meta = generate_task(name, params, seed)
    if keep is not None:
        _check_classes(keep, len(meta["classes"]), f"dataset {name!r} with these task_params")
        (x_tr, y_tr), (x_te, y_te) = (_subset_torch(x_tr, y_tr, keep), _subset_torch(x_te, y_te, keep))
        meta["classes"] = [meta["classes"][c] for c in keep]
    if limit is not None:
        n_test = max(1, limit // 6)
        x_tr, y_tr, x_te, y_te = x_tr[:limit], y_tr[:limit], x_te[:n_test], y_te[:n_test]
    return Dataset(name=name, x_train=x_tr.contiguous(), y_train=y_tr.contiguous(), x_test=x_te.contiguous(),
                   y_test=y_te.contiguous(), **meta)


def _subset_torch(x: torch.Tensor, y: torch.Tensor, keep: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_subset` of tensors."""
    xs, ys = _subset(x.numpy(), y.numpy(), keep)
    return torch.from_numpy(np.ascontiguousarray(xs)), torch.from_numpy(np.ascontiguousarray(ys))


# -- sources ----------------------------------------------------------------------------------


def _read_sklearn(name: str):
    from sklearn import datasets as skd

    loader = {
        "digits": skd.load_digits,
        "iris": skd.load_iris,
        "breast_cancer": skd.load_breast_cancer,
    }[name]
    bunch = loader()
    meta = dict(
        classes=[str(c) for c in bunch.target_names],
        feature_names=[str(f) for f in bunch.feature_names],
        image_shape=(8, 8) if name == "digits" else None,
        source=None,
    )
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64), meta


def _read_patterns():
    """``"patterns_5x3"``: ``[200, 15]`` features in {0, 1} (each bitmap of :data:`PATTERNS_5X3`
    flattened row by row, 20 copies in a row) and ``[200]`` labels ``0 .. 9``."""
    bitmaps = np.array(
        [[pixel == "#" for row in rows for pixel in row] for rows in PATTERNS_5X3.values()], dtype=np.float64
    )
    labels = np.arange(len(PATTERNS_5X3), dtype=np.int64)
    meta = dict(classes=list(PATTERNS_5X3), feature_names=None, image_shape=(5, 3), source=None)
    return np.repeat(bitmaps, _PATTERN_COPIES, axis=0), np.repeat(labels, _PATTERN_COPIES), meta


def _subset(x: np.ndarray, y: np.ndarray, keep: list[int]):
    """The samples ``x [N, F]``, ``y [N]`` whose label is in ``keep``, in their order, relabelled
    ``keep[k] -> k``."""
    new_label = np.full(max(int(y.max(initial=0)), *keep) + 1, -1, dtype=np.int64)
    new_label[keep] = np.arange(len(keep))
    mask = np.isin(y, keep)
    return x[mask], new_label[y[mask]]


def _fashion_file(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_fashion_mnist(directory: Path, limit: int | None, keep: list[int] | None):
    files = {key: _fashion_file(directory, stem) for key, stem in _FASHION_FILES.items()}
    missing = [f"{stem}[.gz]" for key, stem in _FASHION_FILES.items() if files[key] is None]
    if missing:
        where = "does not exist" if not directory.is_dir() else f"lacks {', '.join(missing)}"
        raise FileNotFoundError(
            f"Fashion-MNIST not found: directory {str(directory)!r} {where}. "
            f"Debian's package dataset-fashion-mnist provides the files in {FASHION_MNIST_DIR} "
            "(apt-get install dataset-fashion-mnist), or pass path= a directory holding "
            + ", ".join(f"{s}[.gz]" for s in _FASHION_FILES.values())
        )
    arrays = {key: read_idx(p) for key, p in files.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        xf, yf = files[f"x_{split}"], files[f"y_{split}"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ValueError(f"{xf}: expected uint8 images of shape [N, 28, 28], found {x.dtype} {x.shape}")
        if y.dtype != np.uint8 or y.ndim != 1:
            raise ValueError(f"{yf}: expected uint8 labels of shape [N], found {y.dtype} {y.shape}")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{xf} holds {x.shape[0]} images but {yf} holds {y.shape[0]} labels")
        if y.size and y.max() >= len(FASHION_MNIST_CLASSES):
            raise ValueError(f"{yf}: label {int(y.max())} outside 0..{len(FASHION_MNIST_CLASSES) - 1}")
    x_tr, y_tr = arrays["x_train"], arrays["y_train"]
    x_te, y_te = arrays["x_test"], arrays["y_test"]
    if keep is not None:
        (x_tr, y_tr), (x_te, y_te) = _subset(x_tr, y_tr, keep), _subset(x_te, y_te, keep)
    if limit is not None:
        n_test = max(1, limit // 6)
        x_tr, y_tr, x_te, y_te = x_tr[:limit], y_tr[:limit], x_te[:n_test], y_te[:n_test]
    # uint8 pixels are exact in float32; scaling in float32 keeps the 60000 x 784 copy small
    return (
        x_tr.reshape(len(x_tr), -1).astype(np.float32),
        y_tr.astype(np.int64),
        x_te.reshape(len(x_te), -1).astype(np.float32),
        y_te.astype(np.int64),
    )


def _check_label_column(path: Path, columns: list[str], label_column: str) -> None:
    if label_column not in columns:
        close = difflib.get_close_matches(label_column, columns, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"label_column {label_column!r} is not a column of {str(path)!r}{hint} "
            f"(columns: {', '.join(map(repr, columns))})"
        )


def csv_columns(path: str | os.PathLike) -> list[str]:
    """The column names of CSV file ``path``, read from its header only (the rows are not read)."""
    import pandas as pd

    if not Path(path).is_file():
        raise FileNotFoundError(f"CSV file {str(path)!r} does not exist or is not a file")
    try:
        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except pd.errors.EmptyDataError:
        raise ValueError(f"CSV file {str(path)!r} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"CSV file {str(path)!r} cannot be parsed: {err}") from None


def check_csv_header(path: str | os.PathLike, label_column: str | None = None) -> tuple[str, str]:
    """Check the header of CSV file ``path`` and choose its label column, reading no data rows.

    ``label_column`` must be a column; None picks ``"label"`` when there is such a column, else
    the last column. Returns ``(label column, how it was chosen)``, the second a phrase for the
    user (``"given"``, ``"the column named 'label'"``, ``"the last column"``).

    Raises:
        FileNotFoundError: no such file. ValueError: empty, unparsable, a missing label column
        (with the closest name and every column), or no feature column besides the label.
    """
    columns = csv_columns(path)
    if label_column is not None:
        if not isinstance(label_column, str):
            raise TypeError(f"label_column must be a string, got {type(label_column).__name__} {label_column!r}")
        how = "given"
    elif "label" in columns:
        label_column, how = "label", "the column named 'label'"
    elif columns:
        label_column, how = columns[-1], "the last column"
    else:
        raise ValueError(f"CSV file {str(path)!r} has no columns")
    _check_label_column(Path(path), columns, label_column)
    if len(columns) < 2:
        raise ValueError(f"CSV file {str(path)!r} has no feature columns besides label column {label_column!r}")
    return label_column, how


def is_csv_path(dataset: str) -> bool:
    """True when ``dataset`` names a file rather than a built-in dataset: it ends in ``.csv``
    (any case) or holds a path separator."""
    return isinstance(dataset, str) and dataset not in _NAMES and (
        dataset.lower().endswith(".csv") or os.sep in dataset or "/" in dataset)


def dataset_kwargs(dataset: str, label_column: str | None = None) -> dict:
    """:func:`load_dataset` keywords (``name``, ``path``, ``label_column``) for ``dataset``: a
    dataset name (not ``"csv"``), or the path of a CSV file whose header is checked now
    (:func:`check_csv_header`; ``label_column`` None: ``label`` if present, else the last column).

    Raises the loader's named errors; an unknown name lists the names and says a CSV path is
    allowed too."""
    if is_csv_path(dataset):
        label, _ = check_csv_header(dataset, label_column)
        return {"name": "csv", "path": str(dataset), "label_column": label}
    names = [n for n in _NAMES if n != "csv"]
    if dataset not in names:
        raise ValueError(f"dataset={dataset!r} is not allowed: must be one of {', '.join(names)}, or the path "
                         "of a CSV file (ending in .csv)")
    if label_column is not None:
        raise ValueError(f"label_column={label_column!r} is only used with a CSV file, not dataset {dataset!r}")
    return {"name": dataset}


def dataset_errors(dataset, label_column: str | None = None) -> list[str]:
    """The problems :func:`dataset_kwargs` would raise, as messages (empty when fine)."""
    try:
        dataset_kwargs(dataset, label_column)
    except (ValueError, TypeError, FileNotFoundError) as err:
        return [str(err)]
    return []


def default_label_column(dataset, label_column: str | None = None) -> str | None:
    """``label_column``, or for a CSV path without one the column :func:`check_csv_header` picks
    (None where the header cannot be read: :func:`dataset_errors` reports why)."""
    if label_column is not None or not is_csv_path(dataset):
        return label_column
    try:
        return check_csv_header(dataset)[0]
    except (ValueError, TypeError, FileNotFoundError):
        return None


def dataset_slug(dataset: str) -> str:
    """A short name for run directories: the dataset name, or a CSV file's stem (letters, digits,
    '.', '_' and '-' only)."""
    text = Path(dataset).stem if is_csv_path(dataset) else dataset
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text) or "csv"


def _read_csv(path: Path, label_column: str):
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"CSV file {str(path)!r} is empty") from None
    columns = [str(c) for c in df.columns]
    df.columns = columns
    _check_label_column(path, columns, label_column)
    if len(df) == 0:
        raise ValueError(f"CSV file {str(path)!r} has a header but no data rows")
    feature_cols = [c for c in columns if c != label_column]
    if not feature_cols:
        raise ValueError(f"CSV file {str(path)!r} has no feature columns besides label column {label_column!r}")

    def where(row: int) -> str:  # row = 0-based data row; +2 for the header and 1-based lines
        return f"row {row + 1} (line {row + 2} of {str(path)!r})"

    labels = df[label_column]
    bad = np.flatnonzero(labels.isna().to_numpy())
    if bad.size:
        raise ValueError(f"label column {label_column!r} is missing / NaN at {where(int(bad[0]))}")

    features = np.empty((len(df), len(feature_cols)), dtype=np.float64)
    for j, col in enumerate(feature_cols):
        series = df[col]
        if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
            numeric = pd.to_numeric(series, errors="coerce")
            bad = np.flatnonzero((numeric.isna() & series.notna()).to_numpy())
            if bad.size:
                row = int(bad[0])
                raise ValueError(
                    f"feature column {col!r} is not numeric: value {series.iloc[row]!r} at {where(row)}"
                )
            series = numeric
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            row = int(bad[0])
            what = "missing / NaN" if np.isnan(values[row]) else f"not finite ({values[row]})"
            raise ValueError(f"feature column {col!r} is {what} at {where(row)}")
        features[:, j] = values

    if pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels):
        raw = labels.to_numpy()
        if np.issubdtype(raw.dtype, np.floating) and np.all(raw == np.round(raw)):
            raw = raw.astype(np.int64)  # "1.0" -> class "1"
    else:
        raw = labels.astype(str).to_numpy(dtype=object)
    uniq, y = np.unique(raw, return_inverse=True)
    if len(uniq) < 2:
        raise ValueError(
            f"label column {label_column!r} of {str(path)!r} has {len(uniq)} distinct value(s); "
            "a classification dataset needs at least 2 classes"
        )
    meta = dict(
        classes=[str(u) for u in uniq],
        feature_names=feature_cols,
        image_shape=None,
        source=str(path),
    )
    return features, y.astype(np.int64).reshape(-1), meta


# -- split and scaling ------------------------------------------------------------------------


def _split(name: str, x: np.ndarray, y: np.ndarray, seed: int, test_fraction: float):
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(x, y, test_size=test_fraction, stratify=y, random_state=int(seed))
    except ValueError as exc:
        counts = np.bincount(y)
        raise ValueError(
            f"dataset {name!r}: cannot make a stratified split of {len(y)} samples with "
            f"test_fraction={test_fraction!r} (smallest class has {counts.min()} samples, "
            f"{len(counts)} classes): {exc}"
        ) from None


def _scale(x_train: np.ndarray, x_test: np.ndarray, scaling: str):
    if scaling == "none":
        return x_train, x_test
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    scaler = MinMaxScaler() if scaling == "minmax" else StandardScaler()
    x_train_s = scaler.fit_transform(x_train)
    x_test_s = scaler.transform(x_test) if len(x_test) else x_test
    if scaling == "minmax":
        # mathematically in [0, 1]; clipping removes only float rounding (e.g. 1.0000001)
        np.clip(x_train_s, 0.0, 1.0, out=x_train_s)
    return x_train_s, x_test_s

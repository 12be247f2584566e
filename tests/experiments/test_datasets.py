"""Tests of memsnn.experiments.idx and memsnn.experiments.datasets (no downloads, ever)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn import datasets as skd
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from memsnn.experiments.config import ConfigError, DataSection, ExperimentConfig, load_config, save_config
from memsnn.experiments.datasets import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    PATTERNS_5X3,
    Dataset,
    dataset_names,
    load_dataset,
)
from memsnn.experiments.idx import IDXError, read_idx, write_idx
from memsnn.files import FileExistsRefusal

BUILTIN = {
    # name: (n_samples, n_features, n_classes, sklearn loader, image_shape)
    "digits": (1797, 64, 10, skd.load_digits, (8, 8)),
    "iris": (150, 4, 3, skd.load_iris, None),
    "breast_cancer": (569, 30, 2, skd.load_breast_cancer, None),
}


def _fashion_present() -> bool:
    d = Path(FASHION_MNIST_DIR)
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    return all((d / s).is_file() or (d / f"{s}.gz").is_file() for s in stems)


needs_fashion = pytest.mark.skipif(
    not _fashion_present(),
    reason=f"Fashion-MNIST IDX files not in {FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist)",
)


# ============================================================================================
# IDX reader / writer
# ============================================================================================

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
SHAPES = [(7,), (3, 5), (2, 3, 4)]


def _values(dtype, shape, rng):
    n = int(np.prod(shape))
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        v = rng.integers(info.min, int(info.max) + 1, size=n, dtype=np.int64).astype(dtype)
        v[0], v[-1] = info.min, info.max  # extremes catch sign and byte-order mistakes
    else:
        v = rng.standard_normal(n).astype(dtype) * 1e3
        v[0], v[-1] = np.finfo(dtype).min, np.finfo(dtype).tiny
    return v.reshape(shape)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_idx_round_trip(tmp_path, dtype, shape, gz):
    arr = _values(dtype, shape, np.random.default_rng(0))
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, arr)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == gz  # compressed exactly when the name ends in .gz
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.shape == shape
    np.testing.assert_array_equal(back, arr)
    back[(0,) * len(shape)] = 0  # a writable copy, not a view on the file's bytes


def test_idx_writes_the_documented_big_endian_layout(tmp_path):
    arr = np.array([[1, -2, 300], [4, 5, -32768]], dtype=np.int16)
    write_idx(tmp_path / "x.idx", arr)
    expected = b"\x00\x00\x0b\x02" + struct.pack(">II", 2, 3) + struct.pack(">6h", 1, -2, 300, 4, 5, -32768)
    assert (tmp_path / "x.idx").read_bytes() == expected


def test_idx_reads_a_hand_built_file(tmp_path):
    # int32, 1 dimension of 2: 256 and -2, big-endian
    (tmp_path / "h.idx").write_bytes(b"\x00\x00\x0c\x01" + b"\x00\x00\x00\x02" + b"\x00\x00\x01\x00\xff\xff\xff\xfe")
    np.testing.assert_array_equal(read_idx(tmp_path / "h.idx"), np.array([256, -2], dtype=np.int32))
    # the same content gzip-compressed under a .gz name
    (tmp_path / "h.idx.gz").write_bytes(gzip.compress((tmp_path / "h.idx").read_bytes()))
    np.testing.assert_array_equal(read_idx(tmp_path / "h.idx.gz"), [256, -2])


def test_write_idx_refuses_to_overwrite(tmp_path):
    path = tmp_path / "y.idx"
    write_idx(path, np.arange(3, dtype=np.uint8))
    with pytest.raises(FileExistsRefusal, match="already exists"):
        write_idx(path, np.arange(5, dtype=np.uint8))
    np.testing.assert_array_equal(read_idx(path), [0, 1, 2])  # untouched
    write_idx(path, np.arange(5, dtype=np.uint8), overwrite=True)
    np.testing.assert_array_equal(read_idx(path), [0, 1, 2, 3, 4])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["y.idx"]  # no temporary files left


def test_write_idx_rejects_unstorable_arrays(tmp_path):
    with pytest.raises(IDXError, match=r"int64.*allowed: 0x08"):
        write_idx(tmp_path / "z.idx", np.arange(3, dtype=np.int64))
    with pytest.raises(IDXError, match="0-dimensional"):
        write_idx(tmp_path / "z.idx", np.float32(1.0))
    assert not (tmp_path / "z.idx").exists()


_GOOD = b"\x00\x00\x08\x02" + struct.pack(">II", 2, 3) + bytes(range(6))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x00\x00\x08", r"too short for an IDX header: 3 bytes"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x02", r"too short for its header: 2 dimensions need 12"),
        (b"\x01\x00" + _GOOD[2:], r"bad magic: the first two bytes are 0x01 0x00"),
        (b"\x00\x01" + _GOOD[2:], r"bad magic: the first two bytes are 0x00 0x01"),
        (b"\x00\x00\x0a\x02" + _GOOD[4:], r"unknown type code 0x0A; allowed: 0x08 \(uint8\), 0x09 \(int8\)"),
        (b"\x00\x00\x08\x00" + bytes(4), r"zero dimensions"),
        (_GOOD[:-1], r"expected 6 data bytes, found 5"),
        (_GOOD + b"\x00", r"expected 6 data bytes, found 7"),
        (b"\x00\x00\x0d\x01" + struct.pack(">I", 2) + bytes(4), r"float32 expected 8 data bytes, found 4"),
    ],
    ids=["short", "short-dims", "magic0", "magic1", "type", "zero-dims", "too-few", "too-many", "float-len"],
)
def test_idx_corrupt_header_raises(tmp_path, content, message):
    path = tmp_path / "bad.idx"
    path.write_bytes(content)
    with pytest.raises(IDXError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)
    # the same problems are reported through gzip
    gz = tmp_path / "bad.idx.gz"
    gz.write_bytes(gzip.compress(content))
    with pytest.raises(IDXError, match=message):
        read_idx(gz)


def test_idx_truncated_gzip_raises(tmp_path):
    good = gzip.compress(_GOOD * 50)
    for name, content in [("cut.idx.gz", good[: len(good) // 2]), ("junk.idx.gz", b"\x1f\x8b" + b"\x00" * 30)]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(IDXError, match="truncated or corrupt gzip") as info:
            read_idx(path)
        assert str(path) in str(info.value)


# ============================================================================================
# built-in scikit-learn datasets
# ============================================================================================


@pytest.mark.parametrize("name", list(BUILTIN))
def test_builtin_shapes_and_dtypes(name):
    n, f, c, loader, image_shape = BUILTIN[name]
    ds = load_dataset(name)
    assert isinstance(ds, Dataset) and ds.name == name
    assert ds.x_train.dtype == torch.float32 and ds.x_test.dtype == torch.float32
    assert ds.y_train.dtype == torch.int64 and ds.y_test.dtype == torch.int64
    n_test = int(np.ceil(0.25 * n))
    assert ds.x_train.shape == (n - n_test, f) and ds.x_test.shape == (n_test, f)
    assert ds.y_train.shape == (n - n_test,) and ds.y_test.shape == (n_test,)
    assert ds.n_features == f and ds.n_classes == c
    assert ds.classes == [str(t) for t in loader().target_names]
    assert ds.feature_names == list(loader().feature_names)
    assert ds.image_shape == image_shape
    assert set(torch.cat([ds.y_train, ds.y_test]).tolist()) == set(range(c))
    d = ds.describe()
    assert (d["n_train"], d["n_test"], d["n_features"], d["n_classes"]) == (n - n_test, n_test, f, c)
    full = np.bincount(loader().target, minlength=c)
    assert [d["train_counts"][k] + d["test_counts"][k] for k in ds.classes] == full.tolist()


@pytest.mark.parametrize("name", list(BUILTIN))
def test_split_is_deterministic_and_uses_the_seed(name):
    a = load_dataset(name, seed=3)
    b = load_dataset(name, seed=3)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    c = load_dataset(name, seed=4)
    assert not torch.equal(a.x_test, c.x_test)
    assert not torch.equal(a.y_train, c.y_train)


@pytest.mark.parametrize("test_fraction", [0.25, 0.4])
@pytest.mark.parametrize("name", list(BUILTIN))
def test_split_is_stratified(name, test_fraction):
    n, _, c, loader, _ = BUILTIN[name]
    for seed in (0, 1):
        ds = load_dataset(name, seed=seed, test_fraction=test_fraction)
        n_test = len(ds.y_test)
        assert n_test == int(np.ceil(test_fraction * n))
        full = np.bincount(loader().target, minlength=c)
        got = np.bincount(ds.y_test.numpy(), minlength=c)
        expected = full * n_test / n
        assert np.all(np.abs(got - expected) <= 1), (got, expected)
        assert np.array_equal(got + np.bincount(ds.y_train.numpy(), minlength=c), full)


@pytest.mark.parametrize("name", list(BUILTIN))
def test_raw_split_is_a_partition_of_the_original_data(name):
    _, _, _, loader, _ = BUILTIN[name]
    bunch = loader()
    ds = load_dataset(name, scaling="none", seed=5)
    x = torch.cat([ds.x_train, ds.x_test]).double().numpy()
    y = torch.cat([ds.y_train, ds.y_test]).numpy()
    rows = np.column_stack([x, y])
    orig = np.column_stack([bunch.data.astype(np.float32).astype(np.float64), bunch.target])
    sort = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731
    np.testing.assert_array_equal(sort(rows), sort(orig))


@pytest.mark.parametrize("name", list(BUILTIN))
def test_minmax_scaling_is_fitted_on_the_training_split_only(name):
    raw = load_dataset(name, scaling="none", seed=2)
    ds = load_dataset(name, scaling="minmax", seed=2)
    assert torch.equal(raw.y_train, ds.y_train) and torch.equal(raw.y_test, ds.y_test)
    xtr, xte = raw.x_train.double().numpy(), raw.x_test.double().numpy()
    scaler = MinMaxScaler().fit(xtr)  # by hand, on the training split only
    np.testing.assert_allclose(ds.x_train.numpy(), scaler.transform(xtr), atol=1e-6)
    np.testing.assert_allclose(ds.x_test.numpy(), scaler.transform(xte), atol=1e-6)
    # training features in [0, 1]: min 0 and max 1 per non-constant feature, constant ones 0
    constant = xtr.max(0) == xtr.min(0)
    assert ds.x_train.min() >= 0 and ds.x_train.max() <= 1
    assert torch.all(ds.x_train[:, ~constant].amin(0) == 0)
    assert torch.all(ds.x_train[:, ~constant].amax(0) == 1)
    assert torch.all(ds.x_train[:, constant] == 0)
    if name == "digits":
        assert constant.any()  # the constant-feature branch was exercised


def test_test_features_are_not_refitted_and_may_leave_unit_interval():
    ds = load_dataset("breast_cancer", seed=0)
    assert ds.x_test.min() < 0 or ds.x_test.max() > 1


@pytest.mark.parametrize("name", list(BUILTIN))
def test_standard_scaling_is_fitted_on_the_training_split_only(name):
    raw = load_dataset(name, scaling="none", seed=1)
    ds = load_dataset(name, scaling="standard", seed=1)
    xtr, xte = raw.x_train.double().numpy(), raw.x_test.double().numpy()
    scaler = StandardScaler().fit(xtr)
    np.testing.assert_allclose(ds.x_train.numpy(), scaler.transform(xtr), atol=1e-5)
    np.testing.assert_allclose(ds.x_test.numpy(), scaler.transform(xte), atol=1e-5)
    nonconst = xtr.std(0) > 0
    np.testing.assert_allclose(ds.x_train[:, nonconst].double().mean(0).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train[:, nonconst].double().std(0, unbiased=False).numpy(), 1, atol=1e-4)


def test_limit_cuts_the_split_six_to_one():
    full = load_dataset("digits", seed=0, scaling="none")
    ds = load_dataset("digits", seed=0, scaling="none", limit=60)
    assert ds.x_train.shape == (60, 64) and ds.x_test.shape == (10, 64)
    assert torch.equal(ds.x_train, full.x_train[:60]) and torch.equal(ds.y_test, full.y_test[:10])
    scaled = load_dataset("digits", seed=0, limit=60)  # fitted on the 60 kept samples
    nonconst = ds.x_train.amax(0) > ds.x_train.amin(0)
    assert torch.all(scaled.x_train[:, nonconst].amax(0) == 1)


# ============================================================================================
# patterns_5x3
# ============================================================================================


def _bitmaps() -> np.ndarray:
    """``[10, 15]`` the ten prototypes of PATTERNS_5X3, flattened row by row."""
    return np.array([[p == "#" for row in PATTERNS_5X3[str(d)] for p in row] for d in range(10)], dtype=np.float32)


def test_patterns_bitmaps_are_5x3_binary_and_distinct():
    assert list(PATTERNS_5X3) == [str(d) for d in range(10)]
    for digit, rows in PATTERNS_5X3.items():
        assert len(rows) == 5 and all(len(r) == 3 and set(r) <= {"#", "."} for r in rows), digit
    x = _bitmaps()
    assert len({tuple(r) for r in x.tolist()}) == 10
    hamming = (x[:, None] != x[None]).sum(-1) + 99 * np.eye(10)
    assert hamming.min() == 1  # the closest pairs (0/8, 3/9, ...) differ in one pixel
    # every pixel is on in some digit and off in another: minmax leaves the full set as it is
    assert np.all(x.min(0) == 0) and np.all(x.max(0) == 1)


def test_patterns_hand_checked_glyphs():
    assert PATTERNS_5X3["7"] == ("###", "..#", "..#", "..#", "..#")
    assert PATTERNS_5X3["1"] == (".#.", "##.", ".#.", ".#.", ".#.")
    ds = load_dataset("patterns_5x3", scaling="none")
    seven = ds.x_train[ds.y_train == 7][0].reshape(5, 3)
    assert seven.tolist() == [[1, 1, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1]]
    one = ds.x_train[ds.y_train == 1][0].reshape(ds.image_shape)
    assert one.tolist() == [[0, 1, 0], [1, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0]]


@pytest.mark.parametrize("scaling", ["minmax", "none"])
def test_patterns_shape_values_and_stratified_split(scaling):
    ds = load_dataset("patterns_5x3", scaling=scaling)
    assert ds.name == "patterns_5x3" and ds.classes == [str(d) for d in range(10)]
    assert ds.image_shape == (5, 3) and ds.feature_names is None and ds.source is None
    assert ds.x_train.shape == (150, 15) and ds.x_test.shape == (50, 15)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert set(x.unique().tolist()) == {0.0, 1.0}
        # clean copies: every sample is exactly the bitmap of its label
        np.testing.assert_array_equal(x.numpy(), _bitmaps()[y.numpy()])
    assert torch.bincount(ds.y_train).tolist() == [15] * 10
    assert torch.bincount(ds.y_test).tolist() == [5] * 10


def test_patterns_split_uses_seed_and_test_fraction_and_limit():
    a, b = load_dataset("patterns_5x3", seed=1), load_dataset("patterns_5x3", seed=1)
    assert torch.equal(a.y_train, b.y_train) and torch.equal(a.x_test, b.x_test)
    assert not torch.equal(a.y_train, load_dataset("patterns_5x3", seed=2).y_train)
    ds = load_dataset("patterns_5x3", test_fraction=0.4)
    assert ds.x_train.shape == (120, 15) and torch.bincount(ds.y_test).tolist() == [8] * 10
    lim = load_dataset("patterns_5x3", seed=1, limit=30)
    assert lim.x_train.shape == (30, 15) and lim.x_test.shape == (5, 15)
    assert torch.equal(lim.y_train, a.y_train[:30]) and torch.equal(lim.x_test, a.x_test[:5])


def test_patterns_refuse_path_and_label_column():
    with pytest.raises(ValueError, match=r"path='p' is not used by dataset 'patterns_5x3' \(built into memsnn\)"):
        load_dataset("patterns_5x3", path="p")
    with pytest.raises(ValueError, match=r"label_column='y' is only used by dataset 'csv', not 'patterns_5x3'"):
        load_dataset("patterns_5x3", label_column="y")


# ============================================================================================
# class subsets
# ============================================================================================


@pytest.mark.parametrize("name, keep", [("digits", [7, 2, 9]), ("iris", [2, 0]), ("patterns_5x3", [8, 0, 3, 9])])
def test_classes_keep_exactly_those_samples_relabelled_in_order(name, keep):
    full = load_dataset(name, scaling="none")
    ds = load_dataset(name, scaling="none", classes=keep)
    assert ds.classes == [full.classes[c] for c in keep] and ds.n_classes == len(keep)
    for y in (ds.y_train, ds.y_test):
        assert set(y.tolist()) == set(range(len(keep)))
    # the kept samples are exactly the original ones of those classes, with label keep[k] -> k
    rows = lambda x, y: sorted(map(tuple, np.column_stack([x.numpy(), y.numpy()]).tolist()))  # noqa: E731
    x_all, y_all = torch.cat([full.x_train, full.x_test]), torch.cat([full.y_train, full.y_test])
    mask = torch.isin(y_all, torch.tensor(keep))
    expected = torch.tensor([keep.index(c) for c in y_all[mask].tolist()])
    got = rows(torch.cat([ds.x_train, ds.x_test]), torch.cat([ds.y_train, ds.y_test]))
    assert got == rows(x_all[mask], expected)
    # stratified split of the subset, and describe() shows only the kept classes
    d = ds.describe()
    assert list(d["train_counts"]) == ds.classes and d["n_classes"] == len(keep)
    assert d["n_train"] + d["n_test"] == int(mask.sum())
    n_test = int(np.ceil(0.25 * int(mask.sum())))
    assert d["n_test"] == n_test


def test_classes_filter_before_limit_and_scaling():
    ds = load_dataset("digits", classes=[3, 5], limit=60, scaling="none")
    assert ds.x_train.shape == (60, 64) and ds.x_test.shape == (10, 64)
    assert set(ds.y_train.tolist()) == {0, 1} and ds.classes == ["3", "5"]
    sub = load_dataset("digits", classes=[3, 5], scaling="none")
    assert torch.equal(ds.x_train, sub.x_train[:60]) and torch.equal(ds.y_test, sub.y_test[:10])
    scaled = load_dataset("digits", classes=[3, 5], limit=60)  # fitted on the 60 kept samples
    np.testing.assert_allclose(scaled.x_train.numpy(), MinMaxScaler().fit_transform(ds.x_train.numpy()), atol=1e-6)
    # patterns: pixels constant over the kept bitmaps map to 0 under minmax, scaling="none" keeps them
    pats = load_dataset("patterns_5x3", classes=[0, 8])
    raw = load_dataset("patterns_5x3", classes=[0, 8], scaling="none")
    differ = raw.x_train.amax(0) > raw.x_train.amin(0)
    assert differ.tolist() == [False] * 7 + [True] + [False] * 7  # 0 and 8 differ in the centre only
    assert torch.equal(pats.x_train[:, differ], raw.x_train[:, differ])
    assert torch.all(pats.x_train[:, ~differ] == 0)


def test_classes_on_fashion_mnist_files(tmp_path):
    parts = _fake_fashion(tmp_path, n_train=40, n_test=20)
    ds = load_dataset("fashion_mnist", path=tmp_path, scaling="none", classes=[4, 1], limit=6)
    assert ds.classes == ["Coat", "Trouser"]
    y_tr = parts["train-labels-idx1-ubyte"]
    idx = np.flatnonzero(np.isin(y_tr, [4, 1]))[:6]  # the first 6 training images of those classes
    np.testing.assert_array_equal(ds.x_train.numpy(), parts["train-images-idx3-ubyte"][idx].reshape(6, 784))
    np.testing.assert_array_equal(ds.y_train.numpy(), np.where(y_tr[idx] == 4, 0, 1))
    y_te = parts["t10k-labels-idx1-ubyte"]
    first = np.flatnonzero(np.isin(y_te, [4, 1]))[0]
    assert ds.x_test.shape == (1, 784) and ds.y_test.tolist() == [0 if y_te[first] == 4 else 1]


@needs_fashion
def test_fashion_mnist_class_subset_fills_the_limit():
    ds = load_dataset("fashion_mnist", classes=[0, 1, 2, 3, 4], limit=600)
    assert ds.x_train.shape == (600, 784) and ds.x_test.shape == (100, 784)
    assert ds.classes == FASHION_MNIST_CLASSES[:5]
    assert set(ds.y_train.tolist()) == set(range(5)) and int(ds.y_test.max()) <= 4
    full = load_dataset("fashion_mnist", scaling="none")
    keep = torch.isin(full.y_train, torch.tensor([0, 1, 2, 3, 4]))
    raw = load_dataset("fashion_mnist", classes=[0, 1, 2, 3, 4], limit=600, scaling="none")
    assert torch.equal(raw.x_train, full.x_train[keep][:600]) and torch.equal(raw.y_train, full.y_train[keep][:600])
    swapped = load_dataset("fashion_mnist", classes=[9, 0], scaling="none")
    assert swapped.classes == ["Ankle boot", "T-shirt/top"]
    assert torch.bincount(swapped.y_train).tolist() == [6000, 6000]
    assert torch.equal(swapped.x_train[swapped.y_train == 0], full.x_train[full.y_train == 9])


def test_classes_on_csv_are_checked_after_reading(tmp_path):
    text, _ = _csv_rows(n_per_class=8)
    path = _write(tmp_path / "animals.csv", text)
    ds = load_dataset("csv", path=path, label_column="kind", classes=[2, 0], scaling="none")
    assert ds.classes == ["cat", "ant"]
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):  # row i is ("cat", "ant", "bee")[i % 3]
        for row, label in zip(x[:, 0].long().tolist(), y.tolist()):
            assert ds.classes[label] == ("cat", "ant", "bee")[row % 3]
    with pytest.raises(ValueError, match=r"classes=\[0, 3\] is not allowed: .*integers in 0..2 \(CSV file .*animals.csv' "
                                         r"has 3 classes\).*3 is out of range"):
        load_dataset("csv", path=path, label_column="kind", classes=[0, 3])


@pytest.mark.parametrize(
    "classes, reason",
    [
        ([0, 0], r"classes=\[0, 0\] is not allowed: must be distinct class indices, integers in 0..9 \(dataset "
                 r"'digits' has 10 classes\), at least 2 of them \(None: all classes\); 0 given more than once"),
        ([4], r"classes=\[4\] is not allowed: .*at least 2 of them .*; 1 given"),
        ([], r"classes=\[\] is not allowed: .*; 0 given"),
        ([0, 10], r"classes=\[0, 10\] is not allowed: .*integers in 0..9.*; 10 is out of range"),
        ([-1, 2], r"classes=\[-1, 2\] is not allowed: .*; -1 is negative"),
        ([0, 1.5], r"classes=\[0, 1.5\] is not allowed: .*; 1.5 is not an integer"),
        ([0, True], r"classes=\[0, True\] is not allowed: .*; True is not an integer"),
        ("01", r"classes='01' is not allowed: .*; got type str"),
        (3, r"classes=3 is not allowed: .*; got type int"),
    ],
    ids=["duplicate", "one", "empty", "too-large", "negative", "float", "bool", "str", "int"],
)
def test_bad_classes_are_rejected(classes, reason):
    with pytest.raises(ValueError, match=reason):
        load_dataset("digits", classes=classes)


def test_classes_are_checked_before_any_file_is_read(tmp_path):
    with pytest.raises(ValueError, match=r"classes=\[0, 10\].*dataset 'fashion_mnist' has 10 classes"):
        load_dataset("fashion_mnist", path=tmp_path / "missing", classes=[0, 10])
    with pytest.raises(ValueError, match=r"classes=\[2, 2\].*integers >= 0"):
        load_dataset("csv", path=tmp_path / "missing.csv", label_column="y", classes=[2, 2])
    with pytest.raises(ValueError, match=r"classes=\[0, 2\].*dataset 'breast_cancer' has 2 classes"):
        load_dataset("breast_cancer", classes=[0, 2])


def test_config_data_classes_round_trip(tmp_path):
    cfg = ExperimentConfig.from_dict({"data": {"dataset": "patterns_5x3", "classes": [3, 0, 1]}})
    assert cfg.data.classes == (3, 0, 1)
    assert cfg.data.load_kwargs()["classes"] == (3, 0, 1) and DataSection().load_kwargs()["classes"] is None
    back = load_config(save_config(cfg, tmp_path / "c.toml"))
    assert back == cfg and back.data.classes == (3, 0, 1)
    assert "classes = [" in (tmp_path / "c.toml").read_text()
    assert "classes" not in ExperimentConfig().to_toml()  # None is omitted
    ds = load_dataset(seed=back.seed, **back.data.load_kwargs())
    assert ds.classes == ["3", "0", "1"]
    assert cfg.with_overrides({"data.classes": "[1, 2]"}).data.classes == (1, 2)
    assert cfg.with_overrides({"data.classes": "none"}).data.classes is None
    with pytest.raises(ConfigError, match=r"data.classes=\[0, 0\] is not allowed: must be distinct class indices"):
        DataSection(classes=[0, 0])
    with pytest.raises(ConfigError, match=r"data.classes=\[0, 3\] is not allowed: .*dataset 'iris' has 3 classes"):
        ExperimentConfig.from_dict({"data": {"dataset": "iris", "classes": [0, 3]}})


# ============================================================================================
# argument checking and names
# ============================================================================================


def test_dataset_names():
    assert dataset_names() == ["digits", "iris", "breast_cancer", "patterns_5x3", "fashion_mnist", "seq_fashion_mnist",
                               "dmts", "spike_patterns", "csv"]


@pytest.mark.parametrize(
    "bad, suggestion",
    [("digit", "digits"), ("fashion-mnist", "fashion_mnist"), ("Iris", "iris"), ("breast-cancer", "breast_cancer")],
)
def test_unknown_name_suggests_the_closest(bad, suggestion):
    with pytest.raises(ValueError, match=rf"unknown dataset '{bad}'; did you mean '{suggestion}'\?") as info:
        load_dataset(bad)
    for valid in dataset_names():
        assert valid in str(info.value)


def test_unknown_name_without_close_match_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"unknown dataset 'zzzzzz' \(valid: digits, iris"):
        load_dataset("zzzzzz")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(scaling="zscore"), r"scaling='zscore' is not allowed: must be one of 'minmax', 'standard', 'none'"),
        (dict(test_fraction=0.0), r"test_fraction=0.0 is not allowed: must be a number in \(0, 1\)"),
        (dict(test_fraction=1.0), r"test_fraction=1.0 is not allowed"),
        (dict(test_fraction=float("nan")), r"test_fraction=nan is not allowed"),
        (dict(test_fraction="0.2"), r"test_fraction='0.2' is not allowed"),
        (dict(seed=-1), r"seed=-1 is not allowed"),
        (dict(seed=1.5), r"seed=1.5 is not allowed"),
        (dict(limit=0), r"limit=0 is not allowed: must be an integer >= 1"),
        (dict(label_column="y"), r"label_column='y' is only used by dataset 'csv'"),
        (dict(path="/tmp/x.csv"), r"path='/tmp/x.csv' is not used by dataset 'digits'"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_dataset("digits", **kwargs)


def test_arguments_are_checked_before_any_file_is_read(tmp_path):
    # a bad scaling is reported, not the missing directory or file
    with pytest.raises(ValueError, match="scaling='bad'"):
        load_dataset("fashion_mnist", path=tmp_path / "missing", scaling="bad")
    with pytest.raises(ValueError, match="test_fraction=2"):
        load_dataset("csv", path=tmp_path / "missing.csv", label_column="y", test_fraction=2)


def test_dataset_checks_its_tensors():
    x, y = torch.zeros(4, 3), torch.zeros(4, dtype=torch.int64)
    Dataset("ok", x, y, x, y, classes=["a"])
    with pytest.raises(ValueError, match="y_train must be a 1-D int64"):
        Dataset("bad", x, y.int(), x, y, classes=["a"])
    with pytest.raises(ValueError, match="x_test has 4 samples but y_test has 3"):
        Dataset("bad", x, y, x, y[:3], classes=["a"])
    with pytest.raises(ValueError, match=r"labels 0..5, allowed 0..0"):
        Dataset("bad", x, y, x, torch.tensor([0, 5, 0, 0]), classes=["a"])


# ============================================================================================
# Fashion-MNIST
# ============================================================================================


def _fake_fashion(directory: Path, n_train=12, n_test=6, gz_train=False, gz_test=True):
    rng = np.random.default_rng(0)
    parts = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) * 3 % 10).astype(np.uint8),
    }
    for stem, arr in parts.items():
        gz = gz_train if stem.startswith("train") else gz_test
        write_idx(directory / (stem + (".gz" if gz else "")), arr)
    return parts


def test_fashion_mnist_loader_on_small_files_plain_and_gz(tmp_path):
    parts = _fake_fashion(tmp_path)
    ds = load_dataset("fashion_mnist", path=tmp_path, scaling="none", test_fraction=0.5)  # fraction ignored
    assert ds.x_train.shape == (12, 784) and ds.x_test.shape == (6, 784)
    assert ds.image_shape == (28, 28) and ds.classes == FASHION_MNIST_CLASSES and ds.feature_names is None
    # official order kept, images flattened row by row
    np.testing.assert_array_equal(ds.x_train.numpy(), parts["train-images-idx3-ubyte"].reshape(12, 784))
    np.testing.assert_array_equal(ds.y_test.numpy(), parts["t10k-labels-idx1-ubyte"])
    lim = load_dataset("fashion_mnist", path=tmp_path, scaling="none", limit=7)
    assert lim.x_train.shape == (7, 784) and lim.x_test.shape == (1, 784)
    assert torch.equal(lim.x_train, ds.x_train[:7]) and torch.equal(lim.y_test, ds.y_test[:1])


def test_fashion_mnist_missing_files_name_the_directory_and_the_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist") as info:
        load_dataset("fashion_mnist", path=tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)
    assert "apt-get install dataset-fashion-mnist" in str(info.value)
    _fake_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks t10k-labels-idx1-ubyte\[\.gz\]"):
        load_dataset("fashion_mnist", path=tmp_path)


def test_fashion_mnist_inconsistent_files_are_reported(tmp_path):
    _fake_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(5, dtype=np.uint8))
    with pytest.raises(ValueError, match="holds 6 images but .* holds 5 labels"):
        load_dataset("fashion_mnist", path=tmp_path)


@needs_fashion
def test_fashion_mnist_full():
    ds = load_dataset("fashion_mnist")
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.n_classes == 10 and ds.image_shape == (28, 28)
    assert torch.bincount(ds.y_train).tolist() == [6000] * 10
    assert torch.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.x_train.min() == 0 and ds.x_train.max() == 1


@needs_fashion
def test_fashion_mnist_limit_keeps_the_first_samples_of_the_official_files():
    d = Path(FASHION_MNIST_DIR)
    find = lambda stem: d / stem if (d / stem).is_file() else d / f"{stem}.gz"  # noqa: E731
    ds = load_dataset("fashion_mnist", limit=600, scaling="none")
    assert ds.x_train.shape == (600, 784) and ds.x_test.shape == (100, 784)
    images = read_idx(find("train-images-idx3-ubyte"))
    assert images.shape == (60000, 28, 28)
    np.testing.assert_array_equal(ds.x_train.numpy(), images[:600].reshape(600, 784))
    np.testing.assert_array_equal(ds.y_train.numpy(), read_idx(find("train-labels-idx1-ubyte"))[:600])
    np.testing.assert_array_equal(ds.y_test.numpy(), read_idx(find("t10k-labels-idx1-ubyte"))[:100])


# ============================================================================================
# CSV
# ============================================================================================


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _csv_rows(n_per_class=4, labels=("cat", "ant", "bee")):
    lines = ["a,b,kind"]
    i = 0
    for _ in range(n_per_class):
        for lab in labels:
            lines.append(f"{i},{(i * 7) % 5 + 0.5},{lab}")
            i += 1
    return "\n".join(lines) + "\n", i


def test_csv_loads_and_maps_string_labels_in_sorted_order(tmp_path):
    text, n = _csv_rows()
    path = _write(tmp_path / "animals.csv", text)
    ds = load_dataset("csv", path=path, label_column="kind", scaling="none", test_fraction=0.25, seed=0)
    assert ds.classes == ["ant", "bee", "cat"]
    assert ds.feature_names == ["a", "b"] and ds.n_features == 2 and ds.image_shape is None
    assert len(ds.y_train) + len(ds.y_test) == n and len(ds.y_test) == 3
    assert sorted(torch.bincount(ds.y_test).tolist()) == [1, 1, 1]  # stratified
    # column a is the row index; row i has label ("cat", "ant", "bee")[i % 3]
    truth = {"cat": 2, "ant": 0, "bee": 1}
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        for row, label in zip(x[:, 0].long().tolist(), y.tolist()):
            assert label == truth[("cat", "ant", "bee")[row % 3]]
    again = load_dataset("csv", path=str(path), label_column="kind", scaling="none", seed=0)
    assert torch.equal(again.x_train, ds.x_train)
    scaled = load_dataset("csv", path=path, label_column="kind", seed=0)
    assert scaled.x_train.amin(0).tolist() == [0, 0] and scaled.x_train.amax(0).tolist() == [1, 1]


def test_csv_numeric_labels_sort_numerically(tmp_path):
    text, _ = _csv_rows(labels=(10, 2, 1))
    ds = load_dataset("csv", path=_write(tmp_path / "n.csv", text), label_column="kind", scaling="none")
    assert ds.classes == ["1", "2", "10"]
    for row, label in zip(ds.x_train[:, 0].long().tolist(), ds.y_train.tolist()):
        assert ds.classes[label] == str((10, 2, 1)[row % 3])


def test_csv_missing_label_column_lists_the_columns(tmp_path):
    text, _ = _csv_rows()
    path = _write(tmp_path / "c.csv", text)
    with pytest.raises(ValueError, match=r"label_column 'knd' is not a column.*did you mean 'kind'.*'a', 'b', 'kind'"):
        load_dataset("csv", path=path, label_column="knd")
    with pytest.raises(ValueError, match="needs label_column="):
        load_dataset("csv", path=path)
    with pytest.raises(ValueError, match="needs path="):
        load_dataset("csv", label_column="kind")
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_dataset("csv", path=tmp_path / "nope.csv", label_column="kind")


def test_csv_non_numeric_feature_names_column_and_row(tmp_path):
    text, _ = _csv_rows()
    lines = text.splitlines()
    parts = lines[3].split(",")
    lines[3] = f"{parts[0]},abc,{parts[2]}"  # data row 3 (line 4), column b
    path = _write(tmp_path / "c.csv", "\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"feature column 'b' is not numeric: value 'abc' at row 3 \(line 4"):
        load_dataset("csv", path=path, label_column="kind")


def test_csv_nan_names_column_and_row(tmp_path):
    text, _ = _csv_rows()
    lines = text.splitlines()
    parts = lines[5].split(",")
    lines[5] = f",{parts[1]},{parts[2]}"  # empty cell: data row 5, column a
    path = _write(tmp_path / "f.csv", "\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"feature column 'a' is missing / NaN at row 5 \(line 6"):
        load_dataset("csv", path=path, label_column="kind")
    lines = text.splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ","  # empty label: data row 2
    path = _write(tmp_path / "l.csv", "\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"label column 'kind' is missing / NaN at row 2 \(line 3"):
        load_dataset("csv", path=path, label_column="kind")


def test_csv_too_small_for_a_stratified_split(tmp_path):
    path = _write(tmp_path / "s.csv", "a,kind\n1,x\n2,x\n3,y\n")
    with pytest.raises(ValueError, match="cannot make a stratified split"):
        load_dataset("csv", path=path, label_column="kind")

"""Reader and writer for IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a small header followed by a dense array, everything big-endian::

    byte 0-1   0x00 0x00                      (magic)
    byte 2     type code                      (see TYPE_CODES)
    byte 3     number of dimensions d >= 1
    4 * d      size of each dimension, big-endian uint32
    ...        the data, C order, big-endian items

Files may be stored plain or gzip-compressed; :func:`read_idx` recognises gzip by its own magic
bytes (``1f 8b``) or by a ``.gz`` file name, and :func:`write_idx` compresses when the target name
ends in ``.gz``. Every problem with a file raises :class:`IDXError` naming the file and what is wrong.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from memsnn.files import atomic_path

__all__ = ["IDXError", "TYPE_CODES", "read_idx", "write_idx"]

#: IDX type code -> big-endian numpy dtype of one item.
TYPE_CODES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),  # unsigned byte
    0x09: np.dtype(">i1"),  # signed byte
    0x0B: np.dtype(">i2"),  # short
    0x0C: np.dtype(">i4"),  # int
    0x0D: np.dtype(">f4"),  # float
    0x0E: np.dtype(">f8"),  # double
}

_GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ValueError):
    """An IDX file (or an array to be written as one) is malformed."""


def _allowed_codes() -> str:
    return ", ".join(f"0x{code:02X} ({dt.newbyteorder('=').name})" for code, dt in TYPE_CODES.items())


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC or (path.suffix == ".gz" and raw[:2] != b"\x00\x00"):
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            raise IDXError(f"{path}: truncated or corrupt gzip data ({exc})") from None
    return raw


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or gzip) into a native-byte-order numpy array.

    Args:
        path: the file; gzip-compressed files are decompressed transparently.

    Returns:
        A writable array with the file's shape and the dtype given by its type code
        (uint8, int8, int16, int32, float32 or float64), in native byte order.

    Raises:
        FileNotFoundError: the file does not exist.
        IDXError: the header or the data length is invalid, or the gzip stream is corrupt.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise IDXError(
            f"{path}: file too short for an IDX header: {len(data)} bytes, need at least 4 "
            "(2 zero bytes, type code, number of dimensions)"
        )
    if data[0] != 0 or data[1] != 0:
        raise IDXError(
            f"{path}: bad magic: the first two bytes are 0x{data[0]:02X} 0x{data[1]:02X}, "
            "an IDX file starts with 0x00 0x00"
        )
    code, ndim = data[2], data[3]
    if code not in TYPE_CODES:
        raise IDXError(f"{path}: unknown type code 0x{code:02X}; allowed: {_allowed_codes()}")
    if ndim == 0:
        raise IDXError(f"{path}: zero dimensions in the header; an IDX array needs at least 1")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise IDXError(
            f"{path}: file too short for its header: {ndim} dimensions need {header_len} header "
            f"bytes, the file has {len(data)}"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = TYPE_CODES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header_len
    if found != expected:
        raise IDXError(
            f"{path}: data length does not match the header: shape {tuple(shape)} of "
            f"{dtype.newbyteorder('=').name} expected {expected} data bytes, found {found}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | os.PathLike, array, overwrite: bool = False) -> Path:
    """Write ``array`` as an IDX file; gzip-compressed when ``path`` ends in ``.gz``.

    Args:
        path: target file. Written atomically; an existing file is refused unless ``overwrite``.
        array: array-like of dtype uint8, int8, int16, int32, float32 or float64 with 1 to 255
            dimensions, each smaller than 2**32.
        overwrite: replace an existing file.

    Returns:
        The path written.

    Raises:
        IDXError: the array's dtype or shape cannot be stored as IDX.
        memsnn.files.FileExistsRefusal: ``path`` exists and ``overwrite`` is False.
    """
    arr = np.asarray(array)
    native = {dt.newbyteorder("="): code for code, dt in TYPE_CODES.items()}
    code = native.get(arr.dtype.newbyteorder("="))
    if code is None:
        raise IDXError(
            f"{path}: cannot write dtype {arr.dtype} as IDX; allowed: {_allowed_codes()}"
        )
    if not 1 <= arr.ndim <= 255:
        raise IDXError(f"{path}: cannot write a {arr.ndim}-dimensional array as IDX; allowed: 1 to 255")
    if any(n >= 2**32 for n in arr.shape):
        raise IDXError(f"{path}: dimension sizes {arr.shape} do not fit in a uint32")
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = header + np.ascontiguousarray(arr, dtype=TYPE_CODES[code]).tobytes()
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        if path.suffix == ".gz":
            payload = gzip.compress(payload, mtime=0)
        tmp.write_bytes(payload)
    return path

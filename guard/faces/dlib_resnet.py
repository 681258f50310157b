"""dlib's 128-d face recognition ResNet, run with NumPy (OpenBLAS) instead of inside dlib.

Why this exists
---------------
The dlib-bin wheel is built without BLAS: its CPU convolutions use dlib's own matrix product,
and one descriptor (``face_recognition_model_v1.compute_face_descriptor``) costs about 80 ms on
one core. NumPy's wheel ships OpenBLAS, so the same network, with the same weights and the same
operations in float32, runs as im2col + one matrix product per convolution: 7-9x faster than
dlib with one OpenBLAS thread (``bench/descriptor.py``), and the weights load faster too. The
numbers are dlib's up to float32 rounding (the products sum in another order):
``tests/unit/test_dlib_resnet.py`` holds the two to 1e-4 per component on real faces (they
differ by under 1e-6).

What it reads
-------------
``dlib_face_recognition_resnet_model_v1.dat`` (shipped by ``face_recognition_models``) is a dlib
``serialize()`` of ``anet_type`` from dlib's ``dnn_face_recognition_ex.cpp``::

    loss_metric<fc_no_bias<128, avg_pool_everything<
        alevel0<alevel1<alevel2<alevel3<alevel4<
        max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>>

    alevel0 = ares_down<256>
    alevel1 = ares<256, ares<256, ares_down<256>>>
    alevel2 = ares<128, ares<128, ares_down<128>>>
    alevel3 = ares<64, ares<64, ares<64, ares_down<64>>>>
    alevel4 = ares<32, ares<32, ares<32>>>

    block<N, stride>(x) = affine(con<N,3,3,1,1>(relu(affine(con<N,3,3,stride,stride>(x)))))
    ares<N>(x)      = relu(x + block<N,1>(x))
    ares_down<N>(x) = relu(avg_pool<2,2,2,2>(x) + block<N,2>(x))

(the test-time network has ``affine`` where training had ``bn_con``). Details that decide the
numbers, all taken from dlib's source and checked against the file where it records them:

- The input layer turns an RGB chip into planes R, G, B of ``(pixel - mean) / 256`` with the
  means stored in the file (122.782, 117.001, 104.298).
- ``con`` and ``max_pool``/``avg_pool`` pad by ``size // 2`` when the stride is 1 and not at all
  when it is 2 (the paddings are also stored per layer; they are read and checked). Output size
  is ``1 + (in + 2 * pad - size) // stride``: 150 -> 72 (7x7/2) -> 35 (max pool) -> 17 -> 8 ->
  3 or 4 -> 1 or 2.
- ``add_prev`` of two tensors of different shapes is taken over the larger shape with the
  smaller one zero-extended (to the bottom and right, and in the higher channels): the
  shortcut of ``ares_down`` is not projected, so 32 channels meet 64, and at the 256-channel
  level a 4x4 average pool meets a 3x3 convolution (and 2x2 meets 1x1).
- ``fc_no_bias`` multiplies the 256 pooled features by a 256x128 matrix; ``loss_metric``
  outputs that vector unchanged (not normalised).

The serialisation (dlib/serialize.h, dlib/dnn/core.h, layers.h, tensor.h): an integer is one
byte holding its length (and 0x80 when negative) followed by that many little-endian bytes; a
string is its length then its bytes; a bool is the character ``'1'`` or ``'0'``; a float is an
integer mantissa and an integer exponent; a tensor (version 2) is its four dimensions then raw
little-endian float32 values. The network is written top-down as nested ``add_layer`` version
numbers, then each layer's details bottom-up (input first), each followed by the layer's saved
state. Every version string, layer kind, shape, stride and padding is checked against the
architecture above, and every weight must be finite: a file that is not this network raises
:class:`DlibModelFormatError` rather than computing anything. (dlib's format has no checksum,
so a weight changed to another finite value cannot be told apart; pin the file's hash where
that matters.)

The forward pass runs on ``(N, H, W, C)`` float32 arrays, so one matrix product serves a whole
batch. It keeps no state between calls: one instance may be used from several threads.

OpenBLAS threads: on cores that other work shares, give OpenBLAS one thread
(``OPENBLAS_NUM_THREADS=1`` before NumPy loads, or threadpoolctl). Its threads wait for each
other on every product: with two threads on two busy cores a descriptor's p50 was 3 to 60
times that with one thread, at times slower than dlib's (``bench/descriptor.py``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import NDArray

from guard.faces.dlib_resnet_file import (
    CHIP_SIZE,
    DIMENSION,
    SHORTCUT_POOL,
    Affine,
    Conv,
    DlibModelFormatError,
    Float32Array,
    Network,
    Pool,
    parse,
)

# Chips per pass: bounds the im2col buffers (3 MB per chip at the first layer).
DEFAULT_BATCH: Final = 16


# ---------------------------------------------------------------------------------------------
# The forward pass, channels-last
#
# A tensor that a stride-1 convolution reads is written into the interior of a zero-bordered
# buffer, so the padding costs no extra copy; the layers take and return interior views.


def _bordered(shape: tuple[int, int, int, int], pad: int) -> tuple[Float32Array, Float32Array]:
    """A zero buffer with ``pad`` pixels of border, and the view of its interior."""
    n, height, width, channels = shape
    buffer = np.zeros((n, height + 2 * pad, width + 2 * pad, channels), np.float32)
    return buffer, buffer[:, pad : pad + height, pad : pad + width]


def _windows(x: Float32Array, size: int, stride: int) -> Float32Array:
    """im2col as a strided view: ``(N, out_h, out_w, size, size * C)``, each window row a run
    of ``size * C`` floats that lie contiguous in a channels-last row."""
    n, height, width, channels = x.shape
    sn, sh, sw, sc = x.strides
    if sc != x.itemsize or sw != channels * sc:
        raise AssertionError("im2col needs rows of contiguous pixels")  # pragma: no cover
    out_h = 1 + (height - size) // stride
    out_w = 1 + (width - size) // stride
    return as_strided(
        x,
        (n, out_h, out_w, size, size * channels),
        (sn, stride * sh, stride * sw, sh, sc),
        writeable=False,
    )


def _conv(source: Float32Array, conv: Conv) -> Float32Array:
    """dlib's ``con`` and its bias over ``source``, which already carries the layer's zero
    padding: one matrix product of the im2col rows (R, S, C order) by the filters."""
    windows = _windows(source, conv.size, conv.stride)
    n, out_h, out_w = windows.shape[:3]
    columns = np.ascontiguousarray(windows).reshape(n * out_h * out_w, -1)
    out: Float32Array = columns @ conv.matrix
    out += conv.bias
    return out.reshape(n, out_h, out_w, conv.filters)


def _affine(x: Float32Array, affine: Affine, out: Float32Array, *, relu: bool) -> None:
    """dlib's ``affine`` (``x * gamma + beta`` per channel), then ``relu`` if asked, into
    ``out``."""
    np.multiply(x, affine.gamma, out=out)
    out += affine.beta
    if relu:
        np.maximum(out, np.float32(0), out=out)


def _pool_windows(x: Float32Array, pool: Pool) -> list[Float32Array]:
    """The window's offsets as strided views, in row-major order (no pooling pads here)."""
    size, stride = pool.size or x.shape[1], pool.stride
    out_h = 1 + (x.shape[1] - size) // stride
    out_w = 1 + (x.shape[2] - size) // stride
    return [
        x[:, r : r + stride * (out_h - 1) + 1 : stride, c : c + stride * (out_w - 1) + 1 : stride]
        for r in range(size)
        for c in range(size)
    ]


def _max_pool(x: Float32Array, pool: Pool, out: Float32Array) -> None:
    first, *rest = _pool_windows(x, pool)
    np.copyto(out, first)
    for window in rest:
        np.maximum(out, window, out=out)


def _avg_pool(x: Float32Array, pool: Pool) -> Float32Array:
    """The window summed in row-major order, times ``1 / (size * size)``, as dlib does."""
    windows = _pool_windows(x, pool)
    out = windows[0].copy()
    for window in windows[1:]:
        out += window
    out *= np.float32(1.0 / len(windows))
    return out


def _add_prev(a: Float32Array, b: Float32Array, out: Float32Array) -> None:
    """dlib's ``add_prev`` into ``out`` (the larger shape): the smaller input zero-extended to
    the bottom, the right and the higher channels."""
    if a.shape == b.shape:
        np.add(a, b, out=out)
        return
    out[...] = 0
    out[:, : a.shape[1], : a.shape[2], : a.shape[3]] = a
    out[:, : b.shape[1], : b.shape[2], : b.shape[3]] += b


class ResNetDescriptor:
    """dlib's face recognition ResNet over NumPy/OpenBLAS: the descriptor of
    ``face_recognition_model_v1.compute_face_descriptor(chip)`` for 150x150 RGB chips from
    ``dlib.get_face_chip(image, shape, 150, 0.25)``, several times faster than dlib-bin's
    BLAS-less build (see the module docstring). Thread-safe: ``compute`` keeps no state."""

    def __init__(self, network: Network, *, batch: int = DEFAULT_BATCH) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self._net = network
        self._batch = batch

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, batch: int = DEFAULT_BATCH
    ) -> ResNetDescriptor:
        """Load ``dlib_face_recognition_resnet_model_v1.dat``; :class:`DlibModelFormatError`
        if the file is not that network (truncated, corrupt or another model)."""
        file = Path(path)
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise DlibModelFormatError(
                f"cannot read dlib's face recognition model at {file}: {exc.strerror or exc}"
            ) from exc
        return cls(parse(data, str(file)), batch=batch)

    @classmethod
    def from_package(cls, *, batch: int = DEFAULT_BATCH) -> ResNetDescriptor:
        """Load the weights that ``face_recognition_models`` ships (as the dlib engine does)."""
        from guard.faces.dlib_weights import import_dlib

        _, weights = import_dlib()
        return cls.from_file(weights.face_recognition_model_location(), batch=batch)

    @property
    def dimension(self) -> int:
        return DIMENSION

    def compute(self, chips: NDArray[np.uint8]) -> Float32Array:
        """Descriptors of ``chips``, uint8 RGB of shape ``(N, 150, 150, 3)`` (one chip of shape
        ``(150, 150, 3)`` is taken as ``N = 1``): float32 ``(N, 128)``, not normalised, as
        dlib returns them."""
        array = np.asarray(chips)
        if array.ndim == 3:
            array = array[None]
        if array.dtype != np.uint8 or array.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(
                f"chips must be uint8 RGB of shape (N, {CHIP_SIZE}, {CHIP_SIZE}, 3), "
                f"not {array.dtype} {array.shape}"
            )
        out = np.empty((array.shape[0], DIMENSION), np.float32)
        for start in range(0, array.shape[0], self._batch):
            out[start : start + self._batch] = self._forward(array[start : start + self._batch])
        return out

    def _forward(self, chips: NDArray[np.uint8]) -> Float32Array:
        net = self._net
        # dlib: (pixel - mean) / 256 in float; the division by a power of two is exact.
        x = (chips.astype(np.float32) - net.means) * np.float32(1 / 256)
        stem = _conv(x, net.stem)
        _affine(stem, net.stem_affine, stem, relu=True)
        n, height, width, channels = _pool_windows(stem, net.stem_pool)[0].shape
        # Each block's output gets the border its successor's stride-1 con pads with (1);
        # a stride-2 con (padding 0) reads the interior.
        padded, x = _bordered((n, height, width, channels), 1)
        _max_pool(stem, net.stem_pool, x)
        for block in net.blocks:
            first = _conv(x if block.down else padded, block.conv1)
            middle_padded, middle = _bordered(first.shape, block.conv2.padding)
            _affine(first, block.affine1, middle, relu=True)
            second = _conv(middle_padded, block.conv2)
            _affine(second, block.affine2, second, relu=False)
            shortcut = _avg_pool(x, SHORTCUT_POOL) if block.down else x
            shape = tuple(max(p, q) for p, q in zip(shortcut.shape, second.shape, strict=True))
            padded, x = _bordered((shape[0], shape[1], shape[2], shape[3]), 1)
            _add_prev(shortcut, second, x)
            np.maximum(x, np.float32(0), out=x)
        features = _avg_pool(x, Pool(0, 1, 0)).reshape(x.shape[0], x.shape[3])
        result: Float32Array = features @ net.fc
        return result

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

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import NDArray

from guard.errors import ConfigurationError

CHIP_SIZE: Final = 150
DIMENSION: Final = 128
# Chips per pass: bounds the im2col buffers (3 MB per chip at the first layer).
DEFAULT_BATCH: Final = 16

Float32Array = NDArray[np.float32]
_T = TypeVar("_T")
_A = TypeVar("_A")


class DlibModelFormatError(ConfigurationError):
    """The weights file is not dlib's face recognition ResNet (truncated, corrupt, or another
    network). Reinstall ``face_recognition_models`` or point at the right file."""

    code = "dlib_model_format"


# ---------------------------------------------------------------------------------------------
# dlib's serialisation


class _Reader:
    """Reads dlib's ``serialize()`` encoding from bytes, failing with the offset and what was
    expected."""

    def __init__(self, data: bytes, source: str) -> None:
        self._data = memoryview(data)
        self._source = source
        self.pos = 0

    def fail(self, problem: str) -> DlibModelFormatError:
        return DlibModelFormatError(
            f"{self._source} is not dlib's face recognition ResNet "
            f"(dlib_face_recognition_resnet_model_v1.dat): {problem} at byte {self.pos} of "
            f"{len(self._data)}; reinstall face_recognition_models or fix the path"
        )

    def _take(self, count: int, what: str) -> memoryview:
        end = self.pos + count
        if count < 0 or end > len(self._data):
            raise self.fail(f"the file ends inside {what}")
        chunk = self._data[self.pos : end]
        self.pos = end
        return chunk

    def integer(self, what: str) -> int:
        head = self._take(1, what)[0]
        size, negative = head & 0x0F, bool(head & 0x80)
        if head & 0x70 or size > 8:
            raise self.fail(f"no integer where {what} belongs (byte 0x{head:02x})")
        value = int.from_bytes(self._take(size, what), "little")
        return -value if negative else value

    def count(self, what: str, limit: int = 1 << 31) -> int:
        value = self.integer(what)
        if not 0 <= value <= limit:
            raise self.fail(f"{what} is {value}")
        return value

    def string(self, what: str) -> str:
        length = self.count(f"the length of {what}", 256)
        raw = self._take(length, what)
        try:
            return bytes(raw).decode("ascii")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not text") from None

    def tag(self, expected: str) -> None:
        found = self.string(f"the version string {expected!r}")
        if found != expected:
            raise self.fail(f"found {found!r} where {expected!r} belongs")

    def version(self, what: str, allowed: tuple[int, ...]) -> int:
        found = self.integer(f"the version of {what}")
        if found not in allowed:
            raise self.fail(f"{what} has version {found}, not one of {allowed}")
        return found

    def boolean(self, what: str) -> bool:
        flag = self._take(1, what)[0]
        if flag not in b"01":
            raise self.fail(f"no bool where {what} belongs")
        return flag == ord("1")

    def real(self, what: str) -> float:
        """dlib's portable float: an integer mantissa and an int16 exponent (32000-32002 mark
        inf, -inf and nan, which no setting of this network may be)."""
        mantissa = self.integer(f"the mantissa of {what}")
        exponent = self.integer(f"the exponent of {what}")
        if not -32768 <= exponent < 32000:
            raise self.fail(f"{what} is not a finite number")
        return math.ldexp(mantissa, exponent)

    def tensor(self, what: str) -> Float32Array:
        """A ``resizable_tensor`` (version 2): four dimensions, then raw little-endian
        float32 values, returned flat."""
        self.version(f"the tensor {what}", (2,))
        dims = [self.count(f"a dimension of {what}") for _ in range(4)]
        size = math.prod(dims)
        raw = self._take(4 * size, f"the values of {what}")
        values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        if not np.isfinite(values).all():
            raise self.fail(f"{what} holds values that are not finite")
        return values

    def alias(self, what: str) -> tuple[int, int, int, int]:
        """An ``alias_tensor``: the shape of a view into a layer's parameter tensor."""
        self.version(f"the alias tensor {what}", (1,))
        n, k, nr, nc = (self.count(f"a dimension of {what}") for _ in range(4))
        return n, k, nr, nc

    def at_end(self) -> bool:
        return self.pos == len(self._data)


def _frozen(array: Float32Array) -> Float32Array:
    """A read-only contiguous copy: weights no call may change."""
    copy = np.array(array, dtype=np.float32, order="C")
    copy.setflags(write=False)
    return copy


# ---------------------------------------------------------------------------------------------
# The architecture, as dlib serialises it


# Top-down, as the nested add_layer versions appear. "tag"/"skip" layers hold no details.
def _residual(down: bool) -> list[str]:
    block = ["affine", "con", "relu", "affine", "con", "tag"]
    if down:
        return ["relu", "add_prev", "avg_pool", "skip", "tag", *block]
    return ["relu", "add_prev", *block]


# (filters, downsampling) of each residual block, bottom-up: alevel4 ... alevel0.
_BLOCKS: Final = (
    *[(32, False)] * 3,
    (64, True),
    *[(64, False)] * 3,
    (128, True),
    *[(128, False)] * 2,
    (256, True),
    *[(256, False)] * 2,
    (256, True),
)


def _layers_top_down() -> list[str]:
    layers = ["fc", "avg_pool"]
    for _, down in reversed(_BLOCKS):
        layers += _residual(down)
    return [*layers, "max_pool", "relu", "affine", "con"]


@dataclass(frozen=True)
class _Conv:
    """A ``con`` layer: weights as an im2col matrix ``(size * size * channels, filters)``."""

    matrix: Float32Array
    bias: Float32Array
    size: int
    stride: int
    padding: int

    @property
    def filters(self) -> int:
        return int(self.bias.shape[0])


@dataclass(frozen=True)
class _Affine:
    gamma: Float32Array
    beta: Float32Array


@dataclass(frozen=True)
class _Pool:
    size: int  # 0: the whole plane (avg_pool_everything)
    stride: int
    padding: int


_SHORTCUT_POOL: Final = _Pool(2, 2, 0)  # ares_down's avg_pool<2,2,2,2>


@dataclass(frozen=True)
class _Block:
    conv1: _Conv
    affine1: _Affine
    conv2: _Conv
    affine2: _Affine
    down: bool


def _read_con(reader: _Reader, channels: int) -> _Conv:
    reader.tag("con_4")
    params = reader.tensor("the con parameters")
    filters = reader.count("num_filters")
    nr, nc = reader.count("nr"), reader.count("nc")
    stride_y, stride_x = reader.count("stride_y"), reader.count("stride_x")
    pad_y, pad_x = reader.count("padding_y"), reader.count("padding_x")
    shape = reader.alias("con filters")
    bias_shape = reader.alias("con biases")
    for name in ("learning_rate", "weight_decay", "bias_learning_rate", "bias_weight_decay"):
        reader.real(f"the con {name} multiplier")
    if nr != nc or stride_y != stride_x or pad_y != pad_x:
        raise reader.fail(f"a con layer is not square ({nr}x{nc}, stride {stride_y}x{stride_x})")
    if shape != (filters, channels, nr, nc) or bias_shape != (1, filters, 1, 1):
        raise reader.fail(f"con filters {shape} do not fit {channels} input channels")
    if params.size != filters * channels * nr * nc + filters:
        raise reader.fail("the con parameter tensor does not hold its filters and biases")
    weights = params[: filters * channels * nr * nc].reshape(filters, channels, nr, nc)
    # (F, C, R, S) -> rows ordered (R, S, C) to match im2col on channels-last images.
    matrix = weights.transpose(2, 3, 1, 0).reshape(-1, filters)
    return _Conv(_frozen(matrix), _frozen(params[-filters:]), nr, stride_y, pad_y)


def _read_affine(reader: _Reader, channels: int) -> _Affine:
    reader.tag("affine_")
    params = reader.tensor("the affine parameters")
    gamma = reader.alias("affine gamma")
    beta = reader.alias("affine beta")
    mode = reader.integer("the affine mode")
    if mode != 0 or gamma != (1, channels, 1, 1) or beta != gamma or params.size != 2 * channels:
        raise reader.fail(f"an affine layer is not per-channel over {channels} channels")
    return _Affine(_frozen(params[:channels]), _frozen(params[channels:]))


def _read_pool(reader: _Reader, kind: str) -> _Pool:
    reader.tag(f"{kind}_2")
    nr, nc = reader.count("nr"), reader.count("nc")
    stride_y, stride_x = reader.count("stride_y"), reader.count("stride_x")
    pad_y, pad_x = reader.count("padding_y"), reader.count("padding_x")
    if nr != nc or stride_y != stride_x or pad_y != pad_x:
        raise reader.fail(f"a {kind} layer is not square")
    return _Pool(nr, stride_y, pad_y)


def _read_state(reader: _Reader, version: int, input_layer: bool) -> None:
    """What ``add_layer`` saves after a layer's details: flags and training buffers."""
    for name in ("this_layer_setup_called", "gradient_input_is_stale", "output_disabled"):
        reader.boolean(name)
    if input_layer:
        for name in ("x_grad", "cached_output", "grad_final"):
            reader.tensor(name)
        if version >= 3:
            reader.count("sample_expansion_factor")
        return
    reader.tensor("x_grad")
    reader.tensor("cached_output")
    if version >= 2:
        reader.tensor("params_grad")


@dataclass(frozen=True)
class _Network:
    means: Float32Array  # R, G, B
    stem: _Conv
    stem_affine: _Affine
    stem_pool: _Pool
    blocks: tuple[_Block, ...]
    fc: Float32Array  # (256, 128)


def _read_fc(reader: _Reader, channels: int) -> Float32Array:
    reader.tag("fc_2")
    outputs, inputs = reader.count("num_outputs"), reader.count("num_inputs")
    params = reader.tensor("the fc parameters")
    weights = reader.alias("fc weights")
    reader.alias("fc biases")
    bias_mode = reader.integer("the fc bias mode")  # 1: FC_NO_BIAS
    for name in ("learning_rate", "weight_decay", "bias_learning_rate", "bias_weight_decay"):
        reader.real(f"the fc {name} multiplier")
    shape = (channels, DIMENSION, 1, 1)
    if (outputs, inputs, bias_mode, weights) != (DIMENSION, channels, 1, shape):
        raise reader.fail(f"the last layer is not fc_no_bias<{DIMENSION}> over {channels} inputs")
    if params.size != channels * DIMENSION:
        raise reader.fail("the fc parameter tensor does not hold its weights")
    return _frozen(params.reshape(channels, DIMENSION))


class _Layers:
    """The layers' details in file order (bottom-up), each followed by its saved state."""

    def __init__(self, reader: _Reader, kinds: list[str], versions: list[int]) -> None:
        self._reader = reader
        pairs = zip(reversed(kinds), reversed(versions), strict=True)
        self._pending = iter([(k, v) for k, v in pairs if k not in ("tag", "skip")])
        self._first = True

    def read(self, kind: str, details: Callable[[_Reader, _A], _T], argument: _A) -> _T:
        expected, version = next(self._pending)
        if expected != kind:  # pragma: no cover - both follow _layers_top_down()
            raise AssertionError(f"reading {kind} where {expected} belongs")
        value = details(self._reader, argument)
        _read_state(self._reader, version, input_layer=self._first)
        self._first = False
        return value

    def tag(self, kind: str) -> None:
        """A layer whose details are just its version string (relu_, add_prev_)."""
        self.read(kind, _Reader.tag, f"{kind}_")


def _read_block(layers: _Layers, reader: _Reader, inputs: int, filters: int, down: bool) -> _Block:
    conv1 = layers.read("con", _read_con, inputs)
    affine1 = layers.read("affine", _read_affine, filters)
    layers.tag("relu")
    conv2 = layers.read("con", _read_con, filters)
    affine2 = layers.read("affine", _read_affine, filters)
    if down and layers.read("avg_pool", _read_pool, "avg_pool") != _SHORTCUT_POOL:
        raise reader.fail("a residual shortcut's avg_pool is not 2x2, stride 2")
    layers.tag("add_prev")
    layers.tag("relu")
    # A stride-1 3x3 con pads by 1, a stride-2 one not at all (dlib's defaults).
    for conv, stride in ((conv1, 2 if down else 1), (conv2, 1)):
        if (conv.filters, conv.size, conv.stride) != (filters, 3, stride):
            raise reader.fail(f"a residual con layer is not {filters} filters of 3x3")
        if conv.padding != (1 if stride == 1 else 0):
            raise reader.fail(f"a residual con layer has padding {conv.padding}")
    return _Block(conv1, affine1, conv2, affine2, down)


def _parse(data: bytes, source: str) -> _Network:
    reader = _Reader(data, source)
    reader.version("add_loss_layer", (1,))
    reader.tag("loss_metric_2")
    reader.real("the loss margin")
    reader.real("the loss distance threshold")

    # The nested add_layer versions, top-down; the bottom one sits on the input layer.
    kinds = _layers_top_down()
    versions = []
    for index, kind in enumerate(kinds):
        if kind in ("tag", "skip"):
            allowed: tuple[int, ...] = (1,)
        else:
            allowed = (2, 3) if index == len(kinds) - 1 else (1, 2)
        versions.append(reader.version(f"layer {index} ({kind})", allowed))

    reader.tag("input_rgb_image_sized")
    means = np.array([reader.real(f"the {c} mean") for c in ("red", "green", "blue")])
    if (reader.count("nr"), reader.count("nc")) != (CHIP_SIZE, CHIP_SIZE):
        raise reader.fail(f"the input is not {CHIP_SIZE}x{CHIP_SIZE}")

    layers = _Layers(reader, kinds, versions)
    stem = layers.read("con", _read_con, 3)
    if (stem.filters, stem.size, stem.stride, stem.padding) != (32, 7, 2, 0):
        raise reader.fail("the first con layer is not 32 filters of 7x7, stride 2, no padding")
    stem_affine = layers.read("affine", _read_affine, stem.filters)
    layers.tag("relu")
    stem_pool = layers.read("max_pool", _read_pool, "max_pool")
    if stem_pool != _Pool(3, 2, 0):
        raise reader.fail("the first max_pool is not 3x3, stride 2, no padding")
    blocks = []
    channels = stem.filters
    for filters, down in _BLOCKS:
        blocks.append(_read_block(layers, reader, channels, filters, down))
        channels = filters
    if layers.read("avg_pool", _read_pool, "avg_pool") != _Pool(0, 1, 0):
        raise reader.fail("the last pool is not avg_pool_everything")
    fc = layers.read("fc", _read_fc, channels)
    if not reader.at_end():
        raise reader.fail("data follows the network")
    return _Network(
        means=_frozen(means.astype(np.float32)),
        stem=stem,
        stem_affine=stem_affine,
        stem_pool=stem_pool,
        blocks=tuple(blocks),
        fc=fc,
    )


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


def _conv(source: Float32Array, conv: _Conv) -> Float32Array:
    """dlib's ``con`` and its bias over ``source``, which already carries the layer's zero
    padding: one matrix product of the im2col rows (R, S, C order) by the filters."""
    windows = _windows(source, conv.size, conv.stride)
    n, out_h, out_w = windows.shape[:3]
    columns = np.ascontiguousarray(windows).reshape(n * out_h * out_w, -1)
    out: Float32Array = columns @ conv.matrix
    out += conv.bias
    return out.reshape(n, out_h, out_w, conv.filters)


def _affine(x: Float32Array, affine: _Affine, out: Float32Array, *, relu: bool) -> None:
    """dlib's ``affine`` (``x * gamma + beta`` per channel), then ``relu`` if asked, into
    ``out``."""
    np.multiply(x, affine.gamma, out=out)
    out += affine.beta
    if relu:
        np.maximum(out, np.float32(0), out=out)


def _pool_windows(x: Float32Array, pool: _Pool) -> list[Float32Array]:
    """The window's offsets as strided views, in row-major order (no pooling pads here)."""
    size, stride = pool.size or x.shape[1], pool.stride
    out_h = 1 + (x.shape[1] - size) // stride
    out_w = 1 + (x.shape[2] - size) // stride
    return [
        x[:, r : r + stride * (out_h - 1) + 1 : stride, c : c + stride * (out_w - 1) + 1 : stride]
        for r in range(size)
        for c in range(size)
    ]


def _max_pool(x: Float32Array, pool: _Pool, out: Float32Array) -> None:
    first, *rest = _pool_windows(x, pool)
    np.copyto(out, first)
    for window in rest:
        np.maximum(out, window, out=out)


def _avg_pool(x: Float32Array, pool: _Pool) -> Float32Array:
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

    def __init__(self, network: _Network, *, batch: int = DEFAULT_BATCH) -> None:
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
        return cls(_parse(data, str(file)), batch=batch)

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
            shortcut = _avg_pool(x, _SHORTCUT_POOL) if block.down else x
            shape = tuple(max(p, q) for p, q in zip(shortcut.shape, second.shape, strict=True))
            padded, x = _bordered((shape[0], shape[1], shape[2], shape[3]), 1)
            _add_prev(shortcut, second, x)
            np.maximum(x, np.float32(0), out=x)
        features = _avg_pool(x, _Pool(0, 1, 0)).reshape(x.shape[0], x.shape[3])
        result: Float32Array = features @ net.fc
        return result

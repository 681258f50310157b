"""Reading ``dlib_face_recognition_resnet_model_v1.dat``: dlib's ``serialize()`` encoding of its
face recognition ResNet, checked layer by layer against the architecture (the network, the
encoding and why every check exists: :mod:`guard.faces.dlib_resnet`, which runs it).

:func:`parse` returns the weights as read-only float32 arrays, or raises
:class:`DlibModelFormatError` with the byte offset and what was expected there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

import numpy as np
from numpy.typing import NDArray

from guard.errors import ConfigurationError

CHIP_SIZE: Final = 150
DIMENSION: Final = 128

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
class Conv:
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
class Affine:
    gamma: Float32Array
    beta: Float32Array


@dataclass(frozen=True)
class Pool:
    size: int  # 0: the whole plane (avg_pool_everything)
    stride: int
    padding: int


SHORTCUT_POOL: Final = Pool(2, 2, 0)  # ares_down's avg_pool<2,2,2,2>


@dataclass(frozen=True)
class Block:
    conv1: Conv
    affine1: Affine
    conv2: Conv
    affine2: Affine
    down: bool


def _read_con(reader: _Reader, channels: int) -> Conv:
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
    return Conv(_frozen(matrix), _frozen(params[-filters:]), nr, stride_y, pad_y)


def _read_affine(reader: _Reader, channels: int) -> Affine:
    reader.tag("affine_")
    params = reader.tensor("the affine parameters")
    gamma = reader.alias("affine gamma")
    beta = reader.alias("affine beta")
    mode = reader.integer("the affine mode")
    if mode != 0 or gamma != (1, channels, 1, 1) or beta != gamma or params.size != 2 * channels:
        raise reader.fail(f"an affine layer is not per-channel over {channels} channels")
    return Affine(_frozen(params[:channels]), _frozen(params[channels:]))


def _read_pool(reader: _Reader, kind: str) -> Pool:
    reader.tag(f"{kind}_2")
    nr, nc = reader.count("nr"), reader.count("nc")
    stride_y, stride_x = reader.count("stride_y"), reader.count("stride_x")
    pad_y, pad_x = reader.count("padding_y"), reader.count("padding_x")
    if nr != nc or stride_y != stride_x or pad_y != pad_x:
        raise reader.fail(f"a {kind} layer is not square")
    return Pool(nr, stride_y, pad_y)


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
class Network:
    means: Float32Array  # R, G, B
    stem: Conv
    stem_affine: Affine
    stem_pool: Pool
    blocks: tuple[Block, ...]
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


def _read_block(layers: _Layers, reader: _Reader, inputs: int, filters: int, down: bool) -> Block:
    conv1 = layers.read("con", _read_con, inputs)
    affine1 = layers.read("affine", _read_affine, filters)
    layers.tag("relu")
    conv2 = layers.read("con", _read_con, filters)
    affine2 = layers.read("affine", _read_affine, filters)
    if down and layers.read("avg_pool", _read_pool, "avg_pool") != SHORTCUT_POOL:
        raise reader.fail("a residual shortcut's avg_pool is not 2x2, stride 2")
    layers.tag("add_prev")
    layers.tag("relu")
    # A stride-1 3x3 con pads by 1, a stride-2 one not at all (dlib's defaults).
    for conv, stride in ((conv1, 2 if down else 1), (conv2, 1)):
        if (conv.filters, conv.size, conv.stride) != (filters, 3, stride):
            raise reader.fail(f"a residual con layer is not {filters} filters of 3x3")
        if conv.padding != (1 if stride == 1 else 0):
            raise reader.fail(f"a residual con layer has padding {conv.padding}")
    return Block(conv1, affine1, conv2, affine2, down)


def parse(data: bytes, source: str) -> Network:
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
    if stem_pool != Pool(3, 2, 0):
        raise reader.fail("the first max_pool is not 3x3, stride 2, no padding")
    blocks = []
    channels = stem.filters
    for filters, down in _BLOCKS:
        blocks.append(_read_block(layers, reader, channels, filters, down))
        channels = filters
    if layers.read("avg_pool", _read_pool, "avg_pool") != Pool(0, 1, 0):
        raise reader.fail("the last pool is not avg_pool_everything")
    fc = layers.read("fc", _read_fc, channels)
    if not reader.at_end():
        raise reader.fail("data follows the network")
    return Network(
        means=_frozen(means.astype(np.float32)),
        stem=stem,
        stem_affine=stem_affine,
        stem_pool=stem_pool,
        blocks=tuple(blocks),
        fc=fc,
    )

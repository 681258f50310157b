"""Tiny ONNX models with the input/output signatures of insightface's SCRFD and ArcFace.

The detector "sees a face" only where a 32x32 cell (stride 32) is bright, and predicts a fixed
128x128 box and five keypoints around that cell's anchor; the recogniser projects a 7x7 average
pooled crop to 512 numbers with a fixed random matrix. That is enough to test loading, routing,
pre- and post-processing (blob scaling, anchor decoding, NMS, alignment, normalisation) exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

STRIDES = (8, 16, 32)
ANCHORS = 2
BOX_DISTANCE = 2.0  # in strides: a box reaches 2 strides from the anchor on every side
KPS_OFFSETS = ((-0.6, -0.4), (0.6, -0.4), (0.0, 0.1), (-0.5, 0.6), (0.5, 0.6))


def _head(
    name: str, stride: int, channels: int, weight: np.ndarray, bias: np.ndarray
) -> list[onnx.NodeProto]:
    """Conv(stride) -> NHWC -> rows of ``channels`` (one row per position and anchor)."""
    return [
        helper.make_node(
            "Conv",
            ["input.1", f"{name}_w", f"{name}_b"],
            [f"{name}_conv"],
            kernel_shape=[stride, stride],
            strides=[stride, stride],
        ),
        helper.make_node("Transpose", [f"{name}_conv"], [f"{name}_nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", [f"{name}_nhwc", f"{name}_shape"], [name]),
    ]


def write_detector(path: Path) -> None:
    nodes, inits, outputs = [], [], []
    groups: dict[str, list[str]] = {"score": [], "bbox": [], "kps": []}
    for stride in STRIDES:
        fires = stride == 32
        area = 3 * stride * stride
        specs = {
            # sigmoid(10 * (mean(blob) - 0.5)): only a bright cell scores high.
            "score": (
                1,
                np.full((ANCHORS, 3, stride, stride), 10.0 / area if fires else 0.0),
                np.full(ANCHORS, -5.0 if fires else -20.0),
            ),
            "bbox": (
                4,
                np.zeros((ANCHORS * 4, 3, stride, stride)),
                np.full(ANCHORS * 4, BOX_DISTANCE),
            ),
            "kps": (
                10,
                np.zeros((ANCHORS * 10, 3, stride, stride)),
                np.tile(np.array(KPS_OFFSETS).reshape(-1), ANCHORS),
            ),
        }
        for kind, (channels, weight, bias) in specs.items():
            name = f"{kind}_{stride}"
            inits += [
                numpy_helper.from_array(weight.astype(np.float32), f"{name}_w"),
                numpy_helper.from_array(bias.astype(np.float32), f"{name}_b"),
                numpy_helper.from_array(np.array([-1, channels], dtype=np.int64), f"{name}_shape"),
            ]
            head = _head(name if kind != "score" else f"{name}_raw", stride, channels, weight, bias)
            if kind == "score":
                head[0].input[1:] = [f"{name}_w", f"{name}_b"]
                head[2].input[1] = f"{name}_shape"
                head.append(helper.make_node("Sigmoid", [f"{name}_raw"], [name]))
            nodes += head
            groups[kind].append(name)
    for kind, channels in (("score", 1), ("bbox", 4), ("kps", 10)):
        outputs += [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, channels])
            for n in groups[kind]
        ]
    graph = helper.make_graph(
        nodes,
        "tiny_scrfd",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "height", "width"])],
        outputs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9  # what the pinned onnxruntime reads
    onnx.save(model, str(path))


def write_recogniser(path: Path, dimension: int = 512) -> None:
    projection = np.random.default_rng(42).normal(size=(3 * 7 * 7, dimension)).astype(np.float32)
    nodes = [
        helper.make_node(
            "AveragePool", ["input.1"], ["pooled"], kernel_shape=[16, 16], strides=[16, 16]
        ),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "projection"], ["683"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["N", dimension])],
        [numpy_helper.from_array(projection, "projection")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9  # what the pinned onnxruntime reads
    onnx.save(model, str(path))

#!/usr/bin/env python3
"""Writes tests/data/fake_yolov8.onnx: a tiny graph with a YOLOv8-format output, for testing the
YOLOv8 path (user models) without shipping a real YOLOv8 model.

Input `images` [1, 3, 64, 64]; output `output0` [1, 6, 3] (2 classes, 3 anchors) =
constant + 0 * mean(images): anchor 1 is class 1 (score 0.8) with cx, cy, w, h = 32, 24, 16, 8 input
pixels; anchor 0 is class 0 at 0.2 (below the default threshold); anchor 2 scores nothing.

    python3 -m pip install onnx==1.23.2 numpy==2.4.6
    python3 tests/data/make_fake_yolov8.py tests/data/fake_yolov8.onnx
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

c = np.zeros((1, 6, 3), dtype=np.float32)
c[0, :, 0] = [10, 10, 4, 4, 0.2, 0.0]
c[0, :, 1] = [32, 24, 16, 8, 0.1, 0.8]
nodes = [
    helper.make_node("ReduceMean", ["images"], ["m"], axes=[1, 2, 3], keepdims=1),
    helper.make_node("Reshape", ["m", "shape"], ["m3"]),
    helper.make_node("Mul", ["m3", "zero"], ["z"]),
    helper.make_node("Add", ["z", "boxes"], ["output0"]),
]
graph = helper.make_graph(
    nodes,
    "fake_yolov8",
    [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
    [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, 3])],
    [
        numpy_helper.from_array(np.array([1, 1, 1], dtype=np.int64), "shape"),
        numpy_helper.from_array(np.zeros((1, 1, 1), dtype=np.float32), "zero"),
        numpy_helper.from_array(c, "boxes"),
    ],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="fallwatch-tests")
model.ir_version = 7
onnx.checker.check_model(model)
onnx.save(model, sys.argv[1])

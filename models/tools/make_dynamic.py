#!/usr/bin/env python3
"""Makes the shipped ONNX models batch-dynamic (and NanoDet size-dynamic), offline, and checks that
the edited graphs give the same outputs as the originals.

Only shape metadata and two reshape constants change; no weight is touched.

    python3 -m pip install onnx==1.23.2 onnxruntime==1.31.1 numpy==2.4.6
    python3 models/tools/make_dynamic.py SRC_DIR OUT_DIR

SRC_DIR holds the original nanodet_m_416.onnx and efficientnet_lite0.onnx (sha256 in
models/PROVENANCE.md). Writes nanodet_m_416_dyn.onnx (shipped) and efficientnet_lite0_dyn.onnx (not
shipped) to OUT_DIR and prints their sha256 and the largest output difference against the original.
The output is deterministic: the same sha256 every run.
"""
import hashlib
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def set_dim(dim, name):
    dim.ClearField("dim_value")
    dim.dim_param = name


def nanodet(src, dst):
    m = onnx.load(src)
    # The three class-score and box-distribution reshapes share two shape constants,
    # [1, 80, -1] and [1, 44, -1]; 0 = "copy the batch dimension from the input".
    changed = 0
    for init in m.graph.initializer:
        if init.name in ("unknown_63:0", "unknown_64:0"):
            a = numpy_helper.to_array(init).copy()
            assert a[0] == 1 and a[2] == -1, a
            a[0] = 0
            init.CopyFrom(numpy_helper.from_array(a, init.name))
            changed += 1
    assert changed == 2
    inp = m.graph.input[0].type.tensor_type.shape.dim
    for k, name in ((0, "batch"), (2, "height"), (3, "width")):
        set_dim(inp[k], name)
    for o in m.graph.output:
        set_dim(o.type.tensor_type.shape.dim[0], "batch")
    onnx.checker.check_model(m)
    onnx.save(m, dst)
    return "input_1:0", (3, 416, 416)


def efficientnet(src, dst):
    m = onnx.load(src)
    changed = 0
    for n in m.graph.node:  # the flatten before the classifier: Reshape to [1, -1]
        if n.op_type == "Constant" and n.output[0] == "/Constant_output_0":
            a = numpy_helper.to_array(n.attribute[0].t).copy()
            assert a.tolist() == [1, -1], a
            a[0] = 0
            n.attribute[0].t.CopyFrom(numpy_helper.from_array(a))
            changed += 1
    assert changed == 1
    set_dim(m.graph.input[0].type.tensor_type.shape.dim[0], "batch")
    onnx.checker.check_model(m)
    onnx.save(m, dst)
    return "input", (3, 224, 224)


def check(src, dst, input_name, chw):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    a = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(dst, so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).random((4, *chw), dtype=np.float32)
    ref = [a.run(None, {input_name: x[i : i + 1]}) for i in range(4)]
    one = b.run(None, {input_name: x[:1]})
    batch = b.run(None, {input_name: x})
    worst_one = worst_batch = 0.0
    for k in range(len(ref[0])):
        r = np.concatenate([ref[i][k] for i in range(4)])
        worst_one = max(worst_one, float(np.abs(one[k] - ref[0][k]).max()))
        worst_batch = max(worst_batch, float(np.abs(batch[k] - r).max()))
    assert worst_one < 1e-5 and worst_batch < 1e-5, (worst_one, worst_batch)
    digest = hashlib.sha256(open(dst, "rb").read()).hexdigest()
    print(f"{dst}: sha256 {digest}; max |diff| batch 1 {worst_one:.2e}, batch 4 {worst_batch:.2e}")


def main():
    src_dir, out_dir = sys.argv[1], sys.argv[2]
    for fn, src, dst in (
        (nanodet, "nanodet_m_416.onnx", "nanodet_m_416_dyn.onnx"),
        (efficientnet, "efficientnet_lite0.onnx", "efficientnet_lite0_dyn.onnx"),
    ):
        s, d = f"{src_dir}/{src}", f"{out_dir}/{dst}"
        name, chw = fn(s, d)
        check(s, d, name, chw)


if __name__ == "__main__":
    main()

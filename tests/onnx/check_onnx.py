#!/usr/bin/python3
"""Judges Lamina's ONNX export with runtimes Lamina did not write.

  check_onnx.py checker DIR   onnx.checker.check_model(full_check=True) accepts every DIR/*.onnx,
                              with the opset, the input "input" and output "output" Lamina promises
                              and average pooling that leaves padding out (count_include_pad=0)
  check_onnx.py opencv DIR    OpenCV's dnn module loads each model and its outputs on
                              NAME.input.npy match Lamina's (NAME.expected.npy) within
                              |opencv - lamina| <= ATOL + RTOL * |lamina|, on the whole batch
                              and on its first sample alone (the batch dimension is dynamic)

DIR comes from tests/onnx/make_cases.cpp. Run with Debian's /usr/bin/python3 (python3-onnx,
python3-opencv, python3-numpy; scripts/setup.sh installs them).
"""
import glob
import os
import sys

import numpy as np

ATOL = 1e-4
RTOL = 1e-4


def cases(directory):
    paths = sorted(glob.glob(os.path.join(directory, "*.onnx")))
    if not paths:
        sys.exit(f"check_onnx: no .onnx files in {directory}")
    return [(os.path.basename(p)[: -len(".onnx")], p) for p in paths]


def check_with_onnx(directory):
    import onnx
    import onnx.checker
    import onnx.helper

    for name, path in cases(directory):
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)  # raises ValidationError with the reason
        assert model.ir_version == 8, f"{name}: ir_version {model.ir_version}"
        assert [(o.domain, o.version) for o in model.opset_import] == [("", 13)], f"{name}: {model.opset_import}"
        graph = model.graph
        assert [i.name for i in graph.input] == ["input"], f"{name}: inputs {[i.name for i in graph.input]}"
        assert [o.name for o in graph.output] == ["output"], f"{name}: outputs {[o.name for o in graph.output]}"
        expected_in = np.load(os.path.join(directory, name + ".input.npy")).shape
        expected_out = np.load(os.path.join(directory, name + ".expected.npy")).shape
        for value, shape in ((graph.input[0], expected_in), (graph.output[0], expected_out)):
            dims = value.type.tensor_type.shape.dim
            assert dims[0].dim_param == "N", f"{name}: {value.name}'s batch dimension is not the dynamic 'N'"
            got = tuple(d.dim_value for d in dims[1:])
            assert got == shape[1:], f"{name}: {value.name} declares {got} per sample, Lamina has {shape[1:]}"
        # OpenCV 4.6 ignores count_include_pad (it always leaves padding out of the average),
        # so the runtime comparison cannot see it: check the attribute that carries Keras'
        # meaning here, by the ONNX spec's definition (0: padded cells are not counted).
        for n in graph.node:
            if n.op_type == "AveragePool":
                attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
                assert attrs.get("count_include_pad", 0) == 0, f"{name}: {n.name} counts padded cells"
        ops = sorted({n.op_type for n in graph.node})
        print(f"ok {name}: {len(graph.node)} nodes ({', '.join(ops)}), {len(graph.initializer)} initializers")


# Valid ONNX that OpenCV 4.6's importer refuses; onnx's checker still judges these files.
OPENCV_CANNOT = {
    # LayerNormalization as opset-13 ReduceMean / Sub / Mul / Sqrt / Div: OpenCV 4.6 refuses the
    # (N, K) / (N, 1) Div ("axis != outShape.size()" in parseMul) and fails in forward on the
    # (N, T, C) / (N, T, 1) one (shape_utils total()). ONNX Runtime runs both (check_ort.js).
    "layer_norm": "fails in forward on (N, T, C) / (N, T, 1) broadcasting (shape_utils 'total')",
    "layer_norm_flat": "cannot parse the (N, K) / (N, 1) Div ('axis != outShape.size()')",
}


def check_with_opencv(directory):
    import cv2

    worst = 0.0
    for name, path in cases(directory):
        if name in OPENCV_CANNOT:
            print(f"skip {name}: OpenCV 4.6 {OPENCV_CANNOT[name]}")
            continue
        x = np.load(os.path.join(directory, name + ".input.npy"))
        want = np.load(os.path.join(directory, name + ".expected.npy"))
        if not np.isfinite(want).all():
            sys.exit(f"FAIL {name}: Lamina's own outputs are not all finite; the case is broken")
        max_abs = 0.0
        for batch in (x, x[:1]):
            # A fresh net per batch size: OpenCV 4.6 loads a dynamic batch, but a net that has
            # run once can fail on another batch size (its MatMul on rank-3 inputs keeps the old one).
            net = cv2.dnn.readNetFromONNX(path)
            net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
            net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
            blob = np.ascontiguousarray(batch)
            if blob.ndim == 3:
                # cv2's Python binding reads a 3-D array as a 2-D image with channels; the same
                # bytes as (N, H, W, 1) go in as a 4-D blob (C++ callers pass a 3-D cv::Mat).
                blob = blob[..., np.newaxis]
            net.setInput(blob, "input")
            got = net.forward()
            ref = want[: batch.shape[0]]
            if got.size != ref.size:
                sys.exit(f"FAIL {name}: OpenCV gives shape {got.shape}, Lamina {ref.shape} (batch {batch.shape[0]})")
            got = got.reshape(ref.shape)
            diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
            bad = diff > ATOL + RTOL * np.abs(ref)
            if bad.any() or not np.isfinite(got).all():
                i = np.unravel_index(np.argmax(diff - RTOL * np.abs(ref)), ref.shape)
                sys.exit(f"FAIL {name} (batch {batch.shape[0]}): {int(bad.sum())} of {ref.size} values off; "
                         f"max |diff| {diff.max():.3g} at {i}: opencv {got[i]!r}, lamina {ref[i]!r}")
            max_abs = max(max_abs, float(diff.max()))
        worst = max(worst, max_abs)
        print(f"ok {name}: output {want.shape}, max |opencv - lamina| = {max_abs:.3g} "
              f"(max |lamina| = {float(np.abs(want).max()):.3g})")
    print(f"all match within {ATOL} + {RTOL} * |lamina|; worst max |diff| {worst:.3g}")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("checker", "opencv"):
        sys.exit("usage: check_onnx.py checker|opencv DIR")
    {"checker": check_with_onnx, "opencv": check_with_opencv}[sys.argv[1]](sys.argv[2])


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Judges Lamina's ONNX export with runtimes Lamina did not write.

  check_onnx.py checker DIR   onnx.checker.check_model(full_check=True) accepts every DIR/*.onnx,
                              with the opset, the inputs and outputs Lamina promises ("input" and
                              "output" when there is one of each, the layers' names otherwise),
                              average pooling that leaves padding out (count_include_pad=0), and
                              for the graph cases the Transposes and initializers of EXPECTED_GRAPH
  check_onnx.py opencv DIR    OpenCV's dnn module loads each model and its outputs on
                              NAME.input.npy match Lamina's (NAME.expected.npy) within
                              |opencv - lamina| <= ATOL + RTOL * |lamina|, on the whole batch
                              and on its first sample alone (the batch dimension is dynamic)

DIR comes from tests/onnx/make_cases.cpp. A model with several inputs has NAME.input0.npy,
NAME.input1.npy, ... in the order of its graph inputs (and its metadata entry lamina_inputs lists
their names); several outputs likewise NAME.expected0.npy, ... and lamina_outputs. Run with
Debian's /usr/bin/python3 (python3-onnx, python3-opencv, python3-numpy; scripts/setup.sh installs
them).
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


def arrays(directory, name, what):
    """NAME.what.npy, or NAME.what0.npy, NAME.what1.npy, ... in order."""
    single = os.path.join(directory, f"{name}.{what}.npy")
    if os.path.exists(single):
        return [np.load(single)]
    found = []
    while os.path.exists(os.path.join(directory, f"{name}.{what}{len(found)}.npy")):
        found.append(np.load(os.path.join(directory, f"{name}.{what}{len(found)}.npy")))
    if not found:
        sys.exit(f"check_onnx: {name} has neither {name}.{what}.npy nor {name}.{what}0.npy")
    return found


# What the graph cases' files must hold beyond running right. Transposes: the graph converts
# Lamina's channels-last layout to ONNX's channels-first once at the input and back only where a
# layer needs channels-last (Flatten, Dense on an image) or at an image output; merges of
# convolution outputs (Add, Maximum, Concatenate over the channels) stay channels-first. A
# GlobalAveragePooling2D leaves (N, C), which needs none. Initializers: a shared layer's weights
# are written once.
EXPECTED_GRAPH = {
    "graph_resnet": {"Transpose": 1},      # the input; GlobalAveragePool + Flatten give (N, C)
    "graph_concat_max": {"Transpose": 2},  # the input (read by three Convs), before Flatten
    "graph_two_inputs": {"Transpose": 0},
    "graph_two_outputs": {"Transpose": 2},  # the input, the 'mask' image output
    "graph_nested": {"Transpose": 2},      # the input, before the nested head's Flatten
    "graph_shared": {"Transpose": 1, "initializers": 4},  # shared_conv's and shared_dense's kernel and bias
}


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
        metadata = {p.key: p.value for p in model.metadata_props}
        xs, ys = arrays(directory, name, "input"), arrays(directory, name, "expected")
        want_in = metadata["lamina_inputs"].split(",") if len(xs) > 1 else ["input"]
        want_out = metadata["lamina_outputs"].split(",") if len(ys) > 1 else ["output"]
        assert [i.name for i in graph.input] == want_in, f"{name}: inputs {[i.name for i in graph.input]}, want {want_in}"
        assert [o.name for o in graph.output] == want_out, f"{name}: outputs {[o.name for o in graph.output]}, want {want_out}"
        for value, array in list(zip(graph.input, xs)) + list(zip(graph.output, ys)):
            dims = value.type.tensor_type.shape.dim
            assert dims[0].dim_param == "N", f"{name}: {value.name}'s batch dimension is not the dynamic 'N'"
            got = tuple(d.dim_value for d in dims[1:])
            assert got == array.shape[1:], f"{name}: {value.name} declares {got} per sample, Lamina has {array.shape[1:]}"
        # OpenCV 4.6 ignores count_include_pad (it always leaves padding out of the average),
        # so the runtime comparison cannot see it: check the attribute that carries Keras'
        # meaning here, by the ONNX spec's definition (0: padded cells are not counted).
        for n in graph.node:
            if n.op_type == "AveragePool":
                attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
                assert attrs.get("count_include_pad", 0) == 0, f"{name}: {n.name} counts padded cells"
        counts = {}
        for n in graph.node:
            counts[n.op_type] = counts.get(n.op_type, 0) + 1
        counts["initializers"] = len(graph.initializer)
        for what, want in EXPECTED_GRAPH.get(name, {}).items():
            assert counts.get(what, 0) == want, f"{name}: {counts.get(what, 0)} {what}, expected {want}"
        ops = sorted({n.op_type for n in graph.node})
        print(f"ok {name}: {len(graph.node)} nodes ({', '.join(ops)}), {len(graph.initializer)} initializers"
              + (f", {counts.get('Transpose', 0)} Transpose" if name in EXPECTED_GRAPH else ""))
    missing = set(EXPECTED_GRAPH) - {name for name, _ in cases(directory)}
    assert not missing, f"graph cases missing from {directory}: {sorted(missing)}"


# Valid ONNX that OpenCV 4.6's importer refuses; onnx's checker still judges these files.
OPENCV_CANNOT = {
    # The VAE's Sampling layer draws its noise with RandomNormalLike, which OpenCV 4.6 has no layer
    # for ("Can't create layer ... of type RandomNormalLike"). ONNX Runtime runs it (check_ort.js).
    "graph_sampling": "has no RandomNormalLike layer ('Can't create layer of type RandomNormalLike')",
    # The sequence layers: OpenCV 4.6 takes Gather only with constant indices, and its Permute
    # asserts on the rank-3 Transposes around a 1-D Conv / pooling and its Reshape on Masking's
    # ReduceMax. ONNX Runtime runs all four (check_ort.js).
    "seq_embedding": "takes Gather only with constant indices ('not found in const blobs')",
    "seq_conv": "cannot Transpose (N, T, C) <-> (N, C, T) (permute_layer '_numAxes == inputs[0].size()')",
    "seq_repeat": "cannot Transpose (N, T, C) <-> (N, C, T) (permute_layer '_numAxes == inputs[0].size()')",
    "seq_masking": "fails on ReduceMax over the features of (N, T, C) (reshape_layer 'computeShapeByReshapeMask')",
    # The recurrent layers: OpenCV 4.6's LSTM / GRU / RNN importers want every optional input
    # (initial_h, ...) present as a constant, and it parses Squeeze only with opset-11 attribute
    # axes. ONNX Runtime runs them all (check_ort.js).
    "rnn_lstm": "parses Squeeze only with attribute axes, not opset 13's input ('node_proto.input_size() == 1')",
    "rnn_backwards": "parses Squeeze only with attribute axes, not opset 13's input ('node_proto.input_size() == 1')",
    "rnn_gru": "takes GRU only with all 6 inputs, initial_h a constant ('node_proto.input_size() == 6')",
    "rnn_gru_v1": "takes GRU only with all 6 inputs, initial_h a constant ('node_proto.input_size() == 6')",
    "rnn_simple": "takes RNN's optional inputs only as constants ('Blob  not found in const blobs')",
    "rnn_embedding": "takes Gather only with constant indices ('not found in const blobs')",
    "rnn_initial_state": "takes LSTM's initial_h / initial_c only as constants ('not found in const blobs')",
    "rnn_return_state": "parses Squeeze only with attribute axes, not opset 13's input ('node_proto.input_size() == 1')",
    "rnn_bidirectional": "cannot Transpose (N, T, C) <-> (T, N, C) (permute_layer '_numAxes == inputs[0].size()')",
    "rnn_bidirectional_merges": "takes RNN's optional inputs only as constants ('Blob  not found in const blobs')",
    # LayerNormalization as opset-13 ReduceMean / Sub / Mul / Sqrt / Div: OpenCV 4.6 refuses the
    # (N, K) / (N, 1) Div ("axis != outShape.size()" in parseMul) and fails in forward on the
    # (N, T, C) / (N, T, 1) one (shape_utils total()). ONNX Runtime runs both (check_ort.js).
    "layer_norm": "fails in forward on (N, T, C) / (N, T, 1) broadcasting (shape_utils 'total')",
    "layer_norm_flat": "cannot parse the (N, K) / (N, 1) Div ('axis != outShape.size()')",
    # Keras' 'same' with kernel 5 and stride 2 crops 1 cell before and 2 after: ConvTranspose
    # pads (1, 1, 2, 2), which OpenCV 4.6 refuses. ONNX Runtime runs it (check_ort.js);
    # convt_dcgan4 (kernel 4: pads 1 and 1) runs here.
    "convt_dcgan": "refuses asymmetric ConvTranspose pads ('Unsupported asymmetric padding in convolution layer')",
    # ... and computes ConvTranspose as if its dilations were 1 (output (4, 5, 5, 2) for Lamina's
    # and ONNX Runtime's (4, 9, 9, 2)).
    "convt_dilated": "ignores ConvTranspose's dilations (its output is the undilated size)",
}


def check_with_opencv(directory):
    import cv2
    import onnx

    worst = 0.0
    for name, path in cases(directory):
        if name in OPENCV_CANNOT:
            print(f"skip {name}: OpenCV 4.6 {OPENCV_CANNOT[name]}")
            continue
        graph = onnx.load(path).graph
        in_names, out_names = [i.name for i in graph.input], [o.name for o in graph.output]
        xs, wants = arrays(directory, name, "input"), arrays(directory, name, "expected")
        for want in wants:
            if not np.isfinite(want).all():
                sys.exit(f"FAIL {name}: Lamina's own outputs are not all finite; the case is broken")
        max_abs = 0.0
        for n in (xs[0].shape[0], 1):  # the batch, and its first sample alone
            # A fresh net per batch size: OpenCV 4.6 loads a dynamic batch, but a net that has
            # run once can fail on another batch size (its MatMul on rank-3 inputs keeps the old one).
            net = cv2.dnn.readNetFromONNX(path)
            net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
            net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
            for input_name, x in zip(in_names, xs):
                blob = np.ascontiguousarray(x[:n])
                if blob.ndim == 3:
                    # cv2's Python binding reads a 3-D array as a 2-D image with channels; the same
                    # bytes as (N, H, W, 1) go in as a 4-D blob (C++ callers pass a 3-D cv::Mat).
                    blob = blob[..., np.newaxis]
                net.setInput(blob, input_name)
            gots = [net.forward()] if len(out_names) == 1 else list(net.forward(out_names))
            for out_name, got, want in zip(out_names, gots, wants):
                ref = want[:n]
                what = f"{name}" + (f" output '{out_name}'" if len(out_names) > 1 else "") + f" (batch {n})"
                if got.size != ref.size:
                    sys.exit(f"FAIL {what}: OpenCV gives shape {got.shape}, Lamina {ref.shape}")
                got = got.reshape(ref.shape)
                diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
                bad = diff > ATOL + RTOL * np.abs(ref)
                if bad.any() or not np.isfinite(got).all():
                    i = np.unravel_index(np.argmax(diff - RTOL * np.abs(ref)), ref.shape)
                    sys.exit(f"FAIL {what}: {int(bad.sum())} of {ref.size} values off; "
                             f"max |diff| {diff.max():.3g} at {i}: opencv {got[i]!r}, lamina {ref[i]!r}")
                max_abs = max(max_abs, float(diff.max()))
        worst = max(worst, max_abs)
        shapes = ", ".join(str(w.shape) for w in wants)
        print(f"ok {name}: output{'s' if len(wants) > 1 else ''} {shapes}, max |opencv - lamina| = {max_abs:.3g} "
              f"(max |lamina| = {max(float(np.abs(w).max()) for w in wants):.3g})")
    print(f"all match within {ATOL} + {RTOL} * |lamina|; worst max |diff| {worst:.3g}")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("checker", "opencv"):
        sys.exit("usage: check_onnx.py checker|opencv DIR")
    {"checker": check_with_onnx, "opencv": check_with_opencv}[sys.argv[1]](sys.argv[2])


if __name__ == "__main__":
    main()

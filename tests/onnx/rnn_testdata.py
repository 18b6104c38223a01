#!/usr/bin/python3
"""ONNX's own golden node tests of RNN, LSTM and GRU (Debian's libonnx-testdata), read by load_onnx.

  rnn_testdata.py IMPORT_CASES DIR

Each test is one node on a time-major X (T, N, F) with W, R, B as graph inputs, and its expected
Y_h. Lamina imports recurrent nodes between the Transposes a batch-first exporter writes, with
constant weights, so each supported test is rewritten as such a graph: input (N, T, F) ->
Transpose (1, 0, 2) -> the node, its weights as initializers -> Y_h -> Squeeze(0) -> output (N, U),
with NAME.input.npy = X transposed and NAME.expected.npy = Y_h[0]. IMPORT_CASES
(tests/onnx/import_cases.cpp) then loads each with load_onnx and compares its predict within 1e-5.
Exits 77 (ctest's skip) when the test data is not installed.
"""
import glob
import os
import subprocess
import sys

import numpy as np

ROOT = "/usr/share/libonnx-testdata/data/node"

# The tests Lamina refuses, and why (load_onnx names the same reasons).
REFUSED = {
    "test_gru_batchwise": "layout 1 (batch-major); exporters write layout 0",
    "test_lstm_batchwise": "layout 1 (batch-major); exporters write layout 0",
    "test_simple_rnn_batchwise": "layout 1 (batch-major); exporters write layout 0",
    "test_lstm_with_peepholes": "sequence_lens and peepholes (P) have no Keras equivalent",
}


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: rnn_testdata.py IMPORT_CASES DIR")
    binary, out = sys.argv[1], sys.argv[2]
    tests = sorted(d for d in glob.glob(os.path.join(ROOT, "test_*"))
                   if any(k in os.path.basename(d) for k in ("_rnn_", "_lstm_", "_gru_")))
    if not tests:
        print(f"skip: {ROOT} has no RNN / LSTM / GRU tests (apt-get install libonnx-testdata)")
        return 77
    import onnx
    from onnx import helper, numpy_helper

    os.makedirs(out, exist_ok=True)
    for old in glob.glob(os.path.join(out, "*")):
        os.remove(old)
    for d in tests:
        name = os.path.basename(d)
        if name in REFUSED:
            print(f"refused: {name}: {REFUSED[name]}")
            continue
        model = onnx.load(os.path.join(d, "model.onnx"))
        node = model.graph.node[0]
        values = [numpy_helper.to_array(onnx.load_tensor(f))
                  for f in sorted(glob.glob(os.path.join(d, "test_data_set_0", "input_*.pb")))]
        (y_h,) = [numpy_helper.to_array(onnx.load_tensor(f))
                  for f in sorted(glob.glob(os.path.join(d, "test_data_set_0", "output_*.pb")))]
        assert list(node.output) == ["", "Y_h"], f"{name}: outputs {list(node.output)}"
        x = values[0]
        steps, _, features = x.shape
        weights = [numpy_helper.from_array(v.astype(np.float32), n) for n, v in zip(node.input[1:], values[1:])]
        rnn = helper.make_node(node.op_type, ["X", *node.input[1:]], ["", "Y_h"], name=name)
        rnn.attribute.extend(node.attribute)
        axis0 = numpy_helper.from_array(np.array([0], np.int64), "axis0")
        graph = helper.make_graph(
            [helper.make_node("Transpose", ["input"], ["X"], perm=[1, 0, 2]), rnn,
             helper.make_node("Squeeze", ["Y_h", "axis0"], ["output"])],
            name, [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["N", steps, features])],
            [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, ["N", y_h.shape[2]])],
            weights + [axis0])
        wrapped = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
        wrapped.ir_version = 8
        onnx.checker.check_model(wrapped, full_check=True)
        onnx.save(wrapped, os.path.join(out, name + ".onnx"))
        np.save(os.path.join(out, name + ".input.npy"), np.ascontiguousarray(x.transpose(1, 0, 2), np.float32))
        np.save(os.path.join(out, name + ".expected.npy"), np.ascontiguousarray(y_h[0], np.float32))
    sys.stdout.flush()
    return subprocess.call([binary, out])


if __name__ == "__main__":
    sys.exit(main())

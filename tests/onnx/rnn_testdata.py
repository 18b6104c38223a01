#!/usr/bin/python3
"""ONNX's own golden node tests of RNN, LSTM and GRU (Debian's libonnx-testdata), read by load_onnx.

  rnn_testdata.py IMPORT_CASES DIR

Each test is one node on a time-major X (T, N, F) with W, R, B as graph inputs, and its expected
Y_h. Lamina imports recurrent nodes between the Transposes a batch-first exporter writes, with
constant weights, so each supported test is rewritten as such a graph: input (N, T, F) ->
Transpose (1, 0, 2) -> the node, its weights as initializers -> Y_h -> Squeeze(0) -> output (N, U),
with NAME.input.npy = X transposed and NAME.expected.npy = Y_h[0]. IMPORT_CASES
(tests/onnx/import_cases.cpp) then loads each with load_onnx and compares its predict within 1e-5.
The tests Lamina refuses (REFUSED) are written to DIR/refused and must fail with their reason.
Exits 77 (ctest's skip) when the test data is not installed.
"""
import glob
import os
import subprocess
import sys

import numpy as np

ROOT = "/usr/share/libonnx-testdata/data/node"

# The tests Lamina refuses: what load_onnx's error must say. They are wrapped the same way (a
# batch-major node takes the input as it is) and must fail with that reason. A copy of
# test_lstm_defaults with direction bidirectional but one direction's weights joins them.
REFUSED = {
    "test_gru_batchwise": "layout 1 (batch-major) is not supported",
    "test_lstm_batchwise": "layout 1 (batch-major) is not supported",
    "test_simple_rnn_batchwise": "layout 1 (batch-major) is not supported",
    "test_lstm_with_peepholes": "sequence_lens (per-sample lengths) is not supported",
    "test_lstm_bidirectional": "W has shape (1, 12, 2); expected (2, 4 * hidden_size, 2) for a bidirectional node",
}


def wrap(onnx, helper, numpy_helper, d, name, out, direction=None):
    """Writes the rewritten graph of test directory d as out/name.onnx (+ .input.npy, .expected.npy)."""
    model = onnx.load(os.path.join(d, "model.onnx"))
    node = model.graph.node[0]
    values = [numpy_helper.to_array(onnx.load_tensor(f))
              for f in sorted(glob.glob(os.path.join(d, "test_data_set_0", "input_*.pb")))]
    (y_h,) = [numpy_helper.to_array(onnx.load_tensor(f))
              for f in sorted(glob.glob(os.path.join(d, "test_data_set_0", "output_*.pb")))[-1:]]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    batch_major = attrs.get("layout", 0) == 1
    x = values[0] if batch_major else values[0].transpose(1, 0, 2)  # (N, T, F)
    y_h = y_h[:, 0] if batch_major else y_h[0]                        # (N, U)
    weights = [numpy_helper.from_array(v if v.dtype != np.float64 else v.astype(np.float32), n)
               for n, v in zip(node.input[1:], values[1:]) if n]
    rnn = helper.make_node(node.op_type, ["input" if batch_major else "X", *node.input[1:]], ["", "Y_h"], name=name)
    rnn.attribute.extend(a for a in node.attribute if a.name != "direction" or direction is None)
    if direction:
        rnn.attribute.append(helper.make_attribute("direction", direction))
    axis = numpy_helper.from_array(np.array([1 if batch_major else 0], np.int64), "axis")
    nodes = [] if batch_major else [helper.make_node("Transpose", ["input"], ["X"], perm=[1, 0, 2])]
    graph = helper.make_graph(
        nodes + [rnn, helper.make_node("Squeeze", ["Y_h", "axis"], ["output"])], name,
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["N", *x.shape[1:]])],
        [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, ["N", y_h.shape[-1]])],
        weights + [axis])
    wrapped = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    wrapped.ir_version = 8
    if direction is None:
        onnx.checker.check_model(wrapped, full_check=True)
    os.makedirs(out, exist_ok=True)
    onnx.save(wrapped, os.path.join(out, name + ".onnx"))
    np.save(os.path.join(out, name + ".input.npy"), np.ascontiguousarray(x, np.float32))
    np.save(os.path.join(out, name + ".expected.npy"), np.ascontiguousarray(y_h, np.float32))


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

    refused_dir = os.path.join(out, "refused")
    for directory in (out, refused_dir):
        for old in glob.glob(os.path.join(directory, "*.*")):
            os.remove(old)
    for d in tests:
        name = os.path.basename(d)
        wrap(onnx, helper, numpy_helper, d, name, refused_dir if name in REFUSED else out)
    wrap(onnx, helper, numpy_helper, os.path.join(ROOT, "test_lstm_defaults"), "test_lstm_bidirectional",
         refused_dir, direction="bidirectional")
    sys.stdout.flush()
    # The refused ones: each must fail, with its reason.
    run = subprocess.run([binary, refused_dir], capture_output=True, text=True)
    failed = 0
    for name, reason in sorted(REFUSED.items()):
        lines = [l for l in run.stdout.splitlines() if l.startswith(f"FAIL: {name}: ")]
        ok = len(lines) == 1 and reason in lines[0]
        failed += not ok
        print(f"{'refused' if ok else 'FAIL (not refused as expected)'}: {name}: " +
              (lines[0].split(": ", 2)[2] if lines else run.stdout))
    return subprocess.call([binary, out]) or (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())

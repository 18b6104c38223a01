#!/usr/bin/python3
"""Writes the bad-input corpus beside this script: small CSV, IDX (raw and gzip), JSON specs and
safetensors model files, most of them broken in one way, plus the valid ones they are made from.
tests/corpus/cases.tsv says what `lamina` must answer for each; run_corpus.sh checks it.

Run by hand with Debian's python (/usr/bin/python3 tests/corpus/make_corpus.py); the tests only
read the committed output. Standard library only; the output is the same on every run (fixed
seeds, gzip with mtime 0)."""
import copy
import gzip
import json
import os
import random
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def path(*parts):
    p = os.path.join(HERE, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def write_bytes(rel, data):
    with open(path(rel), "wb") as f:
        f.write(data)


def write_text(rel, text):
    write_bytes(rel, text.encode())


def gz(data):
    return gzip.compress(data, mtime=0)


def write_json(rel, obj):
    write_text(rel, json.dumps(obj, indent=2) + "\n")


# --- data: a 4-feature, 3-class CSV set and an 8x8, 3-class image set ---------------------------

CENTERS = [(2.0, 2.0, 8.0, 8.0), (8.0, 2.0, 2.0, 8.0), (5.0, 8.0, 5.0, 2.0)]


def csv_rows(n, rng):
    out = []
    for i in range(n):
        label = i % 3
        x = [min(10.0, max(0.0, rng.gauss(c, 0.8))) for c in CENTERS[label]]
        out.append(",".join(f"{v:.2f}" for v in x) + f",{label}\n")
    rng.shuffle(out)
    return out


def image(label, rng):
    """8x8 bytes: a horizontal bar (0), a vertical bar (1) or a diagonal (2), with noise."""
    px = [[rng.randrange(0, 40) for _ in range(8)] for _ in range(8)]
    k = rng.randrange(2, 6)
    for i in range(8):
        r, c = {0: (k, i), 1: (i, k), 2: (i, i)}[label]
        px[r][c] = 200 + rng.randrange(0, 56)
    return bytes(v for row in px for v in row)


def idx(dims, payload, type_byte=0x08):
    return bytes([0, 0, type_byte, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def image_set(n, rng):
    labels = [i % 3 for i in range(n)]
    rng.shuffle(labels)
    return b"".join(image(l, rng) for l in labels), bytes(labels)


rng = random.Random(11)
train_rows, test_rows = csv_rows(90, rng), csv_rows(30, rng)
write_text("data/mlp_train.csv", "".join(train_rows))
write_text("data/mlp_test.csv", "".join(test_rows))
write_text("data/mlp_features.csv", "".join(",".join(r.split(",")[:4]) + "\n" for r in test_rows[:5]))

rng = random.Random(12)
train_px, train_lb = image_set(60, rng)
test_px, test_lb = image_set(30, rng)
write_bytes("data/img/train-images-idx3-ubyte", idx([60, 8, 8], train_px))
write_bytes("data/img/train-labels-idx1-ubyte", idx([60], train_lb))
write_bytes("data/img/t10k-images-idx3-ubyte.gz", gz(idx([30, 8, 8], test_px)))
write_bytes("data/img/t10k-labels-idx1-ubyte.gz", gz(idx([30], test_lb)))

# --- valid specs ---------------------------------------------------------------------------------

MLP_MODEL = {
    "class_name": "Sequential",
    "config": {
        "name": "tiny_mlp",
        "layers": [
            {"class_name": "Dense", "config": {"name": "hidden", "batch_input_shape": [None, 4], "units": 16,
                                               "activation": "relu"}},
            {"class_name": "Dense", "config": {"name": "out", "units": 3, "activation": "softmax"}},
        ],
    },
}
MLP_SPEC = {
    "description": "A valid MLP spec; the bad specs are this one with one thing wrong.",
    "model": MLP_MODEL,
    "data": {"train": "../data/mlp_train.csv", "test": "../data/mlp_test.csv", "scale": 0.1},
    "compile": {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.01}},
                "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
    "fit": {"epochs": 3, "batch_size": 16, "shuffle": True, "seed": 3},
}
CNN_MODEL = {
    "class_name": "Sequential",
    "config": {
        "name": "tiny_cnn",
        "layers": [
            {"class_name": "InputLayer", "config": {"name": "input", "batch_shape": [None, 8, 8, 1]}},
            {"class_name": "Conv2D", "config": {"name": "conv", "filters": 4, "kernel_size": [3, 3],
                                                "activation": "relu", "padding": "same"}},
            {"class_name": "MaxPooling2D", "config": {"name": "pool", "pool_size": [2, 2]}},
            {"class_name": "Flatten", "config": {"name": "flatten"}},
            {"class_name": "Dense", "config": {"name": "out", "units": 3, "activation": "softmax"}},
        ],
    },
}
CNN_SPEC = {
    "description": "A valid CNN spec on 8x8 IDX images (raw train files, gzipped test files).",
    "model": CNN_MODEL,
    "data": {"train": "../data/img", "test": "../data/img"},
    "compile": {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.01}},
                "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
    "fit": {"epochs": 3, "batch_size": 16, "shuffle": True, "seed": 5},
}
write_json("specs/mlp.json", MLP_SPEC)
write_json("specs/cnn.json", CNN_SPEC)
# For tests/cli/test_determinism.sh: every layer whose training draws or keeps state.
CNN_FULL = copy.deepcopy(CNN_SPEC)
CNN_FULL["description"] = "A CNN with BatchNormalization and Dropout, for the determinism test."
CNN_FULL["model"]["config"]["layers"][2:2] = [{"class_name": "BatchNormalization", "config": {"name": "bn"}}]
CNN_FULL["model"]["config"]["layers"].insert(-1, {"class_name": "Dropout", "config": {"name": "drop", "rate": 0.25}})
CNN_FULL["fit"]["validation_split"] = 0.2
write_json("specs/cnn_full.json", CNN_FULL)


def spec_variant(name, change, base=MLP_SPEC):
    s = copy.deepcopy(base)
    change(s)
    s["description"] = "corpus case " + name
    write_json(f"specs/{name}.json", s)


def layer(s, i):
    return s["model"]["config"]["layers"][i]["config"]


def setter(*keys_and_value):
    *keys, value = keys_and_value

    def change(s):
        d = s
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return change


# JSON text that is not JSON, or not an object.
write_text("specs/invalid_json.json", '{\n  "model": {"class_name": "Sequential",\n    "config": {]}\n}\n')
write_text("specs/not_object.json", "[1, 2, 3]\n")
write_text("specs/empty.json", "")
write_text("specs/truncated.json", json.dumps(MLP_SPEC, indent=2)[:200])

spec_variant("unknown_top_key", lambda s: s.update({"fitt": s.pop("fit")}))
spec_variant("missing_model", lambda s: s.pop("model"))
spec_variant("missing_data", lambda s: s.pop("data"))
spec_variant("missing_loss", lambda s: s["compile"].pop("loss"))
spec_variant("epochs_string", setter("fit", "epochs", "ten"))
spec_variant("epochs_fraction", setter("fit", "epochs", 2.5))
spec_variant("batch_size_zero", setter("fit", "batch_size", 0))
spec_variant("validation_split_big", setter("fit", "validation_split", 1.5))
spec_variant("unknown_fit_key", lambda s: s["fit"].update({"epoch": 3}))
spec_variant("layers_empty", lambda s: s["model"]["config"].update({"layers": []}))
spec_variant("layer_not_object", lambda s: s["model"]["config"]["layers"].insert(1, 7))
spec_variant("unknown_layer", lambda s: s["model"]["config"]["layers"][1].update({"class_name": "FancyDense"}))
spec_variant("units_negative", lambda s: layer(s, 1).update({"units": -3}))
spec_variant("units_string", lambda s: layer(s, 0).update({"units": "many"}))
spec_variant("unknown_activation", lambda s: layer(s, 0).update({"activation": "swishy"}))
spec_variant("duplicate_layer_name", lambda s: layer(s, 1).update({"name": "hidden"}))
spec_variant("unknown_optimizer", setter("compile", "optimizer", "adamax_pro"))
spec_variant("bad_learning_rate", setter("compile", "optimizer", {"class_name": "Adam", "config": {"learning_rate": "fast"}}))
spec_variant("unknown_loss", setter("compile", "loss", "hinge_loss"))
spec_variant("unknown_metric", setter("compile", "metrics", ["accuracy", "auc_roc"]))
spec_variant("unknown_data_name", setter("data", {"name": "cifar100"}))
spec_variant("missing_train_file", setter("data", "train", "../data/no_such.csv"))
spec_variant("bad_scale", setter("data", "scale", -1))
spec_variant("input_shape_mismatch", lambda s: layer(s, 0).update({"batch_input_shape": [None, 5]}))
# Layers that do not fit together: a Conv2D after a Dense (rank 1 in, rank 3 wanted).
spec_variant("conv_after_dense", lambda s: s["model"]["config"]["layers"].insert(
    1, {"class_name": "Conv2D", "config": {"name": "conv_late", "filters": 2, "kernel_size": 3}}))
# A pooling window larger than its input.
spec_variant("pool_too_big", lambda s: s["model"]["config"]["layers"].insert(
    2, {"class_name": "MaxPooling2D", "config": {"name": "big_pool", "pool_size": [16, 16]}}), base=CNN_SPEC)
spec_variant("reshape_wrong_size", lambda s: s["model"]["config"]["layers"].insert(
    1, {"class_name": "Reshape", "config": {"name": "reshape", "target_shape": [3, 3]}}))
# Targets that do not fit the loss: 3 outputs, one scalar target per row, mean squared error.
spec_variant("mse_target_shape", setter("compile", "loss", "mse"))
# Only 2 classes, but the labels go up to 2.
spec_variant("too_few_classes", lambda s: layer(s, 1).update({"units": 2}))
# A huge Dense (10^12 parameters) fails the memory check before anything is allocated.
spec_variant("huge_dense", lambda s: layer(s, 0).update({"units": 250_000_000_000}))
# A wide Conv2D: small weights, but large activations for a batch.
spec_variant("wide_conv", lambda s: s["model"]["config"]["layers"].__setitem__(
    1, {"class_name": "Conv2D", "config": {"name": "wide", "filters": 4096, "kernel_size": [3, 3],
                                           "padding": "same", "activation": "relu"}}), base=CNN_SPEC)
# Divergence: huge constant weights into an exponential activation overflow on the first batch.
spec_variant("overflow", lambda s: s["model"]["config"]["layers"].insert(1, {
    "class_name": "Dense", "config": {"name": "boom", "units": 8, "activation": "exponential",
                                      "kernel_initializer": {"class_name": "Constant", "config": {"value": 100.0}}}}))
spec_variant("diverge_lr", setter("compile", "optimizer", {"class_name": "SGD", "config": {"learning_rate": 1e30}}))

# --- bad CSV files -------------------------------------------------------------------------------

good = "".join(train_rows[:12])
lines = good.splitlines(keepends=True)


def csv_variant(name, line_no, new_line):
    out = list(lines)
    out[line_no - 1] = new_line
    write_text(f"csv/{name}.csv", "".join(out))


csv_variant("nan_feature", 3, "1.0,nan,3.0,4.0,1\n")
csv_variant("inf_feature", 5, "1.0,2.0,inf,4.0,1\n")
csv_variant("text_feature", 4, "1.0,2.0,3.0,four,1\n")
csv_variant("empty_field", 6, "1.0,,3.0,4.0,1\n")
csv_variant("ragged_row", 7, "1.0,2.0,3.0,1\n")
csv_variant("huge_number", 2, "1.0,2.0,3.0,1e60,0\n")
csv_variant("nan_label", 8, "1.0,2.0,3.0,4.0,nan\n")
csv_variant("label_out_of_range", 9, "1.0,2.0,3.0,4.0,7\n")
csv_variant("label_fraction", 10, "1.0,2.0,3.0,4.0,1.5\n")
csv_variant("label_negative", 11, "1.0,2.0,3.0,4.0,-1\n")
csv_variant("blank_line", 5, "\n")
csv_variant("binary_garbage", 3, "\x01\x02\x03,\x04\n")
write_text("csv/empty.csv", "")
write_text("csv/narrow.csv", "".join(",".join(l.split(",")[:3]) + "\n" for l in lines))
write_bytes("csv/truncated.csv.gz", gz(good.encode())[:40])
# Specs that train on some of them.
for name, train in (("csv_nan_feature", "../csv/nan_feature.csv"), ("csv_label_out_of_range", "../csv/label_out_of_range.csv"),
                    ("csv_label_fraction", "../csv/label_fraction.csv"), ("csv_label_negative", "../csv/label_negative.csv"),
                    ("csv_narrow", "../csv/narrow.csv"), ("csv_empty", "../csv/empty.csv"),
                    ("csv_truncated_gz", "../csv/truncated.csv.gz"), ("csv_nan_label", "../csv/nan_label.csv")):
    spec_variant(name, setter("data", "train", train))
write_text("csv/header_only.csv", "a,b,c,d,label\n")
spec_variant("csv_header_only", lambda s: s["data"].update({"train": "../csv/header_only.csv", "header": True}))

# --- bad IDX files -------------------------------------------------------------------------------

imgs10, labels10 = test_px[:640], test_lb[:10]
write_bytes("idx/bad_magic-images-idx3-ubyte", b"\x12\x34" + idx([10, 8, 8], imgs10)[2:])
write_bytes("idx/float_type-images-idx3-ubyte", idx([10, 8, 8], imgs10, type_byte=0x0D))
write_bytes("idx/rank0-images-idx3-ubyte", bytes([0, 0, 8, 0]))
write_bytes("idx/short_header-images-idx3-ubyte", idx([10, 8, 8], b"")[:9])
write_bytes("idx/truncated-images-idx3-ubyte", idx([10, 8, 8], imgs10[:600]))
write_bytes("idx/trailing-images-idx3-ubyte", idx([10, 8, 8], imgs10 + b"\0\0\0"))
write_bytes("idx/oversized-images-idx3-ubyte", idx([100_000_000, 28, 28], imgs10))
write_bytes("idx/overflow-images-idx3-ubyte", idx([0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF], b""))
write_bytes("idx/truncated-images-idx3-ubyte.gz", gz(idx([10, 8, 8], imgs10))[:60])
write_bytes("idx/bad_magic_inside-images-idx3-ubyte.gz", gz(b"\x07\x07" + idx([10, 8, 8], imgs10)[2:]))
write_bytes("idx/seven-images-idx3-ubyte", idx([10, 7, 7], imgs10[:490]))
write_bytes("idx/good-images-idx3-ubyte.gz", gz(idx([10, 8, 8], imgs10)))


def idx_dir(name, images, labels):
    """A directory holding one t10k pair, for evaluate --data DIR and for train specs."""
    write_bytes(f"idx/{name}/t10k-images-idx3-ubyte", images)
    write_bytes(f"idx/{name}/t10k-labels-idx1-ubyte", labels)


idx_dir("count_mismatch", idx([10, 8, 8], imgs10), idx([9], labels10[:9]))
idx_dir("label_out_of_range", idx([10, 8, 8], imgs10), idx([10], labels10[:4] + b"\x09" + labels10[5:]))
idx_dir("labels_2d", idx([10, 8, 8], imgs10), idx([10, 1], labels10))
idx_dir("images_1d", idx([640], imgs10), idx([10], labels10))
idx_dir("labels_truncated", idx([10, 8, 8], imgs10), idx([10], labels10[:6]))
write_bytes("idx/no_labels/t10k-images-idx3-ubyte", idx([10, 8, 8], imgs10))

# --- model files ---------------------------------------------------------------------------------

KERAS_MLP = {
    "module": "keras", "class_name": "Sequential", "registered_name": None,
    "config": {"name": "tiny_mlp", "trainable": True, "dtype": "float32",
               "layers": [
                   {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
                    "config": {"name": "hidden", "units": 16, "activation": "relu", "use_bias": True,
                               "batch_input_shape": [None, 4]}},
                   {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
                    "config": {"name": "out", "units": 3, "activation": "softmax", "use_bias": True}}],
               "build_config": {"input_shape": [None, 4]}},
}
KERAS_CNN = {
    "module": "keras", "class_name": "Sequential", "registered_name": None,
    "config": {"name": "tiny_cnn", "trainable": True, "dtype": "float32",
               "layers": [
                   {"module": "keras.layers", "class_name": "Conv2D", "registered_name": None,
                    "config": {"name": "conv", "filters": 2, "kernel_size": [3, 3], "activation": "relu",
                               "padding": "same", "batch_input_shape": [None, 8, 8, 1]}},
                   {"module": "keras.layers", "class_name": "Flatten", "registered_name": None,
                    "config": {"name": "flatten"}},
                   {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
                    "config": {"name": "out", "units": 3, "activation": "softmax"}}]},
}
COMPILE = {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.01}},
           "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}


def weights(shapes, seed):
    r = random.Random(seed)
    out = []
    for name, shape in shapes:
        n = 1
        for d in shape:
            n *= d
        out.append((name, shape, [r.uniform(-0.5, 0.5) for _ in range(n)]))
    return out


MLP_WEIGHTS = weights([("hidden/kernel", [4, 16]), ("hidden/bias", [16]), ("out/kernel", [16, 3]), ("out/bias", [3])], 1)
CNN_WEIGHTS = weights([("conv/kernel", [3, 3, 1, 2]), ("conv/bias", [2]), ("out/kernel", [128, 3]), ("out/bias", [3])], 2)


def metadata(model, scale, **overrides):
    m = {"format": "lamina", "format_version": "1", "model_config": json.dumps(model),
         "compile_config": json.dumps(COMPILE), "lamina_preprocessing": json.dumps({"scale": scale, "data": "files"})}
    m.update(overrides)
    return {k: v for k, v in m.items() if v is not None}


def safetensors(tensors, meta=None, dtype="F32", header_extra=None, header_text=None, data_extra=b""):
    """tensors: (name, shape, values); header entries in that order, data back to back."""
    header, data, offset = {}, b"", 0
    if meta is not None:
        header["__metadata__"] = meta
    for name, shape, values in tensors:
        raw = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    if header_extra:
        header_extra(header)
    text = header_text if header_text is not None else json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text.encode())) + text.encode() + data + data_extra


def model_file(name, **kw):
    write_bytes(f"models/{name}.safetensors", safetensors(**kw))


model_file("mlp", tensors=MLP_WEIGHTS, meta=metadata(KERAS_MLP, 0.1))
model_file("cnn", tensors=CNN_WEIGHTS, meta=metadata(KERAS_CNN, 1 / 255))
good_mlp = safetensors(MLP_WEIGHTS, metadata(KERAS_MLP, 0.1))
write_bytes("models/short.safetensors", good_mlp[:5])
write_bytes("models/header_past_end.safetensors", struct.pack("<Q", 4096) + good_mlp[8:200])
write_bytes("models/header_huge.safetensors", struct.pack("<Q", 1 << 40) + good_mlp[8:])
write_bytes("models/data_truncated.safetensors", good_mlp[:-20])
write_bytes("models/trailing_data.safetensors", good_mlp + b"\0" * 8)
model_file("header_not_json", tensors=MLP_WEIGHTS, header_text='{"__metadata__": {"format": "lamina"}, oops}')
model_file("header_array", tensors=[], header_text="[1, 2, 3]")


def shift_offsets(name, begin, end):
    def change(h):
        h[name]["data_offsets"] = [begin, end]
    return change


model_file("offsets_out_of_range", tensors=MLP_WEIGHTS, meta=metadata(KERAS_MLP, 0.1),
           header_extra=shift_offsets("out/bias", 10_000_000, 10_000_012))
model_file("offsets_overlap", tensors=MLP_WEIGHTS, meta=metadata(KERAS_MLP, 0.1),
           header_extra=shift_offsets("out/bias", 8, 20))
model_file("offsets_negative", tensors=MLP_WEIGHTS, meta=metadata(KERAS_MLP, 0.1),
           header_extra=shift_offsets("hidden/bias", -4, 60))
model_file("offsets_wrong_span", tensors=MLP_WEIGHTS, meta=metadata(KERAS_MLP, 0.1),
           header_extra=lambda h: h["hidden/bias"].update({"shape": [15]}))
model_file("dtype_f16", tensors=MLP_WEIGHTS, meta=metadata(KERAS_MLP, 0.1), dtype="F16")
model_file("shape_vs_config", tensors=[("hidden/kernel", [4, 8], MLP_WEIGHTS[0][2][:32]), ("hidden/bias", [16], MLP_WEIGHTS[1][2]),
                                      MLP_WEIGHTS[2], MLP_WEIGHTS[3]], meta=metadata(KERAS_MLP, 0.1))
model_file("missing_tensor", tensors=MLP_WEIGHTS[:3], meta=metadata(KERAS_MLP, 0.1))
model_file("extra_tensor", tensors=MLP_WEIGHTS + [("stray/kernel", [2], [0.0, 1.0])], meta=metadata(KERAS_MLP, 0.1))
# Two header entries with the same name: written as text, since a dict cannot hold both.
_tensors, _off, _entries = b"", 0, []
for n, s, v in MLP_WEIGHTS + [MLP_WEIGHTS[3]]:
    raw = struct.pack(f"<{len(v)}f", *v)
    _entries.append(f'"{n}":{{"dtype":"F32","shape":{json.dumps(s)},"data_offsets":[{_off},{_off + len(raw)}]}}')
    _tensors += raw
    _off += len(raw)
_text = '{"__metadata__":' + json.dumps(metadata(KERAS_MLP, 0.1), separators=(",", ":")) + "," + ",".join(_entries) + "}"
_text += " " * ((8 - len(_text) % 8) % 8)
write_bytes("models/duplicate_tensor.safetensors", struct.pack("<Q", len(_text)) + _text.encode() + _tensors)
model_file("no_metadata", tensors=MLP_WEIGHTS)
model_file("format_other", tensors=MLP_WEIGHTS, meta=metadata(KERAS_MLP, 0.1, format="pt"))
model_file("newer_version", tensors=MLP_WEIGHTS, meta=metadata(KERAS_MLP, 0.1, format_version="2"))
model_file("version_text", tensors=MLP_WEIGHTS, meta=metadata(KERAS_MLP, 0.1, format_version="one"))
model_file("config_not_json", tensors=MLP_WEIGHTS, meta=metadata(KERAS_MLP, 0.1, model_config='{"class_name": "Sequential", oops'))
model_file("metadata_not_string", tensors=MLP_WEIGHTS, meta=metadata(KERAS_MLP, 0.1),
           header_extra=lambda h: h["__metadata__"].update({"format_version": 1}))
bad_layer = copy.deepcopy(KERAS_MLP)
bad_layer["config"]["layers"][1]["class_name"] = "FancyDense"
model_file("config_unknown_layer", tensors=MLP_WEIGHTS, meta=metadata(bad_layer, 0.1))
model_file("compile_not_json", tensors=MLP_WEIGHTS, meta=metadata(KERAS_MLP, 0.1, compile_config="{loss"))
model_file("preprocessing_not_json", tensors=MLP_WEIGHTS, meta=metadata(KERAS_MLP, 0.1, lamina_preprocessing="scale=1"))
nan_weights = copy.deepcopy(MLP_WEIGHTS)
nan_weights[2][2][5] = float("nan")
model_file("nan_weight", tensors=nan_weights, meta=metadata(KERAS_MLP, 0.1))

# --- ONNX -----------------------------------------------------------------------------------------
# Variants of the PyTorch-exported tests/cli/tiny_mlp.onnx (Gemm, Relu, Gemm; 4 features, 3 outputs).
with open(os.path.join(HERE, "..", "cli", "tiny_mlp.onnx"), "rb") as f:
    TINY_ONNX = f.read()
write_bytes("onnx/good.onnx", TINY_ONNX)
write_bytes("onnx/truncated.onnx", TINY_ONNX[:300])
write_bytes("onnx/truncated_tail.onnx", TINY_ONNX[:-7])
write_bytes("onnx/empty.onnx", b"")
write_bytes("onnx/garbage.onnx", bytes(random.Random(7).randrange(256) for _ in range(512)))
write_text("onnx/text.onnx", "this is not a protobuf\n")
# NodeProto.op_type (field 4) "Relu" -> "Selu"; the second Gemm's input (field 1) "2.weight" -> "X.weight".
assert TINY_ONNX.count(b"\x22\x04Relu") == 1 and TINY_ONNX.count(b"\x0a\x082.weight") == 1
write_bytes("onnx/unsupported_op.onnx", TINY_ONNX.replace(b"\x22\x04Relu", b"\x22\x04Selu"))
write_bytes("onnx/missing_initializer.onnx", TINY_ONNX.replace(b"\x0a\x082.weight", b"\x0a\x08X.weight"))

# --- hostile: JSON nested 100,000 deep (nlohmann copies and dumps recurse once per level, so it
# overflowed the stack: SIGSEGV) and a 20,000-layer model (adding layers was O(n^3)). Each place
# that reads JSON: a spec, a Keras model file, a safetensors header, its model_config, its
# preprocessing, and an ONNX file's metadata_props.
DEEP = 100000
write_text("hostile/deep_spec.json", '{"model": ' + "[" * DEEP + "]" * DEEP + "}\n")
write_text("hostile/deep_keras.json", '{"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", '
           '"config": {"units": ' + "{\"a\": " * DEEP + "1" + "}" * DEEP + "}}]}}\n")
write_text("hostile/deep_string_ok.json", json.dumps(dict(MLP_SPEC, description="[" * DEEP)) + "\n")
_deep_header = '{"__metadata__": {"format": "lamina"}, "w": ' + "[" * DEEP + "]" * DEEP + "}"
write_bytes("hostile/deep_header.safetensors", struct.pack("<Q", len(_deep_header)) + _deep_header.encode())
model_file("../hostile/deep_config", tensors=MLP_WEIGHTS, meta=metadata(KERAS_MLP, 0.1, model_config="[" * DEEP + "]" * DEEP))
model_file("../hostile/deep_preprocessing", tensors=MLP_WEIGHTS,
           meta=metadata(KERAS_MLP, 0.1, lamina_preprocessing="[" * DEEP + "]" * DEEP))


def proto_len(field, payload):  # a length-delimited protobuf field
    key, n, size = bytes([field << 3 | 2]), len(payload), b""
    while True:
        size += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
        n >>= 7
        if not n:
            return key + size + payload


# ModelProto.metadata_props (field 14): {key: "lamina_preprocessing", value: deep JSON}, appended.
_prop = proto_len(1, b"lamina_preprocessing") + proto_len(2, ("[" * DEEP + "]" * DEEP).encode())
write_bytes("hostile/deep_metadata.onnx", TINY_ONNX + proto_len(14, _prop))
_many = copy.deepcopy(MLP_SPEC)
_many["model"]["config"]["layers"][1:1] = [{"class_name": "Activation", "config": {"activation": "relu"}}] * 20000
_many["fit"]["epochs"] = 1
write_text("hostile/many_layers.json", json.dumps(_many) + "\n")

print("corpus written under", HERE)

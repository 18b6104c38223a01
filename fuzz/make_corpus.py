#!/usr/bin/python3
"""Writes the fuzz targets' seed corpora into fuzz/corpus/<target>/: small valid files and
near-valid ones (cut, padded, one field wrong), so the fuzzers start deep inside each format.
Inputs named regression-* are fuzzer findings, added by hand after the fix; this leaves them.
The model seeds are trained with the lamina CLI, hence --lamina. Run by hand, not by the build:

    /usr/bin/python3 fuzz/make_corpus.py --lamina build/lamina
"""
import argparse
import gzip
import json
import pathlib
import shutil
import struct
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


def write(target: str, name: str, data: bytes) -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


# --- IDX ---------------------------------------------------------------------------------------

def idx(dims, payload: bytes, dtype=0x08) -> bytes:
    return bytes([0, 0, dtype, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def idx_seeds() -> None:
    labels = idx([5], bytes([7, 2, 1, 0, 4]))
    images = idx([2, 4, 4], bytes(range(32)))
    write("idx", "labels.idx", labels)
    write("idx", "images.idx", images)
    write("idx", "labels.idx.gz", gz(labels))
    write("idx", "images.idx.gz", gz(images))
    write("idx", "two_members.idx.gz", gz(images[:9]) + gz(images[9:]))
    write("idx", "empty_dim.idx", idx([0, 28, 28], b""))
    write("idx", "rank3_one.idx", idx([1, 1, 1], b"\x80"))
    # Near-valid: each refused with an IoError.
    write("idx", "truncated.idx", images[:-1])
    write("idx", "trailing.idx", labels + b"\x00")
    write("idx", "float_type.idx", idx([1], b"\x00\x00\x80\x3f", 0x0D))
    write("idx", "rank0.idx", idx([], b"a"))
    write("idx", "overflow.idx", idx([0xFFFFFFFF] * 3, b""))
    write("idx", "huge_claim.idx", idx([1 << 20, 1 << 20], b"abc"))
    write("idx", "huge_claim.idx.gz", gz(idx([1 << 20, 1 << 20], b"abc")))
    write("idx", "cut.idx.gz", gz(images)[:-5])
    write("idx", "garbage_after.idx.gz", gz(labels) + b"junk")
    bad_crc = bytearray(gz(labels))
    bad_crc[-8] ^= 1
    write("idx", "bad_crc.idx.gz", bytes(bad_crc))


# --- CSV ---------------------------------------------------------------------------------------

def csv_seeds() -> None:
    seeds = {
        "plain.csv": b"1,2,0\n3,4,1\n5.5,-6e-1,2\n",
        "header.csv": b"x0,x1,label\n1,2,0\n3,4,1\n",
        "crlf_no_final_newline.csv": b"1,2\r\n3,4\r\n5,6",
        "bom_blanks_plus.csv": b"\xef\xbb\xbfa,b,c\n 1 , +2,0\n3,\t4 ,1\n\n",
        "one_column.csv": b"1\n2\n3\n",
        "wide.csv": b",".join(b"%d" % i for i in range(40)) + b"\n",
        "exponents.csv": b"1e-45,3.4e38,-0\n.5,5.,0x1\n",
        # Near-valid: each refused with an IoError naming line and column.
        "ragged.csv": b"1,2,3\n4,5\n",
        "empty_field.csv": b"1,,3\n",
        "nan.csv": b"1,nan\n2,inf\n",
        "out_of_range.csv": b"1,1e99\n",
        "blank_line.csv": b"1,2\n\n3,4\n",
        "not_a_number.csv": b"1,2\n3,4x\n",
        "empty.csv": b"",
        "only_newlines.csv": b"\n\n\r\n",
    }
    for name, text in seeds.items():
        write("csv", name, text)
    write("csv", "plain.csv.gz", gz(seeds["plain.csv"]))
    write("csv", "cut.csv.gz", gz(seeds["header.csv"])[:-3])


# --- specs -------------------------------------------------------------------------------------

def compact(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def dense(name, units, activation="linear", **extra):
    return {"class_name": "Dense", "config": {"name": name, "units": units, "activation": activation, **extra}}


CNN_LAYERS = [
    {"class_name": "InputLayer", "config": {"batch_shape": [None, 16], "name": "input"}},
    {"class_name": "Reshape", "config": {"name": "reshape", "target_shape": [4, 4, 1]}},
    {"class_name": "Conv2D", "config": {"name": "conv", "filters": 2, "kernel_size": [3, 3], "strides": [1, 1],
                                        "padding": "same", "activation": "relu", "data_format": "channels_last"}},
    {"class_name": "BatchNormalization", "config": {"name": "bn", "axis": -1, "momentum": 0.99, "epsilon": 0.001}},
    {"class_name": "MaxPooling2D", "config": {"name": "pool", "pool_size": [2, 2], "padding": "valid"}},
    {"class_name": "Dropout", "config": {"name": "drop", "rate": 0.25, "seed": 1}},
    {"class_name": "Conv2D", "config": {"name": "conv_1", "filters": 3, "kernel_size": 2, "padding": "valid"}},
    {"class_name": "AveragePooling2D", "config": {"name": "avg", "pool_size": 1}},
    {"class_name": "GlobalAveragePooling2D", "config": {"name": "gap"}},
    {"class_name": "Activation", "config": {"name": "act", "activation": "tanh"}},
    dense("out", 3, "softmax"),
]


def spec(layers, data=None, compile_=None, fit=None, keras3=False):
    model = {"class_name": "Sequential", "config": {"name": "m", "layers": layers}}
    if keras3:
        model["module"] = "keras"
        model["config"]["build_config"] = {"input_shape": [None, 4]}
    s = {"model": model, "data": data or {"train": "train.csv", "test": "test.csv", "scale": "max"},
         "compile": compile_ or {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}}
    if fit is not None:
        s["fit"] = fit
    return s


def spec_seeds() -> None:
    for p in sorted((ROOT / "examples" / "specs").glob("*.json")):
        write("spec", p.name, compact(json.loads(p.read_text())))
    write("spec", "cli_tiny.json", compact(json.loads((ROOT / "tests" / "cli" / "spec.json").read_text())))
    mlp = [dense("h", 8, "relu", batch_input_shape=[None, 4]), dense("o", 3, "softmax")]
    write("spec", "mlp_files.json", compact(spec(mlp, fit={"epochs": 2, "batch_size": 4, "seed": 1})))
    write("spec", "cnn.json", compact(spec(CNN_LAYERS)))
    write("spec", "keras3_build_config.json", compact(spec([dense("h", 8, "elu"), dense("o", 1, "sigmoid")], keras3=True,
                                                            compile_={"optimizer": {"class_name": "RMSprop", "config": {"learning_rate": 0.001, "clipnorm": 1.0}},
                                                                      "loss": {"class_name": "BinaryCrossentropy", "config": {"from_logits": False}}})))
    write("spec", "keras2_list_config.json",
          compact({"model": {"class_name": "Sequential", "config": [dense("d", 2, input_dim=3)]},
                   "data": {"name": "digits"}, "compile": {"loss": "mse", "optimizer": {"class_name": "SGD", "config": {"momentum": 0.9, "nesterov": True}}}}))
    write("spec", "all_optimizers.json", compact(spec([dense("d", 2, input_shape=[3]), {"class_name": "Flatten", "config": {}}],
                                                      compile_={"optimizer": {"class_name": "AdamW", "config": {"weight_decay": 0.01, "amsgrad": False}},
                                                                "loss": {"class_name": "CategoricalCrossentropy", "config": {"from_logits": True, "label_smoothing": 0.0}},
                                                                "metrics": ["accuracy", "mae"]})))
    write("spec", "adagrad_mae.json", compact(spec([dense("d", 1, batch_input_shape=[None, 2, 2]), {"class_name": "Reshape", "config": {"target_shape": [-1]}}],
                                                   compile_={"optimizer": {"class_name": "Adagrad", "config": {"initial_accumulator_value": 0.1}}, "loss": "mean_absolute_error"})))
    # Near-valid: each refused with a ValueError or ShapeError naming the key or the layer.
    write("spec", "unknown_key.json", compact({**spec(mlp), "epoch": 3}))
    write("spec", "missing_loss.json", compact(spec(mlp, compile_={"optimizer": "sgd"})))
    write("spec", "unknown_layer.json", compact(spec([{"class_name": "LSTM", "config": {"units": 4}}])))
    write("spec", "wrong_types.json", compact(spec([dense("h", "eight", batch_input_shape=[None, 4])])))
    write("spec", "huge_units.json", compact(spec([dense("h", 1 << 40, batch_input_shape=[None, 1 << 20])])))
    write("spec", "shape_mismatch.json", compact(spec([{"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 9, "batch_input_shape": [None, 4, 4, 1]}}])))
    write("spec", "comments.json", b'// a spec with comments\n{"model": /* inline */ {"class_name": "Sequential", "config": {"layers": []}}}')
    write("spec", "not_an_object.json", b"[1, 2, 3]")
    write("spec", "bad_json.json", b'{"model": {')


# --- model files -------------------------------------------------------------------------------

def safetensors(tensors, metadata) -> bytes:
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, (shape, values) in tensors.items():
        raw = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def parse_safetensors(blob: bytes):
    n = struct.unpack("<Q", blob[:8])[0]
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def model_seeds(lamina: pathlib.Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for name in ("train.csv", "test.csv"):
            shutil.copy(ROOT / "tests" / "cli" / name, tmp / name)
        # 16 features for the CNN: the 4 of the CLI's set, repeated.
        for name in ("train.csv", "test.csv"):
            rows = [line.split(",") for line in (tmp / name).read_text().split()]
            (tmp / ("wide_" + name)).write_text("".join(",".join(r[:4] * 4 + [r[4]]) + "\n" for r in rows))
        specs = {
            "mlp": spec([dense("hidden", 8, "relu", batch_input_shape=[None, 4]), dense("out", 3, "softmax")],
                        fit={"epochs": 1, "batch_size": 16, "seed": 1}),
            "cnn": spec(CNN_LAYERS, data={"train": "wide_train.csv", "test": "wide_test.csv", "scale": "max"},
                        compile_={"optimizer": {"class_name": "SGD", "config": {"learning_rate": 0.01, "momentum": 0.9}},
                                  "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
                        fit={"epochs": 1, "batch_size": 16, "seed": 1}),
        }
        for name, s in specs.items():
            (tmp / (name + ".json")).write_text(json.dumps(s))
            out = tmp / (name + ".safetensors")
            subprocess.run([str(lamina), "train", str(tmp / (name + ".json")), "--save", str(out), "--quiet"],
                           check=True, stdout=subprocess.DEVNULL)
            write("model", name + ".safetensors", out.read_bytes())

    mlp = (CORPUS / "model" / "mlp.safetensors").read_bytes()
    header, data = parse_safetensors(mlp)
    meta = header["__metadata__"]
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}

    def variant(name, meta_change=None, tensor_change=None):
        m = dict(meta)
        if meta_change:
            meta_change(m)
        t = {k: (v["shape"], list(struct.unpack("<%df" % ((v["data_offsets"][1] - v["data_offsets"][0]) // 4),
                                                data[v["data_offsets"][0]:v["data_offsets"][1]])))
             for k, v in tensors.items()}
        if tensor_change:
            tensor_change(t)
        write("model", name, safetensors(t, m))

    config = json.loads(meta["model_config"])

    def huge(m):
        c = json.loads(m["model_config"])
        c["config"]["layers"][0]["config"]["units"] = 10 ** 9
        m["model_config"] = json.dumps(c)

    variant("uncompiled.safetensors", lambda m: m.pop("compile_config"))
    variant("newer_version.safetensors", lambda m: m.update(format_version="2"))
    variant("not_lamina.safetensors", lambda m: m.update(format="other"))
    variant("no_config.safetensors", lambda m: m.pop("model_config"))
    variant("config_not_json.safetensors", lambda m: m.update(model_config="{"))
    variant("huge_units.safetensors", huge)
    variant("wrong_shape.safetensors", tensor_change=lambda t: t.update({"hidden/bias": ([4], [0.0] * 4)}))
    variant("extra_tensor.safetensors", tensor_change=lambda t: t.update({"stray": ([1], [1.0])}))
    variant("missing_tensor.safetensors", tensor_change=lambda t: t.pop("out/bias"))
    write("model", "weights_only.safetensors", safetensors({"w": ([2, 2], [1.0, 2.0, 3.0, 4.0])}, None))
    write("model", "empty_header.safetensors", safetensors({}, None))
    write("model", "truncated.safetensors", mlp[:-4])
    write("model", "short.safetensors", mlp[:7])
    write("model", "header_past_end.safetensors", struct.pack("<Q", 1 << 20) + mlp[8:64])
    assert config["class_name"] == "Sequential"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lamina", type=pathlib.Path, required=True, help="the built CLI (build/lamina)")
    args = ap.parse_args()
    for target in ("idx", "csv", "spec", "model"):  # regression-* inputs (fuzzer findings) stay
        for f in (CORPUS / target).glob("*"):
            if not f.name.startswith("regression-"):
                f.unlink()
    idx_seeds()
    csv_seeds()
    spec_seeds()
    model_seeds(args.lamina.resolve())
    for target in ("idx", "csv", "spec", "model"):
        files = list((CORPUS / target).iterdir())
        print(f"{target}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()

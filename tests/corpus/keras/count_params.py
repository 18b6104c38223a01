#!/usr/bin/env python3
"""Count the parameters of a Keras Functional model config, from shapes alone.

Usage: python3 count_params.py FILE.json [FILE.json ...]

Reads a Keras model config (the output of model.to_json(), the model_config of
an .h5 file, or config.json from a .keras archive), works out every layer's
per-sample output shape by walking the graph, and counts weights per layer:

  Dense               units * (in + 1 if use_bias else in)
  Conv2D              kh * kw * cin * filters (+ filters if use_bias)
  BatchNormalization  4 * channels (gamma/beta trainable when scale/center,
                      moving mean/variance never trainable)
  LayerNormalization  2 * features (gamma, beta)
  Embedding           input_dim * output_dim
  Conv1D              k * cin * filters (+ filters if use_bias)
  SimpleRNN/LSTM/GRU  g * u * (in + u) + bias, g = 1, 4, 3 gates; bias g * u
                      (2 * g * u for GRU with reset_after)
  Bidirectional       twice its layer
  everything else     0
A layer with "trainable": false counts as non-trainable. A recurrent layer with
return_state has several outputs (Bidirectional: the merged output, then the
forward states, then the backward ones). A null dimension (variable length)
stays None.

Both node forms are read:
  Keras 2: "inbound_nodes": [[["dense", 0, 0, {}], ...]]
  Keras 3: "inbound_nodes": [{"args": [<tensor or list of tensors>], "kwargs": {}}]
           a tensor is {"class_name": "__keras_tensor__",
                        "config": {"keras_history": ["dense", 0, 0], ...}}
A nested Sequential (a model used as a layer) is walked layer by layer, and so is
a top-level Sequential, also in Keras 2.0-2.2's form (the layer list as config).
Only channels_last is handled. Plain python3, json only.
"""
import json
import sys

SUPPORTED = {
    "InputLayer", "Dense", "Conv2D", "MaxPooling2D", "AveragePooling2D",
    "GlobalAveragePooling2D", "Flatten", "Dropout", "BatchNormalization",
    "Activation", "Reshape", "LeakyReLU", "LayerNormalization",
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Concatenate",
    "Sequential", "Functional", "Model",
    "Embedding", "Conv1D", "MaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D",
    "GlobalMaxPooling1D", "SimpleRNN", "LSTM", "GRU", "Bidirectional", "Masking",
}

GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}
STATES = {"SimpleRNN": 1, "LSTM": 2, "GRU": 1}


def recurrent(cls, cfg, x):
    """(weights, outputs) of a SimpleRNN / LSTM / GRU on the per-sample shape x = (T, in)."""
    g, u = GATES[cls], int(cfg["units"])
    bias = 0
    if cfg.get("use_bias", True):
        bias = 2 * g * u if cls == "GRU" and cfg.get("reset_after", False) else g * u
    out = (x[0], u) if cfg.get("return_sequences", False) else (u,)
    states = [(u,)] * STATES[cls] if cfg.get("return_state", False) else []
    return g * u * (x[-1] + u) + bias, [out] + states


def pair(v):
    if isinstance(v, dict) and "items" in v:  # tf.keras __tuple__ encoding
        v = v["items"]
    if isinstance(v, (list, tuple)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def first(v):
    """A 1-D layer's size: an int or a one-element list."""
    if isinstance(v, dict) and "items" in v:
        v = v["items"]
    return int(v[0]) if isinstance(v, (list, tuple)) else int(v)


def spatial_out(size, k, s, padding):
    if size is None:
        return None
    if padding == "same":
        return -(-size // s)
    return (size - k) // s + 1


def input_shape_of(cfg):
    for key in ("batch_shape", "batch_input_shape"):
        if key in cfg and cfg[key] is not None:
            v = cfg[key]
            if isinstance(v, dict) and "items" in v:
                v = v["items"]
            return tuple(v[1:])
    raise ValueError("InputLayer without batch shape: %r" % cfg)


class Counter:
    def __init__(self):
        self.trainable = 0
        self.non_trainable = 0
        self.rows = []  # (name, class, output shape, params)

    def add(self, name, cls, shape, trainable, non_trainable):
        self.trainable += trainable
        self.non_trainable += non_trainable
        self.rows.append((name, cls, shape, trainable + non_trainable))

    # one layer applied to per-sample input shapes -> per-sample output shape
    def apply(self, layer, ins):
        cls = layer["class_name"]
        cfg = layer.get("config", {})
        name = layer.get("name") or cfg.get("name")
        if cls not in SUPPORTED:
            raise ValueError("unsupported layer class %s (%s)" % (cls, name))
        x = ins[0] if ins else None
        t = n = 0
        if cls == "Embedding":
            t = int(cfg["input_dim"]) * int(cfg["output_dim"])
            out = x + (int(cfg["output_dim"]),)
        elif cls == "Conv1D":
            k, s, d = (first(cfg.get(key, 1)) for key in ("kernel_size", "strides", "dilation_rate"))
            f = int(cfg["filters"])
            t = k * x[-1] * f + (f if cfg.get("use_bias", True) else 0)
            pad = cfg.get("padding", "valid")
            out = (spatial_out(x[0], (k - 1) * d + 1, s, "same" if pad == "causal" else pad), f)
        elif cls in ("MaxPooling1D", "AveragePooling1D"):
            k = first(cfg.get("pool_size", 2))
            s = first(cfg.get("strides") or k)
            out = (spatial_out(x[0], k, s, cfg.get("padding", "valid")), x[1])
        elif cls in ("GlobalAveragePooling1D", "GlobalMaxPooling1D"):
            out = (1, x[1]) if cfg.get("keepdims") else (x[1],)
        elif cls in GATES:
            t, out = recurrent(cls, cfg, x)
        elif cls == "Bidirectional":
            inner = cfg["layer"]
            one, outs = recurrent(inner["class_name"], inner["config"], x)
            t = 2 * one
            merged = outs[0]
            if cfg.get("merge_mode", "concat") == "concat":
                merged = merged[:-1] + (2 * merged[-1],)
            main = [merged] if cfg.get("merge_mode", "concat") is not None else [outs[0], outs[0]]
            out = main + outs[1:] + outs[1:]
        elif cls == "Dense":
            units = int(cfg["units"])
            t = units * x[-1] + (units if cfg.get("use_bias", True) else 0)
            out = x[:-1] + (units,)
        elif cls == "Conv2D":
            if cfg.get("data_format", "channels_last") != "channels_last":
                raise ValueError("channels_first not handled")
            kh, kw = pair(cfg["kernel_size"])
            sh, sw = pair(cfg.get("strides", 1))
            dh, dw = pair(cfg.get("dilation_rate", 1))
            groups = int(cfg.get("groups", 1))
            f = int(cfg["filters"])
            cin = x[-1]
            t = kh * kw * (cin // groups) * f + (f if cfg.get("use_bias", True) else 0)
            pad = cfg.get("padding", "valid")
            out = (spatial_out(x[0], (kh - 1) * dh + 1, sh, pad),
                   spatial_out(x[1], (kw - 1) * dw + 1, sw, pad), f)
        elif cls in ("MaxPooling2D", "AveragePooling2D"):
            ph, pw = pair(cfg.get("pool_size", 2))
            st = cfg.get("strides") or cfg.get("pool_size", 2)
            sh, sw = pair(st)
            pad = cfg.get("padding", "valid")
            out = (spatial_out(x[0], ph, sh, pad), spatial_out(x[1], pw, sw, pad), x[2])
        elif cls == "GlobalAveragePooling2D":
            out = (1, 1, x[2]) if cfg.get("keepdims") else (x[2],)
        elif cls == "Flatten":
            p = 1
            for d in x:
                p *= d
            out = (p,)
        elif cls == "Reshape":
            tgt = list(cfg["target_shape"])
            if -1 in tgt:
                total = 1
                for d in x:
                    total *= d
                known = 1
                for d in tgt:
                    if d != -1:
                        known *= d
                tgt[tgt.index(-1)] = total // known
            out = tuple(tgt)
        elif cls == "BatchNormalization":
            axis = cfg.get("axis", -1)
            axis = axis[0] if isinstance(axis, list) else axis
            c = x[axis if axis < 0 else axis - 1]
            gamma = c if cfg.get("scale", True) else 0
            beta = c if cfg.get("center", True) else 0
            t, n = gamma + beta, 2 * c
            out = x
        elif cls == "LayerNormalization":
            axis = cfg.get("axis", -1)
            axes = axis if isinstance(axis, list) else [axis]
            feat = 1
            for a in axes:
                feat *= x[a if a < 0 else a - 1]
            t = (feat if cfg.get("scale", True) else 0) + (feat if cfg.get("center", True) else 0)
            out = x
        elif cls == "Concatenate":
            axis = cfg.get("axis", -1)
            a = axis if axis < 0 else axis - 1
            out = list(ins[0])
            out[a] = sum(s[a] for s in ins)
            out = tuple(out)
        elif cls in ("Add", "Subtract", "Multiply", "Average", "Maximum"):
            out = ins[0]
        elif cls in ("Dropout", "Activation", "LeakyReLU", "Masking"):
            out = x
        elif cls == "Sequential":
            out = self.sequential(cfg, x, name)
            return out
        elif cls in ("Functional", "Model"):
            raise ValueError("nested Functional not handled (%s)" % name)
        elif cls == "InputLayer":
            out = input_shape_of(cfg)
        if cfg.get("trainable", True) is False:
            t, n = 0, t + n
        self.add(name, cls, out, t, n)
        return out

    def sequential(self, cfg, x, outer):
        for layer in cfg["layers"] if isinstance(cfg, dict) else cfg:
            if layer["class_name"] == "InputLayer":
                x = input_shape_of(layer["config"])
                continue
            if x is None:  # the first layer of a Sequential without an InputLayer
                x = input_shape_of(layer["config"])
            inner = dict(layer)
            lname = layer.get("name") or layer["config"].get("name")
            inner["name"] = "%s/%s" % (outer, lname) if outer else lname
            x = self.apply(inner, [x])
            if isinstance(x, list):
                x = x[0]
        return x


def refs_of_node(node):
    """Names of the (layer, node, tensor) references one inbound node consumes."""
    if isinstance(node, dict):  # Keras 3
        found = []

        def walk(v):
            if isinstance(v, dict):
                if v.get("class_name") == "__keras_tensor__":
                    h = v["config"]["keras_history"]
                    found.append((h[0], int(h[1]), int(h[2])))
                    return
                for w in v.values():
                    walk(w)
            elif isinstance(v, list):
                for w in v:
                    walk(w)

        walk(node.get("args", []))
        return found
    # Keras 2: list of [name, node_index, tensor_index, kwargs]
    return [(r[0], int(r[1]), int(r[2])) for r in node]


def count(model):
    cfg = model["config"]
    c = Counter()
    if model["class_name"] == "Sequential":
        c.outputs = [c.sequential(cfg, None, "")]
        return c
    shapes = {}  # (layer, node_index) -> the output shapes
    pending = list(cfg["layers"])
    progress = True
    while pending and progress:
        progress = False
        rest = []
        for layer in pending:
            name = layer.get("name") or layer["config"]["name"]
            nodes = layer.get("inbound_nodes", [])
            if layer["class_name"] == "InputLayer" or not nodes:
                if layer["class_name"] != "InputLayer":
                    raise ValueError("layer %s has no inbound node" % name)
                shapes[(name, 0)] = [c.apply(layer, [])]
                progress = True
                continue
            if len(nodes) != 1:
                raise ValueError("shared layer %s (%d nodes) not handled" % (name, len(nodes)))
            refs = refs_of_node(nodes[0])
            if all((r[0], r[1]) in shapes for r in refs):
                out = c.apply(layer, [shapes[(r[0], r[1])][r[2]] for r in refs])
                shapes[(name, 0)] = out if isinstance(out, list) else [out]
                progress = True
            else:
                rest.append(layer)
        pending = rest
    if pending:
        raise ValueError("unresolved layers: %s" % [l.get("name") for l in pending])
    return c


def main(paths):
    for p in paths:
        with open(p, "rb") as f:
            model = json.loads(f.read())
        c = count(model)
        print("== %s (%s, keras %s)" % (p, model["class_name"], model.get("keras_version", "n/a")))
        for name, cls, shape, params in c.rows:
            print("   %-36s %-20s %-18s %d" % (name, cls, shape, params))
        if model["class_name"] != "Sequential":
            print("   inputs %d, outputs %d" % (len(model["config"]["input_layers"]),
                                               len(model["config"]["output_layers"])))
        print("   Total params: %d  Trainable: %d  Non-trainable: %d"
              % (c.trainable + c.non_trainable, c.trainable, c.non_trainable))


if __name__ == "__main__":
    main(sys.argv[1:])

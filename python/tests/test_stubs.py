"""The type stubs (python/lamina/*.pyi) against the package at run time: every public name
declared and no name that does not exist, layer signatures that the engine accepts, and (when
mypy is installed) a type check of code written against them.

Run with the package built: PYTHONPATH=<build>/python python3 -m pytest -q python/tests
"""

import ast
import importlib
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

import lamina
from lamina import _lamina, layers

PACKAGE = pathlib.Path(lamina.__file__).resolve().parent


def stub(name):
    path = PACKAGE / name
    assert path.is_file(), f"{path} is missing (the build copies python/lamina/*.pyi beside the package)"
    return ast.parse(path.read_text(), filename=str(path))


def top_level(tree, public=True):
    """The names a stub declares at module level: {name: node}."""
    out = {}
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            out[node.name] = node
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                if a.asname is not None and a.asname == a.name:  # "import x as x": a re-export
                    out[a.asname] = node
        elif isinstance(node, ast.Import):
            for a in node.names:
                # "import numpy as np" is private to a stub; "import lamina as keras" is exported
                # by __init__.pyi's __all__.
                if a.asname is not None and (a.asname == a.name or a.asname in (literal_all(tree) or ())):
                    out[a.asname] = node
    if public:
        out = {k: v for k, v in out.items() if not k.startswith("_") or k == "__version__"}
    return out


def members(cls_node, classes):
    """The names a stub class declares, with those of its bases declared in the same stub."""
    names = set()
    for node in cls_node.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    for base in cls_node.bases:
        if isinstance(base, ast.Name) and base.id in classes:
            names |= members(classes[base.id], classes)
    return names


def literal_all(tree):
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return ast.literal_eval(node.value)
    return None


# --- layers.pyi ---------------------------------------------------------------------------------------

def test_layers_stub_declares_exactly_the_public_names():
    tree = stub("layers.pyi")
    declared = set(top_level(tree)) - {"__all__"}
    assert declared == set(layers.__all__)
    # (A set: lamina.layers.__all__ lists InputLayer twice, once by hand and once from the registry.)
    assert sorted(literal_all(tree)) == sorted(set(layers.__all__))
    # Nothing public defined in lamina.layers is left out of __all__ (and so of the stub).
    defined_here = {n for n in dir(layers) if not n.startswith("_")
                    and getattr(getattr(layers, n), "__module__", None) == layers.__name__}
    assert defined_here <= set(layers.__all__)


def test_layers_stub_covers_the_registry_and_aliases():
    tree = stub("layers.pyi")
    names = top_level(tree)
    for cls in _lamina.registered_layers():
        if cls in ("Functional", "Model", "Sequential"):
            continue
        node = names.get(cls)
        assert isinstance(node, ast.ClassDef), f"layers.pyi does not declare class {cls}"
        assert [b.id for b in node.bases] == ["Layer"], cls
    aliases = (("Convolution2D", "Conv2D"), ("MaxPool2D", "MaxPooling2D"), ("AvgPool2D", "AveragePooling2D"))
    for alias, target in aliases:
        assert getattr(layers, alias) is getattr(layers, target)
        assert isinstance(names[alias], ast.Assign) and names[alias].value.id == target


# Values for the arguments without defaults, to build each layer.
REQUIRED = {"units": 2, "activation": "relu", "rate": 0.5, "target_shape": (2, 2), "filters": 2, "kernel_size": 3,
            "input_dim": 10, "output_dim": 4, "n": 2}


def required_value(cls, arg):
    if arg == "layer":
        return layers.LSTM(2) if cls == "Bidirectional" else layers.Dense(2)
    return REQUIRED[arg]


def layer_signatures():
    tree = stub("layers.pyi")
    for name, node in top_level(tree).items():
        if not isinstance(node, ast.ClassDef) or name == "Layer":
            continue
        init = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
        yield name, init.args


def build(cls, **kwargs):
    positional, keyword, _ = split(cls)
    args = [required_value(cls, a.arg) for a, d in positional if d is None]
    if cls == "InputLayer":
        kwargs.setdefault("input_shape", (3,))
    return getattr(layers, cls)(*args, **kwargs)


def split(cls):
    """The stub's (positional, keyword-only) arguments of cls as [(arg, default node or None)], and
    the name of the TypedDict of its **kwargs."""
    args = dict(layer_signatures())[cls]
    pos = args.args[1:]  # without self
    pos_defaults = [None] * (len(pos) - len(args.defaults)) + list(args.defaults)
    kwargs_type = args.kwarg.annotation.slice.id if args.kwarg is not None else None
    return list(zip(pos, pos_defaults)), list(zip(args.kwonlyargs, args.kw_defaults)), kwargs_type


def typed_dict_keys(name):
    classes = {n.name: n for n in stub("layers.pyi").body if isinstance(n, ast.ClassDef)}
    node = classes[name]
    keys = {n.target.id for n in node.body if isinstance(n, ast.AnnAssign)}
    for base in node.bases:
        if isinstance(base, ast.Name) and base.id in classes:
            keys |= typed_dict_keys(base.id)
    return keys


@pytest.mark.parametrize("cls", [name for name, _ in layer_signatures()])
def test_layer_stub_signature_matches_the_engine(cls):
    positional, keyword, kwargs_type = split(cls)
    # The positional arguments are those the class takes positionally, in that order.
    assert tuple(a.arg for a, _ in positional) == getattr(layers, cls)._positional
    assert kwargs_type in ("_LayerKwargs", "_BaseKwargs")
    plain = build(cls).get_config()
    declared = {a.arg for a, _ in positional + keyword} | typed_dict_keys(kwargs_type)
    # Every key the engine writes for this layer can be given (those it takes from the input
    # shape or names for itself aside).
    undeclared = set(plain) - declared - {"ragged" if cls != "InputLayer" else ""}
    assert not undeclared, f"{cls}: the engine's config has {sorted(undeclared)}, which layers.pyi does not declare"
    # Each default in the stub is the engine's: giving it changes nothing.
    for arg, default in positional + keyword:
        if default is None:
            continue
        value = ast.literal_eval(default)
        explicit = build(cls, **{arg.arg: value}).get_config()
        assert explicit == plain, f"{cls}({arg.arg}={value!r}) differs from the default"


def test_common_layer_kwargs_are_accepted():
    for key, value in {"name": "d", "trainable": False, "dtype": "float32", "input_shape": (3,), "input_dim": 3,
                       "batch_input_shape": (None, 3), "batch_shape": (None, 3)}.items():
        assert key in typed_dict_keys("_LayerKwargs")
        layers.Dense(2, **{key: value})
    assert typed_dict_keys("_LayerKwargs") - typed_dict_keys("_BaseKwargs") == {"input_dim"}
    assert layers.Embedding(10, 4).get_config()["input_dim"] == 10  # Embedding's own input_dim


# --- the extension: _lamina.pyi, ops.pyi, _lamina_explain.pyi ----------------------------------------------

OPERATORS = {"__len__", "__float__", "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
             "__truediv__", "__rtruediv__", "__matmul__", "__neg__", "__pow__"}


def runtime_public(module):
    return {n for n in dir(module) if not n.startswith("_")}


def test_extension_stub_declares_every_attribute():
    tree = stub("_lamina.pyi")
    declared = set(top_level(tree))
    runtime = runtime_public(_lamina) | {"__version__"}
    assert declared == runtime, (f"missing from _lamina.pyi: {sorted(runtime - declared)}; "
                                 f"declared but absent: {sorted(declared - runtime)}")


def test_extension_stub_classes_declare_every_member():
    tree = stub("_lamina.pyi")
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    for name, node in classes.items():
        cls = getattr(_lamina, name)
        declared = members(node, classes)
        runtime = {n for n in vars(cls) if not n.startswith("_") or n in OPERATORS}
        assert runtime <= declared, f"_lamina.pyi class {name} lacks {sorted(runtime - declared)}"
        for n in declared - {"__init__"}:
            assert hasattr(cls, n), f"_lamina.pyi declares {name}.{n}, which does not exist"
        for base in node.bases:
            want = {"ValueError": ValueError, "OSError": OSError}.get(base.id) or getattr(_lamina, base.id)
            assert issubclass(cls, want)


def test_ops_stub_declares_every_op():
    tree = stub("ops.pyi")
    declared = set(top_level(tree)) - {"__all__"}
    assert declared == runtime_public(_lamina.ops) == set(lamina.ops.__all__)
    assert sorted(literal_all(tree)) == sorted(lamina.ops.__all__)
    # The argument names are the bindings' (they are keywords at run time).
    for name, node in top_level(tree).items():
        if isinstance(node, ast.FunctionDef):
            doc = getattr(_lamina.ops, name).__doc__.splitlines()[0]
            for a in node.args.args:
                assert f"{a.arg}:" in doc, f"ops.{name}: the binding has no argument '{a.arg}' ({doc})"


def test_explain_stub_declares_every_function():
    tree = stub("_lamina_explain.pyi")
    declared = {n for n, v in top_level(tree).items() if isinstance(v, ast.FunctionDef)}
    assert declared == runtime_public(_lamina.explain)
    for name in declared:
        node = top_level(tree)[name]
        # pybind11 numbers unnamed arguments arg0, arg1...: the stub makes them positional-only.
        doc = getattr(_lamina.explain, name).__doc__.splitlines()[0]
        assert len(node.args.posonlyargs) == doc.count("arg"), name


def test_package_stub_declares_the_front_door():
    tree = stub("__init__.pyi")
    assert sorted(literal_all(tree)) == sorted(lamina.__all__)
    assert set(top_level(tree)) - {"__all__"} == set(lamina.__all__)
    # Every submodule of the package is there too (they are attributes at run time).
    for name, node in top_level(tree).items():
        if isinstance(node, ast.ImportFrom) and node.module is None:
            assert getattr(lamina, name) is importlib.import_module(f"lamina.{name}")
    assert lamina.keras is lamina


# --- a type checker reads them ---------------------------------------------------------------------------

USER_CODE = """
import numpy as np
import lamina
from lamina import layers, ops

inputs = lamina.Input(shape=(4,))
x = layers.Dense(8, activation="relu", kernel_initializer="he_normal")(inputs)
outputs = layers.Dense(3)(layers.Dropout(0.5)(x))
model = lamina.Model(inputs=inputs, outputs=outputs)
conv = layers.Conv2D(8, 3, padding="same", input_shape=(28, 28, 1))
emb = layers.Embedding(100, 8, mask_zero=True, name="emb")
y = layers.Dense(2)(np.zeros((1, 3), np.float32))
reveal_type(y)
reveal_type(ops.mean(y, axis=0))
reveal_type(lamina._lamina.ops.square)
reveal_type(lamina._lamina.explain.saliency)
from lamina import keras
keras.layers.Dense(4, bogus=1)
layers.Conv2D(8, 3, padding="full")
layers.LSTM(4, True)
"""


def test_mypy_reads_the_stubs(tmp_path):
    pytest.importorskip("mypy")  # Debian: python3-mypy
    (tmp_path / "user.py").write_text(textwrap.dedent(USER_CODE))
    env = dict(os.environ, MYPYPATH=str(PACKAGE.parent))
    r = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
                        "--enable-incomplete-feature=Unpack", "--no-error-summary", "user.py"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    lines = [l for l in out.splitlines() if l.startswith("user.py:")]
    errors = [l for l in lines if ": error:" in l]
    # Exactly the three calls that are wrong, and nothing in the package itself.
    assert [l.split(":")[1] for l in errors if "Revealed" not in l] == ["18", "19", "20", "20"], out
    assert 'Unexpected keyword argument "bogus" for "Dense"' in errors[0]
    assert "Literal['valid', 'same']" in errors[1]
    assert "Too many positional arguments" in errors[2]
    notes = [l for l in lines if "Revealed type" in l]
    assert '"lamina._lamina.Tensor"' in notes[0] and '"lamina._lamina.Tensor"' in notes[1]
    assert "def (x:" in notes[2] and "lamina._lamina.Model" in notes[3]
    assert not [l for l in out.splitlines() if ": error:" in l and not l.startswith("user.py:")], out

"""Every public module, class, function, method and property of the package has a docstring, so
that help() and editors show what it does (a method may inherit its base class's, as
Callback.on_epoch_end's overrides do).

Run with the package built: PYTHONPATH=<build>/python python3 -m pytest -q python/tests
"""

import importlib
import inspect
import pkgutil

import lamina


def modules():
    out = [lamina]
    for info in pkgutil.walk_packages(lamina.__path__, "lamina."):
        if info.name.split(".")[-1].startswith("_"):
            continue
        out.append(importlib.import_module(info.name))
    return out


def public_names(module):
    return getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]


def undocumented():
    missing, seen = [], set()
    for module in modules():
        if not inspect.getdoc(module):
            missing.append(module.__name__)
        for name in public_names(module):
            obj = getattr(module, name)
            where = getattr(obj, "__module__", None) or ""
            if inspect.ismodule(obj) or id(obj) in seen or not where.startswith("lamina") or \
                    where.startswith("lamina._lamina"):  # the extension's own: see the .pyi stubs
                continue
            seen.add(id(obj))
            if inspect.isclass(obj):
                if not obj.__dict__.get("__doc__"):
                    missing.append(f"{module.__name__}.{name}")
                for attr, value in vars(obj).items():
                    if attr.startswith("_") and attr != "__call__":
                        continue
                    if isinstance(value, (property, classmethod, staticmethod)) or inspect.isfunction(value):
                        if not inspect.getdoc(getattr(obj, attr) if not isinstance(value, property) else value) and \
                                not _inherited_doc(obj, attr):
                            missing.append(f"{module.__name__}.{name}.{attr}")
            elif callable(obj) and not inspect.getdoc(obj):
                missing.append(f"{module.__name__}.{name}")
    return missing


def _inherited_doc(cls, attr):
    for base in cls.__mro__[1:]:
        value = base.__dict__.get(attr)
        if value is not None:
            return bool(inspect.getdoc(value))
    return False


def test_every_public_object_has_a_docstring():
    assert undocumented() == []


def test_fit_help_lists_its_arguments():
    doc = inspect.getdoc(lamina.Sequential.fit)
    for arg in inspect.signature(lamina.Sequential.fit).parameters:
        if arg != "self":
            assert arg in doc, f"Model.fit's docstring does not mention {arg}"

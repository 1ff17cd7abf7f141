"""PEP 562 lazy attributes for a package's ``__init__``: names imported from their submodule on
first access, so importing the package costs only what it uses (no torch, no onnx up front)."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_attributes(package: str, namespace: dict[str, Any], names: dict[str, str]) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package`` whose ``names`` map to relative submodules
    (``{"load_model": ".session"}``); a resolved name is cached in ``namespace`` (the globals)."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__

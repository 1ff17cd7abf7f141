"""The ONNX Runtime side of scales-edge: the op library, sessions, the numpy reference, validation.

Imports lazily (PEP 562), like the package above it: ``get_library_path`` costs no ``import onnx``
(which alone takes seconds on a loaded 2-core machine: onnx imports ml_dtypes); the session helpers
import onnx on first use.
"""

from __future__ import annotations

from .._lazy import lazy_attributes
from .library import LibraryNotFound, find_library, get_library_path

__getattr__, __dir__ = lazy_attributes(__name__, globals(), {
    "ModelError": ".session",
    "domain_version": ".session",
    "load_model": ".session",
    "make_session": ".session",
    "metadata": ".session",
})

__all__ = [
    "LibraryNotFound",
    "ModelError",
    "domain_version",
    "find_library",
    "get_library_path",
    "load_model",
    "make_session",
    "metadata",
]

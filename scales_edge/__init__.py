"""scales-edge: SCALES binary super-resolution networks, from PyTorch to ONNX Runtime on the edge.

The package imports lazily (PEP 562): ``import scales_edge`` loads neither torch nor ONNX Runtime,
so the runtime side (``scales_edge.runtime``, ``get_library_path``) works in an install without
torch; the authoring names (``build_model``, ``load_checkpoint``, ...) import torch on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._lazy import lazy_attributes  # noqa: E402
from .errors import CheckpointError, ConfigError, ScalesEdgeError  # noqa: E402  (torch-free)

#: name -> module that defines it; imported on first access.
__getattr__, __dir__ = lazy_attributes(__name__, globals(), {
    "load_checkpoint": ".checkpoints",
    "save_checkpoint": ".checkpoints",
    "build_model": ".models",
    "list_archs": ".models",
})


def get_library_path() -> str:
    """Path of the ONNX Runtime custom-op library (``libscales_edge_ops``) shipped in this package.

    ``so = onnxruntime.SessionOptions(); so.register_custom_ops_library(get_library_path())``
    """
    from .runtime.library import get_library_path as _get

    return _get()


__all__ = [
    "CheckpointError",
    "ConfigError",
    "ScalesEdgeError",
    "__version__",
    "build_model",
    "get_library_path",
    "list_archs",
    "load_checkpoint",
    "save_checkpoint",
]

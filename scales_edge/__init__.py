"""scales-edge: SCALES binary super-resolution networks, from PyTorch to ONNX Runtime on the edge."""

__version__ = "0.1.0"

from .checkpoints import load_checkpoint, save_checkpoint  # noqa: E402
from .errors import CheckpointError, ConfigError, ScalesEdgeError  # noqa: E402
from .models import build_model, list_archs  # noqa: E402


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

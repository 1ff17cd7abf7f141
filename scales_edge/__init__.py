"""scales-edge: SCALES binary super-resolution networks, from PyTorch to ONNX Runtime on the edge."""

__version__ = "0.1.0"

from .checkpoints import load_checkpoint, save_checkpoint  # noqa: E402
from .errors import CheckpointError, ConfigError, ScalesEdgeError  # noqa: E402
from .models import build_model, list_archs  # noqa: E402

__all__ = [
    "CheckpointError",
    "ConfigError",
    "ScalesEdgeError",
    "__version__",
    "build_model",
    "list_archs",
    "load_checkpoint",
    "save_checkpoint",
]

"""The ONNX Runtime side of scales-edge: the op library, sessions, the numpy reference, validation."""

from .library import LibraryNotFound, find_library, get_library_path
from .session import ModelError, domain_version, load_model, make_session, metadata

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

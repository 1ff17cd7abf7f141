"""The model zoo: SR architectures with binarizable bodies, built by name through the registry."""

from . import edsr, hat, rcan, rdn, srresnet, swinir  # noqa: F401  (register the architectures)
from .registry import ArchEntry, build_model, full_config, get_arch, list_archs, register

__all__ = ["ArchEntry", "build_model", "full_config", "get_arch", "list_archs", "register"]

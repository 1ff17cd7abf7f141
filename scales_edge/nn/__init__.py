"""SCALES binary layers, their baselines and the binarization primitives (see layers.py)."""

from .functional import binarize_weight, sign_pm1, sign_ste, weight_scale
from .layers import (
    BINARY_KINDS,
    BiBERTLinear,
    BinaryConv2dBase,
    BinaryLinearBase,
    BinarySpec,
    CoreParams,
    E2FIFConv2d,
    ScalesConv2d,
    ScalesLinear,
    binary_layers,
)

__all__ = [
    "BINARY_KINDS",
    "BiBERTLinear",
    "BinaryConv2dBase",
    "BinaryLinearBase",
    "BinarySpec",
    "CoreParams",
    "E2FIFConv2d",
    "ScalesConv2d",
    "ScalesLinear",
    "binarize_weight",
    "binary_layers",
    "sign_pm1",
    "sign_ste",
    "weight_scale",
]

"""PyTorch → ONNX: custom-domain symbolics for the binary layers, bit-packing, onnxsim, metadata."""

from .onnx_export import DOMAIN, DOMAIN_VERSION, ExportError, custom_op_cores, export_onnx, model_metadata
from .packing import pack_conv_weight, pack_linear_weight, pack_signs

__all__ = [
    "DOMAIN",
    "DOMAIN_VERSION",
    "ExportError",
    "custom_op_cores",
    "export_onnx",
    "model_metadata",
    "pack_conv_weight",
    "pack_linear_weight",
    "pack_signs",
]

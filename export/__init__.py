"""PyTorch → ONNX: custom-domain symbolics for the binary layers, bit-packing, onnxsim, metadata,
and the optional INT8 head/tail (quantize.py)."""

from .onnx_export import (
    DOMAIN,
    DOMAIN_VERSION,
    ExportError,
    custom_op_cores,
    export_domain_version,
    export_onnx,
    model_metadata,
)
from .parity import check_parity
from .packing import pack_conv_weight, pack_linear_weight, pack_signs
from .quantize import TAILS, QuantizeError, quantize_head_tail

__all__ = [
    "DOMAIN",
    "DOMAIN_VERSION",
    "ExportError",
    "QuantizeError",
    "TAILS",
    "check_parity",
    "custom_op_cores",
    "export_domain_version",
    "export_onnx",
    "model_metadata",
    "pack_conv_weight",
    "pack_linear_weight",
    "pack_signs",
    "quantize_head_tail",
]

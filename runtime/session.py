"""ONNX Runtime sessions with the scales-edge op library, and model inspection helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import onnx

from ..errors import ScalesEdgeError
from .library import get_library_path

DOMAIN = "scales_edge"
SUPPORTED_DOMAIN_VERSIONS = (1, 2, 3)


class ModelError(ScalesEdgeError):
    """An ONNX model that is missing, malformed, or not what the command needs."""


ModelLike = "str | os.PathLike | bytes | onnx.ModelProto"


def load_model(model: ModelLike) -> onnx.ModelProto:
    """Read an ONNX model from a path, bytes or a ModelProto, with clear errors."""
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray)):
        try:
            return onnx.load_from_string(bytes(model))
        except Exception as exc:  # protobuf raises DecodeError
            raise ModelError(f"not an ONNX model: {exc}") from None
    path = Path(model)
    if not path.is_file():
        raise ModelError(f"{path}: no such ONNX model file")
    try:
        proto = onnx.load(str(path))
    except Exception as exc:
        raise ModelError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    if not proto.graph.node:
        raise ModelError(f"{path}: the ONNX graph is empty (not an ONNX model?)")
    return proto


def domain_version(model: onnx.ModelProto) -> int | None:
    """The ``scales_edge`` op-domain version the model imports, or None."""
    for imp in model.opset_import:
        if imp.domain == DOMAIN:
            return int(imp.version)
    return None


def metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def tail_precision(meta: dict[str, str]) -> str:
    """A model's FP head/tail precision from its metadata: ``"int8"`` (exported with ``--tail int8``)
    or ``"fp32"`` (also models exported before the key existed)."""
    return meta.get("scales_edge.tail", "fp32")


def make_session(
    model: ModelLike,
    threads: int | None = None,
    providers: Sequence[str] | None = None,
    *,
    register_ops: bool = True,
    optimization: str = "all",
    profile: str | None = None,
    optimized_model: str | None = None,
    spin: bool = True,
):
    """An ``onnxruntime.InferenceSession`` with our op library registered.

    ``threads`` sets ORT's intra-op thread count (None: ORT's default, all cores); ``providers``
    defaults to the CPU provider; ``optimization`` is ``all``, ``extended``, ``basic`` or ``disable``;
    ``profile`` is a file prefix to enable ORT profiling; ``optimized_model`` is a path where ORT
    writes the graph it runs (after its optimizations, with the node names its profile uses);
    ``spin=False`` stops the intra-op threads from busy-waiting after each run (ORT's default is to
    spin), which matters when several sessions take turns on the same cores.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    if register_ops:
        so.register_custom_ops_library(get_library_path())
    if threads is not None:
        if threads < 1:
            raise ScalesEdgeError(f"threads must be >= 1, got {threads}")
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    if not spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    levels = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }
    if optimization not in levels:
        raise ScalesEdgeError(f"optimization must be one of {', '.join(levels)}")
    so.graph_optimization_level = levels[optimization]
    if profile:
        so.enable_profiling = True
        so.profile_file_prefix = profile
    if optimized_model:
        so.optimized_model_filepath = optimized_model
        so.log_severity_level = 3  # errors only: not ORT's warning that the file is hardware-specific
    proto = load_model(model)
    version = domain_version(proto)
    if version is not None and version not in SUPPORTED_DOMAIN_VERSIONS:
        # ORT itself does not compare a custom domain's version with the registered ops'.
        raise ModelError(
            f"the model uses {DOMAIN} op-domain version {version}; this scales-edge implements "
            f"{', '.join(map(str, SUPPORTED_DOMAIN_VERSIONS))} (docs/ops.md): upgrade scales-edge or re-export"
        )
    if isinstance(model, (onnx.ModelProto, bytes, bytearray)):
        source: str | bytes = proto.SerializeToString()
    else:
        source = str(model)
    try:
        return ort.InferenceSession(source, so, providers=list(providers or ["CPUExecutionProvider"]))
    except Exception as exc:
        name = source if isinstance(source, str) else "model"
        raise ModelError(f"{name}: ONNX Runtime cannot load it: {exc}") from None

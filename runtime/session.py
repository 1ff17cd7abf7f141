"""ONNX Runtime sessions with the scales-edge op library, and model inspection helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import onnx

from ..errors import ModelError, ScalesEdgeError
from .contract import DOMAIN, domain_version
from .contract import check_model as check_contract
from .library import get_library_path

__all__ = [
    "DOMAIN", "ModelError", "check_metadata", "domain_version", "load_model", "make_session", "metadata",
    "tail_precision",
]


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


def metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


#: Largest upscaling factor a model's metadata may state (SR models are x2, x3, x4, x8).
MAX_SCALE = 16
#: Metadata values the runtime assumes when it feeds a model and reads its output.
_FIXED = {"scales_edge.input_range": "0,1", "scales_edge.color": "RGB", "scales_edge.layout": "NCHW"}


def check_metadata(model: onnx.ModelProto, where: str = "model") -> dict[str, str]:
    """The model's ``scales_edge.*`` metadata, checked: raise :class:`ModelError` (one line) for a
    value the runtime would misuse (a scale of -4 or "x4", an unknown tail precision, an input
    range, colour order or layout other than the one the runtime feeds, an op-domain version that
    disagrees with the model's import). Keys that are absent are not required here."""
    meta = metadata(model)

    def bad(key: str, want: str) -> ModelError:
        return ModelError(f"{where}: metadata {key} = {meta[key]!r} is invalid; it must be {want} (re-export the model)")

    scale = meta.get("scales_edge.scale")
    if scale is not None and not (scale.isdigit() and 1 <= int(scale) <= MAX_SCALE):
        raise bad("scales_edge.scale", f"a whole number from 1 to {MAX_SCALE}")
    channels = meta.get("scales_edge.channels")
    if channels and not (channels.isdigit() and int(channels) >= 1):
        raise bad("scales_edge.channels", "a whole number >= 1")
    if meta.get("scales_edge.tail", "fp32") not in ("fp32", "int8"):
        raise bad("scales_edge.tail", "fp32 or int8")
    for key, value in _FIXED.items():
        if key in meta and meta[key] != value:
            raise bad(key, repr(value))
    stated = meta.get("scales_edge.op_domain_version")
    if stated is not None:
        imported = domain_version(model)
        if not stated.isdigit() or (imported is not None and int(stated) != imported):
            raise bad("scales_edge.op_domain_version", f"the version the model imports ({imported})")
    return meta


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
    mem_pattern: bool = False,
):
    """An ``onnxruntime.InferenceSession`` with our op library registered.

    ``threads`` sets ORT's intra-op thread count (None: ORT's default, all cores); ``providers``
    defaults to the CPU provider; ``optimization`` is ``all``, ``extended``, ``basic`` or ``disable``;
    ``profile`` is a file prefix to enable ORT profiling; ``optimized_model`` is a path where ORT
    writes the graph it runs (after its optimizations, with the node names its profile uses);
    ``spin=False`` stops the intra-op threads from busy-waiting after each run (ORT's default is to
    spin), which matters when several sessions take turns on the same cores.

    ``mem_pattern`` turns on ORT's memory pattern (its default; off here): from the second run at
    an input shape ORT places the intermediate tensors in one pre-planned block, beside what its
    arena already holds from the first run; an SR model's intermediates are a few large HR maps,
    so that raises the peak by several of them. Measured,
    1 thread, 320x180 input (x4, 40 channels): peak RSS 865 -> 543 MB (paper-scope SCALES SRResNet),
    897 -> 588 MB (the body-scope demo model), with no measurable change in latency.
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
    so.enable_mem_pattern = mem_pattern
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
    if isinstance(model, (onnx.ModelProto, bytes, bytearray)):
        source: str | bytes = proto.SerializeToString()
    else:
        source = str(model)
    # ORT itself compares neither a custom domain's version nor a custom op's attribute names
    # with anything (runtime/contract.py).
    where = source if isinstance(source, str) else "the model"
    check_contract(proto, where)
    check_metadata(proto, where)
    try:
        return ort.InferenceSession(source, so, providers=list(providers or ["CPUExecutionProvider"]))
    except Exception as exc:
        name = source if isinstance(source, str) else "model"
        raise ModelError(f"{name}: ONNX Runtime cannot load it: {exc}") from None

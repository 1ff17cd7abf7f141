"""PyTorch → ONNX with the binary layers as ``scales_edge`` custom-domain ops.

How: every binary layer's *core* (see :mod:`scales_edge.nn.layers`) is swapped, for the duration of
the export, for an ``autograd.Function`` whose ``forward`` computes the exact inference formula and
whose ``symbolic`` emits ``scales_edge::BinaryConv2d`` / ``BinaryLinear`` with the bit-packed weights.
The TorchScript exporter (``dynamo=False``) writes the packed weights as int64 initializers; a final
pass re-types them as ``uint64`` (the same bits), as docs/ops.md requires.

With ``fuse=True`` (the default) a whole SCALES convolution (:class:`ScalesConv2d`: binary core,
spatial and channel re-scaling, skip) becomes one ``scales_edge::ScalesConv2d`` (op-domain
version 2), which reads its input once and applies the re-scalings as it stores its output; an
upsampling one (``upscale`` r > 1: conv, pixel shuffle, repeated-input skip) becomes one
``ScalesConv2d`` with ``pixel_shuffle = r`` (version 3), which stores its output shuffled. In a
window-attention Transformer (SwinIR, HAT; version 3) each binary linear becomes one
``ScalesLinear`` (core, spatial re-scaling, and the GELU or residual add its block applies right
after it), and the attention between ``qkv`` and ``proj`` of every block, binary or full
precision, one ``WindowAttention`` that forms the (shifted) windows by indexing.
``fuse=False`` writes ``BinaryConv2d`` / ``BinaryLinear`` with the rest as standard ops (version 1,
readable by older op libraries). Everything else (head, tail, other layers) is standard ONNX.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from typing import Any, Iterator, Sequence

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import Tensor, nn

from ..errors import ConfigError
from ..fileio import atomic_path
from ..nn import BinaryConv2dBase, ScalesConv2d, binary_layers
from ..runtime.contract import DOMAIN, OPS, node_version
from ..runtime.tileplan import PLAN_KEY, plan_metadata
from .packing import pack_conv_weight, pack_linear_weight
from .symbolic import (  # noqa: F401 (ExportError is this module's too)
    ExportError,
    _as_int64_bits,
    _BinaryConv2dFn,
    _BinaryLinearFn,
    _branch_args,
    _linear_branch_args,
    _norm_args,
    _ScalesConv2dFn,
    _ScalesLinearFn,
    _WindowAttentionFn,
)
from .quantize import TAILS, quantize_head_tail

#: The newest op-domain version this exporter writes (docs/ops.md); a model imports the lowest
#: version that has every op and attribute it uses (runtime/contract.py): 1 without the fused ops,
#: 2 with ScalesConv2d, 3 with an upsampling ScalesConv2d, ScalesLinear or WindowAttention.
DOMAIN_VERSION = 3
FUSED_SINCE_VERSION = 2
SHUFFLED_SINCE_VERSION = 3
DEFAULT_OPSET = 17
#: Opsets of the standard ops the export writes: from the oldest every architecture of the zoo
#: exports at (tested), to the newest torch's TorchScript exporter writes (max_opset()).
MIN_OPSET = 11


def max_opset() -> int:
    """The newest ONNX opset torch's TorchScript exporter (``dynamo=False``) writes."""
    from torch.onnx import _constants

    return int(getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", 20))


def _window_attention_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    from ..models.transformer_common import WindowAttention

    return [(name, m) for name, m in model.named_modules() if isinstance(m, WindowAttention)]


@contextlib.contextmanager
def custom_op_cores(model: nn.Module, fuse: bool = False, fuse_transformer: bool = False) -> Iterator[list[str]]:
    """Within the block, the model's binary cores run through the custom-op Functions; with
    ``fuse``, each :class:`ScalesConv2d` runs whole through the ``ScalesConv2d`` Function; with
    ``fuse_transformer``, each binary linear runs whole, with the epilogue its caller asks for,
    through the ``ScalesLinear`` Function and each window attention through ``WindowAttention``.

    Yields a list that receives the qualified name of each binary layer (and attention module) as
    it runs, in execution order (the order of the ops in the traced graph).
    """
    layers = binary_layers(model)
    attentions = _window_attention_modules(model) if fuse_transformer else []
    called: list[str] = []
    fused: list[nn.Module] = []
    try:
        for name, module in attentions:

            def attend(mod, qkv, shift, index, name=name):
                called.append(name)
                return _WindowAttentionFn.apply(
                    qkv, mod.relative_position_bias_table.detach(), index, mod.num_heads, mod.window_size,
                    int(shift), mod.key_window_size, float(mod.scale), mod.dim,
                )

            module.attention_override = attend
        for name, layer in layers:
            p = layer.core_params()
            wsign = p.weight_sign.float()
            bias = p.bias if p.bias is not None else torch.zeros_like(p.scale)
            if isinstance(layer, BinaryConv2dBase):
                packed = _as_int64_bits(pack_conv_weight(wsign.numpy()))
                geometry = (layer.kernel_size, layer.stride, layer.padding, layer.dilation)
                if fuse and isinstance(layer, ScalesConv2d):
                    sw, sb, cw, skip, from_output, r = _branch_args(layer)
                    args = (p.beta, packed, p.scale, bias, sw, sb, cw, wsign, *geometry, skip, from_output, r)

                    def whole(x, args=args, name=name):
                        called.append(name)
                        return _ScalesConv2dFn.apply(x, *args)

                    layer.forward = whole  # an instance attribute shadows the class's forward
                    fused.append(layer)
                    continue
                fn = _BinaryConv2dFn
                args = (p.beta, packed, p.scale, bias, wsign, *geometry)
            else:
                packed = _as_int64_bits(pack_linear_weight(wsign.numpy()))
                if fuse_transformer and not getattr(layer, "skip", False):
                    sw, sb = _linear_branch_args(layer)
                    args = (p.beta, packed, p.scale, bias, sw, sb, wsign)

                    def whole_linear(x, activation=None, residual=None, norm=None, args=args, name=name):
                        called.append(name)
                        nw, nb, eps = _norm_args(norm)
                        return _ScalesLinearFn.apply(x, residual, nw, nb, eps, *args, activation or "none")

                    layer.forward = whole_linear
                    layer.takes_norm = True
                    fused.append(layer)
                    continue
                fn = _BinaryLinearFn
                args = (p.beta, packed, p.scale, bias, wsign)

            def override(_layer, x, fn=fn, args=args, name=name):
                called.append(name)
                return fn.apply(x, *args)

            layer.core_override = override
        yield called
    finally:
        for _, layer in layers:
            layer.core_override = None
        for layer in fused:
            del layer.forward
            layer.__dict__.pop("takes_norm", None)
        for _, module in attentions:
            module.attention_override = None


def _constants_to_initializers(model: onnx.ModelProto) -> None:
    """Store ``Constant`` tensors as graph initializers (how weights usually travel in ONNX)."""
    keep = []
    names = {t.name for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            tensor = onnx.TensorProto()
            tensor.CopyFrom(node.attribute[0].t)
            tensor.name = node.output[0]
            if tensor.name not in names:
                model.graph.initializer.append(tensor)
                names.add(tensor.name)
                continue
        keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)


INPUT_ROLES = ("beta", "packed_weight", "scale", "bias", "spatial_weight", "spatial_bias", "channel_weight")
#: Roles of the constant inputs (from input 1 on) of each op; ScalesLinear's input 7 (residual) is a
#: graph tensor.
_CONSTANT_ROLES = {
    # input 7 (residual) is a graph tensor, or absent
    "ScalesLinear": INPUT_ROLES[:6] + (None, "norm_weight", "norm_bias"),
    "WindowAttention": ("relative_position_bias_table", "relative_position_index"),  # the modules' names
}
#: First input position that is an optional constant (an empty one is dropped).
_FIRST_OPTIONAL = {"WindowAttention": 99}


def _finish_binary_nodes(model: onnx.ModelProto, layer_names: list[str]) -> None:
    """Name our nodes after their PyTorch layers (or attention modules), their constants
    ``<layer>.<role>``, and store the packed weights as ``uint64`` (the exporter wrote the same
    bits as int64)."""
    nodes = [n for n in model.graph.node if n.domain == DOMAIN]
    if len(nodes) != len(layer_names):
        raise ExportError(f"{len(layer_names)} binary layers ran but the graph has {len(nodes)} binary ops")
    inits = {t.name: t for t in model.graph.initializer}
    consumers: dict[str, int] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers[i] = consumers.get(i, 0) + 1
    for node, layer in zip(nodes, layer_names):
        node.name = layer
        roles = _CONSTANT_ROLES.get(node.op_type, INPUT_ROLES)
        first_optional = _FIRST_OPTIONAL.get(node.op_type, 5)
        for pos, role in enumerate(roles[: len(node.input) - 1], start=1):
            old = node.input[pos]
            if role is None:  # a graph tensor (or an omitted input)
                if old in inits and 0 in inits[old].dims:
                    node.input[pos] = ""
                continue
            if old not in inits:
                raise ExportError(f"input {role} of {layer} is not a constant")
            tensor = inits[old]
            if pos >= first_optional and 0 in tensor.dims:  # an absent branch: an omitted optional input
                node.input[pos] = ""
                continue
            if role == "packed_weight":
                arr = numpy_helper.to_array(tensor)
                if arr.dtype != np.int64:
                    raise ExportError(f"packed weights of {layer} have type {arr.dtype}, expected int64 bits")
                tensor.CopyFrom(numpy_helper.from_array(arr.view(np.uint64), old))
            if consumers.get(old, 0) == 1:
                new = f"{layer}.{role}"
                tensor.name = new
                node.input[pos] = new
        while len(node.input) > 5 and node.input[-1] == "":
            node.input.pop()


BINARY_AS = ("custom", "fp32-reference")


def _receptive_radius(cfg: dict) -> float | None:
    """The zoo's receptive-field radius for this configuration (window-attention models), or None."""
    from ..errors import ConfigError
    from ..models import get_arch

    try:
        fn = get_arch(str(cfg.get("arch", ""))).receptive_radius
        return None if fn is None else float(fn(cfg))
    except (ConfigError, KeyError, TypeError, ValueError):
        return None


def model_metadata(model: nn.Module, binary_as: str = "custom", domain_version: int = 1) -> dict[str, str]:
    from .. import __version__

    cfg = dict(getattr(model, "config", {}) or {})
    meta = {
        "scales_edge.version": __version__,
        "scales_edge.arch": str(cfg.get("arch", type(model).__name__)),
        "scales_edge.scale": str(cfg.get("scale", getattr(model, "scale", ""))),
        "scales_edge.channels": str(cfg.get("num_feat", cfg.get("embed_dim", ""))),
        "scales_edge.binary": str(cfg.get("binary", "")),
        "scales_edge.binary_as": binary_as,
        "scales_edge.input_range": "0,1",
        "scales_edge.color": "RGB",
        "scales_edge.layout": "NCHW",
        "scales_edge.config": json.dumps(cfg, sort_keys=True),
    }
    # a part of a model (one layer, in benchmarks and tests) has no scale: the key is left out
    # rather than written empty, which the runtime's metadata check refuses
    if meta["scales_edge.scale"] == "":
        del meta["scales_edge.scale"]
    radius = _receptive_radius(cfg)
    if radius is not None:  # window-attention models: what tiling needs (runtime.tiling.window_radius)
        meta["scales_edge.receptive_radius"] = repr(radius)
    if binary_as == "custom":
        meta["scales_edge.op_domain"] = DOMAIN
        meta["scales_edge.op_domain_version"] = str(domain_version)
    return meta


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    simplify: bool = True,
    opset: int = DEFAULT_OPSET,
    sample_size: tuple[int, int] = (32, 32),
    custom_lib: str | None = None,
    binary_as: str = "custom",
    fuse: bool = True,
    tail: str = "fp32",
    calib: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
) -> onnx.ModelProto:
    """Export ``model`` (eval mode is forced) to ``path``; returns the saved ModelProto.

    The input ``input`` is ``float32 [N, C, H, W]`` on [0, 1] with dynamic N, H and W; the output
    ``output`` is ``[N, C, H*scale, W*scale]``.

    ``binary_as="custom"`` writes the binary cores as ``scales_edge`` ops with packed weights;
    ``"fp32-reference"`` writes the same math with standard ops only (threshold, ``Where`` to ±1, an
    FP32 ``Conv``/``MatMul`` with ±1 weights, scale, bias): the baseline that measures what the
    binary kernels buy on an identical computation.

    ``fuse`` (custom only) writes each SCALES convolution as one ``ScalesConv2d`` (op-domain
    version 2); ``fuse=False`` keeps ``BinaryConv2d`` plus standard ops for its branches (version 1).

    ``tail="int8"`` quantizes the FP head and tail (the convolutions before the first and after the
    last binary layer) with ONNX Runtime static quantization (QDQ, per-channel int8 weights, uint8
    activations) calibrated on photos: ``calib`` (a folder or a list of images) or the packaged
    ones; the body is unchanged (:mod:`scales_edge.export.quantize`). ``"fp32"`` keeps them FP32.
    """
    if binary_as not in BINARY_AS:
        raise ExportError(f"binary_as must be one of {', '.join(BINARY_AS)}, not {binary_as!r}")
    if tail not in TAILS:
        raise ExportError(f"tail must be one of {', '.join(TAILS)}, not {tail!r}")
    if calib is not None and tail != "int8":
        raise ExportError("calibration photos are for tail='int8' (--tail int8); an FP32 tail needs none")
    if not MIN_OPSET <= opset <= max_opset():
        raise ExportError(
            f"ONNX opset {opset} is not supported: the export writes opsets {MIN_OPSET} to {max_opset()} "
            f"(default {DEFAULT_OPSET})"
        )
    model = model.eval()
    in_ch = _input_channels(model)
    x = torch.rand(1, in_ch, *sample_size)
    buf = io.BytesIO()
    fused = fuse and binary_as == "custom" and any(isinstance(m, ScalesConv2d) for _, m in binary_layers(model))
    # Transformers: fused linears and attention, also for the full-precision model (its attention).
    fuse_tf = fuse and binary_as == "custom" and bool(_window_attention_modules(model))
    cores = (
        custom_op_cores(model, fuse=fused, fuse_transformer=fuse_tf)
        if binary_as == "custom"
        else contextlib.nullcontext(None)
    )
    # A fused layer exported on its own is traced inside a wrapper: as the top-level module its
    # replaced forward would be traced with every argument as a graph input.
    traced = _Wrapper(model) if fused and isinstance(model, ScalesConv2d) else model
    with cores as called, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            traced,
            (x,),
            buf,
            dynamo=False,
            opset_version=opset,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch", 2: "out_height", 3: "out_width"}},
            custom_opsets={DOMAIN: DOMAIN_VERSION} if called else None,
            do_constant_folding=True,
        )
    proto = onnx.load_from_string(buf.getvalue())
    _constants_to_initializers(proto)
    version = 1
    if called is not None:
        _finish_binary_nodes(proto, called)
        version = needed_domain_version(proto)
        # The TorchScript exporter does not always apply custom_opsets' version: set it here.
        for imp in proto.opset_import:
            if imp.domain == DOMAIN:
                imp.version = version
    if simplify:
        proto = _simplify(proto, custom_lib)
        _constants_to_initializers(proto)
    meta = {"scales_edge.tail": tail}
    if tail == "int8":
        proto, quant = quantize_head_tail(proto, model, calib, custom_ops=called is not None)
        meta["scales_edge.quantization"] = json.dumps(quant, sort_keys=True)
    # onnxsim records its run in metadata; keep only ours.
    del proto.metadata_props[:]
    for key, value in {**model_metadata(model, binary_as, version), **meta}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    # The graphs a tiled run executes, for the native runner (runtime/tileplan.py); read from the
    # final graph and metadata (scale, configuration), so it comes last.
    plan = plan_metadata(proto)
    if plan is not None:
        entry = proto.metadata_props.add()
        entry.key, entry.value = PLAN_KEY, plan
    proto.producer_name = "scales-edge"
    onnx.checker.check_model(proto)
    # a temporary file beside `path`, renamed over it once complete: an interrupted export leaves
    # the previous file (or none), never half a model
    with atomic_path(path) as tmp:
        onnx.save(proto, tmp)
    return proto


def export_domain_version(model: nn.Module, fuse: bool = True) -> int | None:
    """The op-domain version an export of ``model`` imports (``binary_as="custom"``): 3 with window
    attention (fused: ``WindowAttention``, and ``ScalesLinear`` for its binary linears, also in an
    FP Transformer) or an upsampling ScalesConv2d (fused), 2 with another ScalesConv2d (fused), 1
    with binary layers only; None without any ``scales_edge`` op."""
    if fuse and _window_attention_modules(model):
        return OPS["WindowAttention"].since
    layers = [m for _, m in binary_layers(model)]
    if not layers:
        return None
    scales = [m for m in layers if isinstance(m, ScalesConv2d)]
    if not (fuse and scales):
        return 1
    return SHUFFLED_SINCE_VERSION if any(m.upscale > 1 for m in scales) else FUSED_SINCE_VERSION


def needed_domain_version(proto: onnx.ModelProto) -> int:
    """The lowest op-domain version that has every ``scales_edge`` op and attribute of ``proto`` (1
    if none)."""
    nodes = [n for n in proto.graph.node if n.domain == DOMAIN]
    unknown = {n.op_type for n in nodes} - set(OPS)
    if unknown:
        raise ExportError(f"unknown {DOMAIN} op(s) {sorted(unknown)}")
    return max((node_version(n) for n in nodes), default=1)


class _Wrapper(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(x)


def _input_channels(model: nn.Module) -> int:
    cfg = getattr(model, "config", None) or {}
    if "num_in_ch" in cfg:
        return int(cfg["num_in_ch"])
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    raise ConfigError("cannot tell the model's input channels")


def _simplify(proto: onnx.ModelProto, custom_lib: str | None) -> onnx.ModelProto:
    import onnxsim

    if custom_lib is None:
        from ..runtime.library import find_library

        custom_lib = find_library(required=False)
    kwargs: dict[str, Any] = {}
    if custom_lib:
        kwargs["custom_lib"] = custom_lib
    else:
        kwargs["check_n"] = 0  # without the op library onnxsim cannot run the model to check it
    simplified, ok = onnxsim.simplify(proto, **kwargs)
    if not ok:
        raise ExportError("onnxsim could not validate the simplified model")
    return simplified

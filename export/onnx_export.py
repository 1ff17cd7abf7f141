"""PyTorch → ONNX with the binary layers as ``scales_edge`` custom-domain ops.

How: every binary layer's *core* (see :mod:`scales_edge.nn.layers`) is swapped, for the duration of
the export, for an ``autograd.Function`` whose ``forward`` computes the exact inference formula and
whose ``symbolic`` emits ``scales_edge::BinaryConv2d`` / ``BinaryLinear`` with the bit-packed weights.
The TorchScript exporter (``dynamo=False``) writes the packed weights as int64 initializers; a final
pass re-types them as ``uint64`` (the same bits), as docs/ops.md requires. Everything else (head,
tail, re-scaling branches, skips) is standard ONNX.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import Tensor, nn

from ..errors import ConfigError, ScalesEdgeError
from ..nn import BinaryConv2dBase, binary_layers, sign_pm1
from .packing import pack_conv_weight, pack_linear_weight

DOMAIN = "scales_edge"
DOMAIN_VERSION = 1
DEFAULT_OPSET = 17


class ExportError(ScalesEdgeError):
    """The model cannot be exported as asked."""


def _out_size(size: int | None, k: int, s: int, p0: int, p1: int, d: int) -> int | None:
    if size is None:
        return None
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


class _BinaryConv2dFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, beta, packed, scale, bias, wsign, k, stride, pad, dil):  # type: ignore[override]
        xs = sign_pm1(x - beta.view(1, -1, 1, 1))
        y = F.conv2d(xs, wsign, None, stride, pad, dil)
        return y * scale.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)

    @staticmethod
    def symbolic(g, x, beta, packed, scale, bias, wsign, k, stride, pad, dil):
        y = g.op(
            f"{DOMAIN}::BinaryConv2d",
            x,
            beta,
            packed,
            scale,
            bias,
            kernel_shape_i=[k, k],
            strides_i=[stride, stride],
            pads_i=[pad, pad, pad, pad],
            dilations_i=[dil, dil],
            group_i=1,
        )
        sizes = x.type().varyingSizes() if x.type().kind() == "TensorType" else None
        m = int(wsign.type().sizes()[0]) if wsign.type().sizes() else None
        if sizes is not None and len(sizes) == 4:
            oh = _out_size(sizes[2], k, stride, pad, pad, dil)
            ow = _out_size(sizes[3], k, stride, pad, pad, dil)
            y.setType(x.type().with_sizes([sizes[0], m, oh, ow]))
        return y


class _BinaryLinearFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, beta, packed, scale, bias, wsign):  # type: ignore[override]
        return F.linear(sign_pm1(x - beta), wsign) * scale + bias

    @staticmethod
    def symbolic(g, x, beta, packed, scale, bias, wsign):
        y = g.op(f"{DOMAIN}::BinaryLinear", x, beta, packed, scale, bias)
        sizes = x.type().varyingSizes() if x.type().kind() == "TensorType" else None
        m = int(wsign.type().sizes()[0]) if wsign.type().sizes() else None
        if sizes is not None:
            y.setType(x.type().with_sizes(list(sizes[:-1]) + [m]))
        return y


def _as_int64_bits(packed: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(packed).view(np.int64).copy())


@contextlib.contextmanager
def custom_op_cores(model: nn.Module) -> Iterator[list[str]]:
    """Within the block, the model's binary cores run through the custom-op Functions.

    Yields a list that receives the qualified name of each binary layer as its core runs, in
    execution order (the order of the ops in the traced graph).
    """
    layers = binary_layers(model)
    called: list[str] = []
    try:
        for name, layer in layers:
            p = layer.core_params()
            wsign = p.weight_sign.float()
            bias = p.bias if p.bias is not None else torch.zeros_like(p.scale)
            if isinstance(layer, BinaryConv2dBase):
                packed = _as_int64_bits(pack_conv_weight(wsign.numpy()))
                fn = _BinaryConv2dFn
                args = (p.beta, packed, p.scale, bias, wsign, layer.kernel_size, layer.stride, layer.padding, layer.dilation)
            else:
                packed = _as_int64_bits(pack_linear_weight(wsign.numpy()))
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


INPUT_ROLES = ("beta", "packed_weight", "scale", "bias")


def _finish_binary_nodes(model: onnx.ModelProto, layer_names: list[str]) -> None:
    """Name our nodes after their PyTorch layers, their constants ``<layer>.<role>``, and store the
    packed weights as ``uint64`` (the exporter wrote the same bits as int64)."""
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
        for pos, role in enumerate(INPUT_ROLES, start=1):
            old = node.input[pos]
            if old not in inits:
                raise ExportError(f"input {role} of {layer} is not a constant")
            tensor = inits[old]
            if pos == 2:
                arr = numpy_helper.to_array(tensor)
                if arr.dtype != np.int64:
                    raise ExportError(f"packed weights of {layer} have type {arr.dtype}, expected int64 bits")
                tensor.CopyFrom(numpy_helper.from_array(arr.view(np.uint64), old))
            if consumers.get(old, 0) == 1:
                new = f"{layer}.{role}"
                tensor.name = new
                node.input[pos] = new


BINARY_AS = ("custom", "fp32-reference")


def model_metadata(model: nn.Module, binary_as: str = "custom") -> dict[str, str]:
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
    if binary_as == "custom":
        meta["scales_edge.op_domain"] = DOMAIN
        meta["scales_edge.op_domain_version"] = str(DOMAIN_VERSION)
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
) -> onnx.ModelProto:
    """Export ``model`` (eval mode is forced) to ``path``; returns the saved ModelProto.

    The input ``input`` is ``float32 [N, C, H, W]`` on [0, 1] with dynamic N, H and W; the output
    ``output`` is ``[N, C, H*scale, W*scale]``.

    ``binary_as="custom"`` writes the binary cores as ``scales_edge`` ops with packed weights;
    ``"fp32-reference"`` writes the same math with standard ops only (threshold, ``Where`` to ±1, an
    FP32 ``Conv``/``MatMul`` with ±1 weights, scale, bias): the baseline that measures what the
    binary kernels buy on an identical computation.
    """
    if binary_as not in BINARY_AS:
        raise ExportError(f"binary_as must be one of {', '.join(BINARY_AS)}, not {binary_as!r}")
    model = model.eval()
    in_ch = _input_channels(model)
    x = torch.rand(1, in_ch, *sample_size)
    buf = io.BytesIO()
    cores = custom_op_cores(model) if binary_as == "custom" else contextlib.nullcontext(None)
    with cores as called, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
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
    if called is not None:
        _finish_binary_nodes(proto, called)
    if simplify:
        proto = _simplify(proto, custom_lib)
        _constants_to_initializers(proto)
    # onnxsim records its run in metadata; keep only ours.
    del proto.metadata_props[:]
    for key, value in model_metadata(model, binary_as).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "scales-edge"
    onnx.checker.check_model(proto)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, path)
    return proto


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

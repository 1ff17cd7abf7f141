"""What a model costs: parameters, bytes and operations, for an ONNX file or a PyTorch checkpoint.

Convention (the SCALES paper's "OPs", binary operations counted as 1/64 of a FP one)::

    OPs = FP MACs + binary MACs / 64

* **FP MACs**: multiply-accumulates of the full-precision ``Conv`` / ``ConvTranspose`` / ``Gemm`` /
  ``MatMul`` layers (``nn.Conv*`` / ``nn.Linear``), the SCALES re-scaling branches included
  (the 1x1 spatial conv and the channel Conv1d, also those of a fused ``ScalesConv2d``; a
  linear's C->1 spatial linear, also inside a fused ``ScalesLinear``), and a Transformer's
  attention products (``q @ kᵀ`` and ``attn @ v``, FP in every binarization, also inside a fused
  ``WindowAttention``: 2 x pixels x key-window tokens x C). One
  MAC counts as one operation, as the paper's tables count them (their FP SRResNet figure is a
  MAC count).
* **Binary MACs**: the XNOR/popcount multiply-accumulates of the binary convolutions / linears
  (``scales_edge::BinaryConv2d`` / ``ScalesConv2d`` / ``BinaryLinear`` / ``ScalesLinear``),
  ``OH*OW*M*C*kH*kW``; divided by 64. ``custom_ops`` counts these binary layers (a fused
  ``WindowAttention`` is a custom op too, but no binary layer).
* Not counted: element-wise work (activation thresholds, scaling, sigmoids, skips, pixel shuffle,
  the bilinear base, pooling), as in the paper.

``ops_binary_layers`` restricts the count to the binary layers and their FP branches (the paper's
ablation table counts only the binarized body, not the FP head and upsampling tail).

Parameters are counted in their deployed form: ``binary`` = one-bit weights of the binary layers;
``fp`` = the weights and biases of the FP convolutions, linears and normalisations, plus each binary
layer's threshold ``beta`` [C], ``scale`` [M] and ``bias`` [M] (alpha and a batch norm fold into
``scale``/``bias``). Other learned tensors (a transformer's position-bias tables) are not counted.
An INT8 head/tail (``export --tail int8``) counts the same weights, read through their
``DequantizeLinear``; ``int8_params`` says how many are stored in 8 bits (``weights_bytes`` counts
them as 1 byte each) and ``tail`` is ``"int8"`` or ``"fp32"``.
**Dead filters** are not counted: when a ``Conv``'s output goes (through nothing but per-tensor
``QuantizeLinear`` / ``DequantizeLinear``) into a ``Split`` on the channel axis, the channels of
the parts that no node and no graph output reads cannot change any output, so neither the filters
and biases that compute them nor their MACs count (:func:`_live_channels`). ``export --tail int8``
writes such filters: it pads a conv of fewer than 16 output channels (``conv_last``: 3) with zero
filters for ONNX Runtime's fast kernel and drops their channels again with a ``Split``
(``export.quantize._pad_narrow_convs``). This is read from the graph, not from the export's
metadata, so it holds for any graph, and what is counted is what can reach an output;
``bytes_on_disk`` does include them.
An ONNX file and the checkpoint it was exported from give the same counts (tested for the CNN
zoo, SwinIR-light and HAT-S, and for INT8 tails with padded convs). One exception: the exporter's
simplifier removes the ``Add`` of a bias that is all zeros (a freshly initialised linear), so such
an ``.onnx`` counts fewer FP parameters than its checkpoint; trained weights have no such biases.

A Transformer's ``.onnx`` computes its window layout from the input's shape at run time (padding to a
multiple of the window, the number of windows), which ONNX shape inference cannot follow past a
``Range``; :func:`onnx_info` then fixes the input to ``size`` and folds that shape arithmetic into
constants (:func:`_fold_shapes`), so every count is taken at the padded size, as PyTorch runs it.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ScalesEdgeError

__all__ = ["OPS_CONVENTION", "model_info", "onnx_info", "torch_info"]

OPS_CONVENTION = (
    "OPs = FP MACs + binary MACs / 64 (MACs of Conv/ConvTranspose/Gemm/MatMul, "
    "re-scaling branches included; element-wise ops, pooling and resizing not counted)"
)
DOMAIN = "scales_edge"
_FP_WEIGHT_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "PRelu", "BatchNormalization", "InstanceNormalization", "LayerNormalization"}


def _result(**kw: Any) -> dict[str, Any]:
    macs = kw.pop("macs")
    binary_ops = macs["binary"] / 64.0
    kw["ops"] = macs["fp"] + binary_ops
    kw["ops_binary_layers"] = macs["fp_in_binary_layers"] + binary_ops
    kw["macs"] = macs
    kw["ops_convention"] = OPS_CONVENTION
    p = kw["params"]
    p["total"] = p["binary"] + p["fp"]
    kw.setdefault("int8_params", 0)
    kw.setdefault("tail", "fp32")
    # FP parameters take 4 bytes, the INT8 head/tail's weights 1 (their int32 biases count as FP)
    kw["weights_bytes"] = int(math.ceil(p["binary"] / 8)) + 4 * p["fp"] - 3 * kw["int8_params"]
    order = [
        "model", "format", "arch", "scale", "channels", "binary", "binary_scope", "tail", "bytes_on_disk", "params",
        "int8_params",
        "weights_bytes",
        "input_size", "output_size", "ops", "ops_binary_layers", "macs", "ops_convention", "custom_ops",
        "op_domain", "op_domain_version",
    ]
    return {k: kw[k] for k in order if k in kw} | {k: v for k, v in kw.items() if k not in order}


def model_info(path: str | Path, size: tuple[int, int] = (180, 320), loader: Any = None) -> dict[str, Any]:
    """:func:`onnx_info` for ``.onnx`` files, :func:`torch_info` for anything else (``loader(path)``
    reads the checkpoint's model, :func:`scales_edge.checkpoints.load_checkpoint` by default)."""
    p = Path(path)
    if not p.exists():
        raise ScalesEdgeError(f"{p}: no such file; give an exported model (.onnx) or a checkpoint (.pth)")
    if not p.is_file():
        raise ScalesEdgeError(f"{p}: not a file; give an exported model (.onnx) or a checkpoint (.pth)")
    if p.suffix.lower() == ".onnx":
        return onnx_info(p, size)
    return torch_info(p, size, loader)


# ------------------------------------------------------------------------------------ ONNX


def _shape_proxy(proto, h: int, w: int):
    """A copy whose input is ``[1, C, h, w]`` and whose custom ops are replaced by standard ones of
    the same output shape (Conv / MatMul with weight *inputs* of the unpacked shape), so ONNX shape
    inference runs through the whole graph. Returns (model, {node index: (unpacked weight shape)})."""
    import onnx
    from onnx import helper

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    data_in = [i for i in g.input if i.name not in inits][0]
    dims = data_in.type.tensor_type.shape.dim
    channels = dims[1].dim_value if len(dims) > 1 and dims[1].dim_value else 3
    del data_in.type.tensor_type.shape.dim[:]
    for v in (1, channels, h, w):
        data_in.type.tensor_type.shape.dim.add().dim_value = v
    # Drop stale intermediate shapes (symbolic ones from the export) and the outputs' dims.
    del g.value_info[:]
    for o in g.output:
        for i, d in enumerate(o.type.tensor_type.shape.dim):
            d.Clear()
            d.dim_param = f"__out_{i}"
    unpacked: dict[int, tuple[int, ...]] = {}
    for idx, node in enumerate(g.node):
        if node.domain != DOMAIN:
            continue
        if node.op_type == "WindowAttention":  # [N, H, W, 3C] -> [N, H, W, C]: the first third
            parts = [node.output[0], f"__proxy_k_{idx}", f"__proxy_v_{idx}"]
            g.node[idx].CopyFrom(helper.make_node("Split", [node.input[0]], parts, name=node.name, axis=3))
            continue
        beta = inits.get(node.input[1])
        packed = inits.get(node.input[2])
        if beta is None or packed is None:
            raise ScalesEdgeError(f"custom op {node.name!r}: its threshold and packed weights are not constants")
        c = int(np.prod(beta.dims))
        m = int(packed.dims[0])
        wname = f"__proxy_w_{idx}"
        if node.op_type == "BinaryConv2d":
            k = [int(v) for v in helper.get_attribute_value(next(a for a in node.attribute if a.name == "kernel_shape"))]
            shape = (m, c, *k)
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            new = helper.make_node("Conv", [node.input[0], wname], list(node.output), name=node.name, **attrs)
        elif node.op_type == "BinaryLinear":
            shape = (c, m)
            new = helper.make_node("MatMul", [node.input[0], wname], list(node.output), name=node.name)
        else:
            raise ScalesEdgeError(
                f"unknown op {DOMAIN}::{node.op_type} (this release counts BinaryConv2d, BinaryLinear, "
                "WindowAttention and the fused ScalesConv2d, ScalesLinear)"
            )
        g.input.append(helper.make_tensor_value_info(wname, onnx.TensorProto.FLOAT, list(shape)))
        unpacked[idx] = (m, c) + tuple(shape[2:]) if node.op_type == "BinaryConv2d" else (m, c)
        g.node[idx].CopyFrom(new)
    keep = [o for o in model.opset_import if o.domain != DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    return model, unpacked


def _shapes(model) -> dict[str, list[int]]:
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:
        raise ScalesEdgeError(f"ONNX shape inference failed on this model: {str(exc).splitlines()[0]}") from None
    out: dict[str, list[int]] = {}
    g = inferred.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
            out[vi.name] = dims
    for t in g.initializer:
        out[t.name] = list(t.dims)
    return out


def onnx_info(path: str | Path, size: tuple[int, int] = (180, 320)) -> dict[str, Any]:
    """Cost of an ONNX model at input ``size`` = (H, W), counted from the graph (see module doc)."""
    import onnx

    from .runtime.contract import check_model
    from .runtime.session import check_metadata, load_model, tail_precision
    from .runtime.unfuse import has_fused, unfuse

    path = Path(path)
    proto = load_model(path)
    # the same contract the op library and every session hold the model to (runtime/contract.py)
    version = check_model(proto, str(path))
    meta = check_metadata(proto, str(path))
    # A fused ScalesConv2d (version 2), expanded into the version-1 ops it computes, shows its FP
    # branches (1x1 spatial conv, channel Conv1d) to the counting below like any other layer.
    proto = unfuse(proto) if has_fused(proto) else proto
    h, w = size
    proxy, unpacked = _shape_proxy(proto, h, w)
    shapes = _shapes(proxy)
    weighted = [n.output[0] for n in proto.graph.node if n.domain == DOMAIN or n.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul")]
    if any(min(shapes.get(o, [-1])) < 0 for o in weighted):
        # Shapes computed at run time (a Transformer pads to a multiple of its window and sizes
        # its windows from the input's shape; ONNX shape inference stops at the first Range):
        # fold the shape arithmetic of the proxy at this input size, then infer again.
        shapes = _shapes(_fold_shapes(proxy, h, w, path))
    inits = {t.name: t for t in proto.graph.initializer}
    float_types = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16

    def known(name: str) -> list[int]:
        s = shapes.get(name)
        if s is None or any(d < 0 for d in s):
            raise ScalesEdgeError(f"{path}: cannot tell the shape of {name!r} at input {w}x{h}")
        return s

    root = _view_roots(proto)
    gates = _gates(proto)
    producer_op = {o: n.op_type for n in proto.graph.node for o in n.output}
    binary_inputs = {root(n.input[0]) for n in proto.graph.node if n.domain == DOMAIN and n.op_type != "WindowAttention"}
    pooled = _pool_derived(proto)
    live = _live_channels(proto)
    fp = fp_branch = binary = 0
    p_bin = p_fp = p_int8 = 0  # counted per use (export may share identical constants between layers)
    dequantized = {
        n.output[0]: inits[n.input[0]] for n in proto.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits
    }
    for idx, node in enumerate(proto.graph.node):
        op = node.op_type
        if node.domain == DOMAIN and op == "WindowAttention":
            # q @ k^T and attn @ v of every head: per query pixel, key-window tokens x C each
            n, hh, ww, c = known(node.output[0])
            kws = next((a.i for a in node.attribute if a.name == "key_window_size"), 0) or next(
                a.i for a in node.attribute if a.name == "window_size"
            )
            fp += 2 * n * hh * ww * kws * kws * c
            continue
        if node.domain == DOMAIN:
            out = known(node.output[0])
            m, c = unpacked[idx][:2]
            k = int(np.prod(unpacked[idx][2:])) if len(unpacked[idx]) > 2 else 1
            binary += int(np.prod(out)) * c * k
            p_bin += m * c * k
            for name in list(node.input[1:2]) + list(node.input[3:5]):  # beta, scale, bias
                if name and name in inits:
                    p_fp += int(np.prod(inits[name].dims))
            continue
        if node.domain not in ("", "ai.onnx"):
            continue
        macs = 0
        rows, used = live.get(node.output[0], (1, 1))  # a conv with dead filters: the live ones count
        if op == "Conv":
            wt = known(node.input[1])
            out = known(node.output[0])
            macs = int(np.prod(out)) // rows * used * int(np.prod(wt[1:]))
        elif op == "ConvTranspose":
            wt = known(node.input[1])  # [C_in, C_out / group, k...]
            macs = int(np.prod(known(node.input[0]))) * int(np.prod(wt[1:]))
        elif op == "Gemm":
            a = known(node.input[0])
            out = known(node.output[0])
            trans_a = next((a_.i for a_ in node.attribute if a_.name == "transA"), 0)
            k = a[0] if trans_a else a[1]
            macs = int(np.prod(out)) * k
        elif op == "MatMul":
            a = known(node.input[0])
            out = known(node.output[0])
            macs = int(np.prod(out)) * a[-1]
        if macs:
            # a re-scaling branch: a gate (-> Sigmoid) computed from a binary op's input, or the
            # channel branch's Conv1d over pooled values (HAT's CAB convs read the same input as
            # the attention's qkv but are no gate)
            in_branch = (root(node.input[0]) in binary_inputs and gates(node.output[0])) or (
                op == "Conv" and len(known(node.input[1])) == 3 and node.input[0] in pooled
            )
            fp += macs
            if in_branch:
                fp_branch += macs
        if op == "Add" and any(producer_op.get(i) == "MatMul" for i in node.input):
            # the bias of a linear layer exported as MatMul + Add
            for name in node.input:
                t = inits.get(name)
                if t is not None and t.data_type in float_types and len(t.dims) == 1:
                    p_fp += int(t.dims[0])
        if op in _FP_WEIGHT_OPS:
            for name in node.input[1:]:
                t = inits.get(name)
                if t is not None and t.data_type in float_types:
                    p_fp += _live_count(t.dims, rows, used)
                elif name in dequantized:  # a quantized (INT8 head/tail) weight or its int32 bias
                    t = dequantized[name]
                    p_fp += _live_count(t.dims, rows, used)
                    if t.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8):
                        p_int8 += _live_count(t.dims, rows, used)
    out_shape = shapes.get(proto.graph.output[0].name) or [-1, -1, -1, -1]
    scale_meta = meta.get("scales_edge.scale")
    scale = int(scale_meta) if scale_meta and scale_meta.isdigit() else (
        out_shape[-1] // w if out_shape[-1] > 0 else None
    )
    channels = meta.get("scales_edge.channels")
    return _result(
        binary_scope=_onnx_scope(meta),
        model=str(path),
        format="onnx",
        arch=meta.get("scales_edge.arch", "unknown"),
        scale=scale,
        channels=int(channels) if channels and channels.isdigit() else None,
        binary=meta.get("scales_edge.binary") or ("none" if p_bin == 0 else "unknown"),
        bytes_on_disk=path.stat().st_size,
        params={"binary": p_bin, "fp": p_fp},
        int8_params=p_int8,
        tail=tail_precision(meta),
        input_size=[w, h],
        output_size=[out_shape[-1], out_shape[-2]] if len(out_shape) >= 2 else None,
        macs={"fp": fp, "fp_in_binary_layers": fp_branch, "binary": binary},
        custom_ops=sum(1 for n in proto.graph.node if n.domain == DOMAIN and n.op_type != "WindowAttention"),
        op_domain=DOMAIN,
        op_domain_version=version,
    )


def _onnx_scope(meta: dict[str, str]) -> str | None:
    """``binary_scope`` of the export's configuration; a CNN exported before the key existed
    (a config with ``num_feat`` and no such key) binarized its body only. None: not a CNN."""
    import json

    try:
        cfg = json.loads(meta.get("scales_edge.config") or "{}")
    except ValueError:
        return None
    if not isinstance(cfg, dict):
        return None
    return cfg.get("binary_scope") or ("body" if "num_feat" in cfg else None)


def _fold_shapes(proxy, h: int, w: int, path):
    """The proxy (:func:`_shape_proxy`: standard ops only, input ``[1, C, h, w]``) with everything
    that depends only on shapes folded into constants by onnxsim (it runs those nodes in ONNX
    Runtime), and no other rewriting: every tensor that is still computed keeps its name, so the
    shapes inferred on the result are the original graph's."""
    import onnxsim

    try:
        folded, _ = onnxsim.simplify(_splits_as_slices(proxy), check_n=0, perform_optimization=False)
    except Exception as exc:
        raise ScalesEdgeError(f"{path}: cannot compute the layer shapes at input {w}x{h}: {str(exc).splitlines()[0]}") from None
    return folded


def _splits_as_slices(proxy):
    """A copy of the proxy with each ``Split`` of constant sizes written as one ``Slice`` per part
    (same output names and shapes): onnxsim does not fold the shape of a ``Split``'s output (a
    ``Shape`` after it stays, and so does every shape computed from it), but does a ``Slice``'s.
    (The channel ``Split`` of a padded INT8 conv before a Transformer's window reshapes: see
    :func:`_live_channels`.)"""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(proxy)
    g = model.graph
    consts = {t.name: t for t in g.initializer}
    nodes = []
    for node in g.node:
        sizes = _split_sizes(node, consts, None) if node.op_type == "Split" else None
        if not sizes:
            nodes.append(node)
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        base = node.name or node.output[0]
        start = 0
        for k, (size, out) in enumerate(zip(sizes, node.output)):
            names = [f"{base}/slice_{k}_{what}" for what in ("starts", "ends", "axes")]
            for name, value in zip(names, (start, start + size, axis)):
                g.initializer.append(numpy_helper.from_array(np.array([value], np.int64), name))
            nodes.append(helper.make_node("Slice", [node.input[0], *names], [out], name=f"{base}/slice_{k}"))
            start += size
    del g.node[:]
    g.node.extend(nodes)
    return model


def _split_sizes(node, consts, rows: int | None) -> list[int] | None:
    """The part sizes of a ``Split`` node along its axis (``rows`` long, if the sizes are implicit)."""
    from onnx import helper, numpy_helper

    if len(node.input) > 1 and node.input[1]:
        if node.input[1] not in consts:
            return None
        return [int(v) for v in numpy_helper.to_array(consts[node.input[1]])]
    split = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "split"), None)
    if split is not None:
        return [int(v) for v in split]
    if rows is None:
        return None
    part = -(-rows // len(node.output))  # equal parts, the last one smaller
    return [min(part, rows - k * part) for k in range(len(node.output))]


def _live_count(dims, rows: int, used: int) -> int:
    """Elements of a tensor of shape ``dims``; if it has a row per output channel of a conv with
    ``rows`` channels of which ``used`` are read (:func:`_live_channels`), those of the used rows."""
    n = int(np.prod(dims))
    return n // rows * used if len(dims) and dims[0] == rows else n


def _live_channels(proto) -> dict[str, tuple[int, int]]:
    """{output of a ``Conv``: (its output channels, how many of them are read)} for each conv whose
    output goes, through nothing but per-tensor ``QuantizeLinear`` / ``DequantizeLinear`` (which
    act on each value alone), into a ``Split`` on the channel axis some of whose parts no node
    and no graph output reads: the channels of those parts are dead, and so are the filters that
    compute them. (``export --tail int8`` pads a conv with fewer than 16 output channels so with
    zero filters: ``export.quantize._pad_narrow_convs``.)"""
    g = proto.graph
    consts = {t.name: t for t in g.initializer}
    readers: dict[str, list[Any]] = {}
    for n in g.node:
        for t in n.input:
            readers.setdefault(t, []).append(n)
    outputs = {o.name for o in g.output}
    dequantized = {n.output[0]: n.input[0] for n in g.node if n.op_type == "DequantizeLinear"}

    def scalar(name: str) -> bool:
        return name in consts and not consts[name].dims

    found: dict[str, tuple[int, int]] = {}
    for conv in g.node:
        weight = consts.get(dequantized.get(conv.input[1], conv.input[1])) if conv.op_type == "Conv" else None
        if weight is None or not weight.dims:
            continue
        t = conv.output[0]
        node = None
        while t not in outputs and len(readers.get(t, [])) == 1:
            node = readers[t][0]
            if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or not scalar(node.input[1]):
                break
            t = node.output[0]
        if node is None or node.op_type != "Split" or node.input[0] != t:
            continue
        rows = int(weight.dims[0])
        if next((a.i for a in node.attribute if a.name == "axis"), 0) not in (1, 1 - len(weight.dims)):
            continue
        sizes = _split_sizes(node, consts, rows)
        if sizes is None or sum(sizes) != rows or len(sizes) != len(node.output):
            continue
        used = sum(size for size, o in zip(sizes, node.output) if o and (o in readers or o in outputs))
        if used < rows:
            found[conv.output[0]] = (rows, used)
    return found


_VIEW_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity"}


def _view_roots(proto):
    """``root(t)``: the tensor ``t`` is a reshaped / transposed view of (so a binary op's FP branch
    that reads ``root(x)`` reads the same activations as the binary op on ``x``)."""
    producer = {o: n for n in proto.graph.node for o in n.output}

    def root(name: str) -> str:
        seen = 0
        while name in producer and producer[name].op_type in _VIEW_OPS and seen < 64:
            name = producer[name].input[0]
            seen += 1
        return name

    return root


def _gates(proto):
    """``gates(t)``: the tensor ``t`` goes into a ``Sigmoid`` (through at most a bias ``Add`` and
    reshapes), as a SCALES spatial branch's product does."""
    consumers: dict[str, list[Any]] = {}
    for n in proto.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def gates(name: str, depth: int = 0) -> bool:
        for n in consumers.get(name, []):
            if n.op_type == "Sigmoid":
                return True
            if depth < 3 and (n.op_type == "Add" or n.op_type in _VIEW_OPS) and gates(n.output[0], depth + 1):
                return True
        return False

    return gates


def _pool_derived(proto) -> set[str]:
    """Tensors computed from a global average pool (per-image values, no spatial extent)."""
    from .runtime.tiling import _constants, _is_spatial_mean

    consts = _constants(proto)
    derived: set[str] = set()
    for node in proto.graph.node:
        if _is_spatial_mean(node, consts):
            derived.update(node.output)
        elif node.input and node.input[0] in derived:
            derived.update(node.output)
    return derived


# ------------------------------------------------------------------------------------ PyTorch


def torch_info(path: str | Path, size: tuple[int, int] = (180, 320), loader: Any = None) -> dict[str, Any]:
    """Cost of a checkpoint's model at input ``size`` = (H, W): shapes from a forward pass on
    PyTorch's ``meta`` device (no computation), counts as in :func:`onnx_info`."""
    from .checkpoints import load_checkpoint

    path = Path(path)
    model = (loader or load_checkpoint)(path)
    return module_info(model, size, model_path=path)


def module_info(model, size: tuple[int, int] = (180, 320), model_path: str | Path | None = None) -> dict[str, Any]:
    import torch
    from torch import nn

    from .export.onnx_export import export_domain_version
    from .nn import BinaryConv2dBase, BinaryLinearBase, binary_layers

    cfg = dict(getattr(model, "config", {}) or {})
    h, w = size
    layers = binary_layers(model)
    layer_names = {name for name, _ in layers}
    p_bin = p_fp = 0
    for name, layer in layers:
        p_bin += layer.weight.numel()
        m = layer.out_channels if isinstance(layer, BinaryConv2dBase) else layer.out_features
        c = layer.in_channels if isinstance(layer, BinaryConv2dBase) else layer.in_features
        p_fp += c + 2 * m  # beta, scale, bias as deployed
    for mod_name, mod in model.named_modules():
        if mod_name in layer_names:
            continue
        owner = next((ln for ln in layer_names if mod_name.startswith(ln + ".")), None)
        if owner is not None and isinstance(mod, nn.modules.batchnorm._BatchNorm):
            continue  # folded into the binary layer's scale and bias
        if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear, nn.PReLU, nn.modules.batchnorm._BatchNorm, nn.LayerNorm)):
            p_fp += sum(p.numel() for p in mod.parameters(recurse=False))

    meta_model = copy.deepcopy(model).eval().to("meta")
    in_ch = int(cfg.get("num_in_ch", 3))
    branch_prefixes = tuple(n + "." for n in layer_names)
    totals = {"fp": 0, "fp_in_binary_layers": 0, "binary": 0}
    hooks = []

    def branch_hook(mod, args, out):  # FP layers inside a binary layer (re-scaling branches)
        if isinstance(mod, nn.Linear):
            totals["fp_in_binary_layers"] += out.numel() * mod.in_features
        else:
            totals["fp_in_binary_layers"] += out.numel() * (mod.in_channels // mod.groups) * int(np.prod(mod.kernel_size))

    def binary_hook(mod, args, out):
        x = args[0]
        if isinstance(mod, BinaryConv2dBase):
            oh = (x.shape[2] + 2 * mod.padding - mod.dilation * (mod.kernel_size - 1) - 1) // mod.stride + 1
            ow = (x.shape[3] + 2 * mod.padding - mod.dilation * (mod.kernel_size - 1) - 1) // mod.stride + 1
            totals["binary"] += x.shape[0] * mod.out_channels * oh * ow * mod.in_channels * mod.kernel_size**2
        else:
            totals["binary"] += (x.numel() // mod.in_features) * mod.out_features * mod.in_features

    for name, mod in meta_model.named_modules():
        if isinstance(mod, (BinaryConv2dBase, BinaryLinearBase)):
            hooks.append(mod.register_forward_hook(binary_hook))
        elif name.startswith(branch_prefixes) and isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            hooks.append(mod.register_forward_hook(branch_hook))
    # Every matrix product and convolution (attention's too); the binary layers' cores run as
    # convolutions / products of +-1 values on the meta device and are taken out again below.
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            y = meta_model(torch.empty(1, in_ch, h, w, device="meta"))
    finally:
        for hk in hooks:
            hk.remove()
    totals["fp"] = counter.get_total_flops() // 2 - totals["binary"]
    scale = cfg.get("scale", getattr(model, "scale", None))
    return _result(
        model=str(model_path) if model_path is not None else None,
        format="pth",
        arch=cfg.get("arch", type(model).__name__),
        scale=int(scale) if scale is not None else None,
        channels=cfg.get("num_feat", cfg.get("embed_dim")),
        binary=cfg.get("binary", "unknown"),
        binary_scope=cfg.get("binary_scope"),
        bytes_on_disk=Path(model_path).stat().st_size if model_path is not None else None,
        params={"binary": p_bin, "fp": p_fp},
        input_size=[w, h],
        output_size=[int(y.shape[-1]), int(y.shape[-2])],
        macs=totals,
        custom_ops=len(layers),
        op_domain=DOMAIN,
        op_domain_version=export_domain_version(model),
    )

"""Rewrite the fused SCALES layers as version-1 ops: ``ScalesConv2d`` (op-domain versions 2 and 3)
as ``BinaryConv2d`` plus standard ops, ``ScalesLinear`` (version 3) as ``BinaryLinear`` plus
standard ops.

The result computes what the fused op computes (docs/ops.md), with the re-scaling branches as the
same standard ops the exporter writes with ``fuse=False`` (1x1 ``Conv`` + ``Sigmoid``;
``ReduceMean`` over H, W + ``Conv`` along the channels + ``Sigmoid``; ``Mul``; ``Add``; for a linear
``LayerNormalization``, ``MatMul`` + ``Add`` + ``Sigmoid``, the GELU as ``Erf`` and its arithmetic,
the residual ``Add``). Version 3's upsampling conv (``pixel_shuffle`` r) becomes
``BinaryConv2d → Mul S → DepthToSpace (CRD) → Mul Cs → Add``, its skip term the input upsampled by
a nearest ``Resize`` (``asymmetric``, ``floor``: each feature copied to its r x r pixels, the input
repeated r² times and shuffled).
Graph tools that need to see inside a SCALES layer use it: tiling (whose exactness rests on making
the channel means graph inputs; it only needs the convolutions expanded) and OP counting.
``WindowAttention`` (version 3) is no binary layer and stays; a graph that keeps it keeps version 3.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .contract import node_version

DOMAIN = "scales_edge"
FUSED_OP = "ScalesConv2d"
FUSED_LINEAR = "ScalesLinear"
#: The fused binary layers, by default all expanded.
FUSED_OPS = (FUSED_OP, FUSED_LINEAR)
_CONV_ATTRS = ("kernel_shape", "strides", "pads", "dilations", "group")


def has_fused(proto: onnx.ModelProto, ops: tuple[str, ...] = FUSED_OPS) -> bool:
    return any(n.domain == DOMAIN and n.op_type in ops for n in proto.graph.node)


def _opset(proto: onnx.ModelProto) -> int:
    return next((int(i.version) for i in proto.opset_import if i.domain in ("", "ai.onnx")), 17)


def unfuse(proto: onnx.ModelProto, ops: tuple[str, ...] = FUSED_OPS) -> onnx.ModelProto:
    """A copy of ``proto`` with every fused op of ``ops`` expanded (the domain version set to the
    lowest one the remaining ops need). Models without one are returned as an unchanged copy."""
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    if not has_fused(proto, ops):
        return out
    graph = out.graph
    inits = {t.name: t for t in graph.initializer}
    opset = _opset(proto)
    new_nodes: list[onnx.NodeProto] = []
    new_inits: list[onnx.TensorProto] = []
    added: set[str] = set()

    def const(name: str, values: np.ndarray) -> str:
        """An initializer shared by every expanded op."""
        if name not in added:
            new_inits.append(numpy_helper.from_array(values, name))
            added.add(name)
        return name

    def const_ints(name: str, values: list[int]) -> str:
        return const(name, np.array(values, np.int64))

    def const_floats(name: str, values: list[float]) -> str:
        return const(name, np.array(values, np.float32))

    def const_float(name: str, value: float) -> str:
        return const(name, np.array(value, np.float32))

    for node in graph.node:
        if node.domain == DOMAIN and node.op_type == FUSED_LINEAR and FUSED_LINEAR in ops:
            new_nodes += _expand_linear(node, inits, new_inits, const_float)
            continue
        if not (node.domain == DOMAIN and node.op_type == FUSED_OP and FUSED_OP in ops):
            new_nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        ins = list(node.input) + [""] * (8 - len(node.input))
        x, y = ins[0], node.output[0]
        base = (node.name or y) + "/unfused"
        conv_attrs = {k: attrs[k] for k in _CONV_ATTRS if k in attrs}
        core = f"{base}/core"
        new_nodes.append(helper.make_node("BinaryConv2d", [v for v in ins[:5]], [core], name=node.name or base,
                                          domain=DOMAIN, **conv_attrs))
        cur = core
        r = int(attrs.get("pixel_shuffle", 1))
        if ins[5]:
            sw = numpy_helper.to_array(inits[ins[5]])
            w4 = numpy_helper.from_array(sw.reshape(1, -1, 1, 1).astype(np.float32), f"{base}/spatial.weight")
            new_inits.append(w4)
            strides = attrs.get("strides", [1, 1])
            new_nodes += [
                helper.make_node("Conv", [x, w4.name, ins[6]], [f"{base}/spatial"], name=f"{base}/spatial/Conv",
                                 kernel_shape=[1, 1], strides=strides),
                helper.make_node("Sigmoid", [f"{base}/spatial"], [f"{base}/S"], name=f"{base}/Sigmoid"),
                helper.make_node("Mul", [cur, f"{base}/S"], [f"{base}/mul_S"], name=f"{base}/Mul"),
            ]
            cur = f"{base}/mul_S"
        if r > 1:
            new_nodes.append(helper.make_node("DepthToSpace", [cur], [f"{base}/shuffled"], name=f"{base}/DepthToSpace",
                                              blocksize=r, mode="CRD"))
            cur = f"{base}/shuffled"
        if ins[7]:
            cw = numpy_helper.to_array(inits[ins[7]])
            k = int(cw.size)
            w3 = numpy_helper.from_array(cw.reshape(1, 1, k).astype(np.float32), f"{base}/channel.weight")
            new_inits.append(w3)
            source = cur if attrs.get("channel_from_output", 0) else x
            if opset >= 18:
                mean = helper.make_node("ReduceMean", [source, const_ints("unfused/axes_hw", [2, 3])], [f"{base}/mean"],
                                        name=f"{base}/ReduceMean", keepdims=0)
            else:
                mean = helper.make_node("ReduceMean", [source], [f"{base}/mean"], name=f"{base}/ReduceMean",
                                        axes=[2, 3], keepdims=0)
            ax1 = const_ints("unfused/axis_1", [1])
            new_nodes += [
                mean,
                helper.make_node("Unsqueeze", [f"{base}/mean", ax1], [f"{base}/mean3"], name=f"{base}/Unsqueeze"),
                helper.make_node("Conv", [f"{base}/mean3", w3.name], [f"{base}/channel"], name=f"{base}/channel/Conv",
                                 kernel_shape=[k], pads=[k // 2, k // 2]),
                helper.make_node("Sigmoid", [f"{base}/channel"], [f"{base}/Cs3"], name=f"{base}/Sigmoid_1"),
                helper.make_node("Squeeze", [f"{base}/Cs3", ax1], [f"{base}/Cs2"], name=f"{base}/Squeeze"),
                helper.make_node("Unsqueeze", [f"{base}/Cs2", const_ints("unfused/axes_hw", [2, 3])], [f"{base}/Cs"],
                                 name=f"{base}/Unsqueeze_1"),
                helper.make_node("Mul", [cur, f"{base}/Cs"], [f"{base}/mul_Cs"], name=f"{base}/Mul_1"),
            ]
            cur = f"{base}/mul_Cs"
        if attrs.get("skip", 0):
            identity = x
            if r > 1:
                identity = f"{base}/repeated"
                roi = "" if opset >= 13 else const_floats("unfused/empty_roi", [])
                new_nodes.append(helper.make_node(
                    "Resize", [x, roi, const_floats(f"unfused/scales_x{r}", [1, 1, r, r])], [identity],
                    name=f"{base}/Resize", mode="nearest", coordinate_transformation_mode="asymmetric",
                    nearest_mode="floor"))
            new_nodes.append(helper.make_node("Add", [cur, identity], [f"{base}/skip"], name=f"{base}/Add"))
            cur = f"{base}/skip"
        # The last node writes the op's output name.
        last = new_nodes[-1]
        for i, o in enumerate(last.output):
            if o == cur:
                last.output[i] = y
    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(new_inits)
    # Drop the fused op's now unused 1-D branch weights.
    used = {i for n in graph.node for i in n.input}
    keep = [t for t in graph.initializer if t.name in used or t.name in {i.name for i in graph.input}]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    version = max((node_version(n) for n in graph.node if n.domain == DOMAIN), default=1)
    for imp in out.opset_import:
        if imp.domain == DOMAIN:
            imp.version = version
    for p in out.metadata_props:
        if p.key == "scales_edge.op_domain_version":
            p.value = str(version)
    return out


def _expand_linear(node: onnx.NodeProto, inits: dict, new_inits: list, const_float) -> list[onnx.NodeProto]:
    """``ScalesLinear`` as ``BinaryLinear`` + the standard ops of its prologue, branch and
    epilogue: ``X' = LayerNormalization(X)``, ``Y = act(core(X') * Sigmoid(MatMul(X', w) + b)) + R``
    (docs/ops.md)."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    act = attrs.get("activation", b"none")
    act = act.decode() if isinstance(act, bytes) else act
    ins = list(node.input) + [""] * (10 - len(node.input))
    x, y = ins[0], node.output[0]
    base = (node.name or y) + "/unfused"
    nodes = []
    if ins[8]:
        nodes.append(helper.make_node("LayerNormalization", [x, ins[8], ins[9]], [f"{base}/normed"],
                                      name=f"{base}/norm/LayerNormalization", axis=-1,
                                      epsilon=float(attrs.get("norm_epsilon", 1e-5))))
        x = f"{base}/normed"
    core = f"{base}/core"
    nodes.append(helper.make_node("BinaryLinear", [x] + ins[1:5], [core], name=node.name or base, domain=DOMAIN))
    cur = core
    if ins[5]:
        sw = numpy_helper.to_array(inits[ins[5]])
        w2 = numpy_helper.from_array(sw.reshape(-1, 1).astype(np.float32), f"{base}/spatial.weight")
        new_inits.append(w2)
        nodes += [
            helper.make_node("MatMul", [x, w2.name], [f"{base}/spatial_mm"], name=f"{base}/spatial/MatMul"),
            helper.make_node("Add", [f"{base}/spatial_mm", ins[6]], [f"{base}/spatial"], name=f"{base}/spatial/Add"),
            helper.make_node("Sigmoid", [f"{base}/spatial"], [f"{base}/S"], name=f"{base}/Sigmoid"),
            helper.make_node("Mul", [cur, f"{base}/S"], [f"{base}/mul_S"], name=f"{base}/Mul"),
        ]
        cur = f"{base}/mul_S"
    if act == "gelu":  # x * 0.5 * (1 + erf(x * sqrt(1/2)))
        nodes += [
            helper.make_node("Mul", [cur, const_float("unfused/sqrt_half", 0.7071067811865476)], [f"{base}/gelu_in"],
                             name=f"{base}/gelu/Mul"),
            helper.make_node("Erf", [f"{base}/gelu_in"], [f"{base}/gelu_erf"], name=f"{base}/gelu/Erf"),
            helper.make_node("Add", [f"{base}/gelu_erf", const_float("unfused/one", 1.0)], [f"{base}/gelu_1p"],
                             name=f"{base}/gelu/Add"),
            helper.make_node("Mul", [cur, const_float("unfused/half", 0.5)], [f"{base}/gelu_half"],
                             name=f"{base}/gelu/Mul_1"),
            helper.make_node("Mul", [f"{base}/gelu_half", f"{base}/gelu_1p"], [f"{base}/gelu"], name=f"{base}/gelu/Mul_2"),
        ]
        cur = f"{base}/gelu"
    if ins[7]:
        nodes.append(helper.make_node("Add", [cur, ins[7]], [f"{base}/residual"], name=f"{base}/Add"))
        cur = f"{base}/residual"
    last = nodes[-1]
    for i, o in enumerate(last.output):
        if o == cur:
            last.output[i] = y
    return nodes

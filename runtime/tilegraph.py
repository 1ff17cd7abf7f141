"""Graph surgery for tiled runs (:mod:`scales_edge.runtime.tiling`): the model with its global
pools' values as inputs, and the statistics graphs that sum each pool's input over a tile's core.
Used by :class:`~scales_edge.runtime.tileplan.TilingPlan`, whose graphs the Python tiler and the
native runner execute."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

if TYPE_CHECKING:
    from .tiling import Pool

__all__ = ["pooled_input_model", "statistics_model"]


def _opset(proto: onnx.ModelProto) -> int:
    return next((int(i.version) for i in proto.opset_import if i.domain in ("", "ai.onnx")), 17)


def _prune(graph: onnx.GraphProto) -> None:
    """Drop the nodes, initializers and inputs the graph outputs do not need."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    inits = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    ins = [i for i in graph.input if i.name in needed]
    del graph.input[:]
    graph.input.extend(ins)


def _pools_as_inputs(model: onnx.ModelProto, pools: Sequence[Pool]) -> None:
    """Replace each pool node by a graph input of the same name (its value is fed per run)."""
    drop = {p.index for p in pools}
    nodes = [n for i, n in enumerate(model.graph.node) if i not in drop]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    for p in pools:
        model.graph.input.append(helper.make_tensor_value_info(p.output, onnx.TensorProto.FLOAT, None))


def pooled_input_model(proto: onnx.ModelProto, pools: Sequence[Pool]) -> onnx.ModelProto:
    """The model with every global pool's value as an extra input."""
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    _pools_as_inputs(model, pools)
    return model


def _crop_input(scale: float) -> tuple[str, str]:
    tag = f"{scale:g}".replace(".", "_")
    return f"__tile_starts_s{tag}", f"__tile_ends_s{tag}"


def statistics_model(proto: onnx.ModelProto, pools: Sequence[Pool], override: bool) -> onnx.ModelProto:
    """Outputs ``__pool_sum_k``: the sum over a crop (inputs ``__tile_starts_*``/``__tile_ends_*``,
    int64 ``[2]`` in the pool input's pixels) of pool ``k``'s input; with ``override`` the pools'
    values are inputs (as in :func:`pooled_input_model`), else each tile pools itself.

    The crop-and-sums come after the body, last pool first. ONNX Runtime orders the nodes by a
    depth-first walk back from the graph's leaves, the last leaf first: so it runs the body up to
    pool 0's input, its crop-and-sum, on to pool 1's, and so on, and each pool input is freed as
    soon as the body is past it. (Placed where their pools were, the crop-and-sums would run only
    after the whole body, keeping every pool input in memory at once: 2.6 GB instead of 0.4 GB for
    the demo model's 720x676-pixel statistics tiles. ONNX Runtime's C API, which the native runner
    uses, has no other way to choose the order.)"""
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    g = model.graph
    axes_name = "__tile_axes_hw"
    new_axes_style = _opset(model) >= 13
    at = {p.index: k for k, p in enumerate(pools)}
    nodes = []
    sums: list[list[onnx.NodeProto]] = []
    crops_added: set[str] = set()
    for idx, node in enumerate(g.node):
        if idx not in at:
            nodes.append(node)
            continue
        k = at[idx]
        p = pools[k]
        if not override:
            nodes.append(node)
        starts, ends = _crop_input(p.scale)
        if starts not in crops_added:
            for name in (starts, ends):
                g.input.append(helper.make_tensor_value_info(name, onnx.TensorProto.INT64, [2]))
            crops_added.add(starts)
        crop, out = f"__pool_crop_{k}", f"__pool_sum_{k}"
        sums.append([helper.make_node("Slice", [p.data, starts, ends, axes_name], [crop], name=f"__pool_slice_{k}")])
        if new_axes_style:
            sums[-1].append(helper.make_node("ReduceSum", [crop, axes_name], [out], keepdims=0, name=out))
        else:
            sums[-1].append(helper.make_node("ReduceSum", [crop], [out], axes=[2, 3], keepdims=0, name=out))
    for crop_and_sum in reversed(sums):
        nodes.extend(crop_and_sum)
    del g.node[:]
    g.node.extend(nodes)
    if override:
        for p in pools:
            g.input.append(helper.make_tensor_value_info(p.output, onnx.TensorProto.FLOAT, None))
    g.initializer.append(numpy_helper.from_array(np.array([2, 3], np.int64), axes_name))
    del g.output[:]
    for k in range(len(pools)):
        g.output.append(helper.make_tensor_value_info(f"__pool_sum_{k}", onnx.TensorProto.FLOAT, None))
    _prune(g)
    return model

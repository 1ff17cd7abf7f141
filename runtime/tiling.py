"""Tiled super-resolution whose output equals the whole-image output.

Two things make a tile's output differ from the same pixels of a whole-image run:

1. **The border of the tile.** A convolution near the tile's edge sees zero padding where the
   whole image has pixels. The error reaches inwards by the network's receptive-field radius, so
   each tile is run with ``overlap`` extra LR pixels on every side and only its interior (the
   *core*) is kept. :func:`analyze` computes the radius from the graph (the convolutions'
   half-widths, in LR pixels, through pixel shuffles (``DepthToSpace``, or the INT8 tail's
   channels-last form of it) and resizes: 35 px for SRResNet's 16 blocks);
   with ``overlap`` >= the radius the kept pixels depend on exactly the input pixels they depend
   on in the whole-image run. (Blending overlaps is not needed: cores are exact, so seams cannot
   show.)
2. **Global pooling.** SCALES' channel re-scaling (and RCAN's channel attention) averages each
   channel over the *whole* image (``ReduceMean`` over H, W / ``GlobalAveragePool``), so the
   receptive field is really the whole image and no overlap suffices: with each tile pooling
   itself, the demo model's tiles differ from the whole image by ~50 dB (visible as tile-to-tile
   tone shifts). We make the pooled values inputs of the graph and compute the whole image's
   values with bounded memory: a *statistics* graph returns, for each pool, the sum of its input
   over a tile's core; summed over the tiles this is the whole image's sum. A pool's input depends
   on the earlier pools, so the means come from a fixed-point iteration: pass 0 lets each tile
   pool itself, pass ``i`` feeds the means of pass ``i-1``. Pool ``k`` is exact after pass ``k``
   (its input depends only on pools ``< k``), so the iteration reaches the whole-image means after
   at most one pass per pool; in practice each pass gains ~10 dB and it stops after 3-5 (when no
   mean moves by more than ``tol``, relative). The statistics graph keeps only the nodes the pool
   inputs need (the LR body, not the upsampling tail), so its tiles can be ``scale`` times wider
   for the same memory; an image that fits in one statistics tile needs a single, exact pass.

With both, tiled output == whole-image output up to float rounding (and the rare binarized
activation that rounding flips): ``tests/test_upscale.py`` checks >= 60 dB between the two; the
demo model gives identical 8-bit images when one statistics tile covers the image and ~78 dB
otherwise. An ``overlap`` below the radius trades exactness for speed (the error then decays
with the distance from the tile border).

A fused ``ScalesConv2d`` (op-domain versions 2 and 3) pools inside the op; the runner expands it
first (:func:`scales_edge.runtime.unfuse.unfuse`), so its pool is a graph node like the others (an
upsampling one's nearest ``Resize`` and ``DepthToSpace`` are followed like the exporter's own).

The graphs a tiled run executes (statistics graphs; the model with pools as inputs, cut before its
upsampling tail so that the tail runs on sub-tiles and a tile's memory stays near its LR body's)
form a :class:`~scales_edge.runtime.tileplan.TilingPlan` (built by :mod:`.tilegraph`'s graph
surgery), which :class:`~scales_edge.runtime.tilerun.TiledRunner` and the native runner execute.

**Window-attention Transformers** (SwinIR, HAT) reshape the feature map into windows, which the
graph analysis cannot follow; :func:`analyze_windowed` takes what it needs from the export's
configuration instead. Tiles start on the window grid (cores and overlaps are whole windows), so a
tile's windows, shifted windows and bottom/right padding to a window multiple are the whole
image's; their global pools (SCALES' channel re-scaling of each group's conv, HAT's channel
attention) get whole-image statistics over the padded map. A token's field grows by up to a window
per attention block, so the radius the zoo declares is wide (SwinIR-light 175 px, HAT-S 665 px);
with ``overlap`` >= it tiles are exact again. Below it they are approximate near tile borders, and
more so than a CNN's: a difference at a border reaches every token of a window at once, and a
binarized activation it flips does not fade. Measured figures: docs/benchmarks-transformers.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import ScalesEdgeError
from .session import DOMAIN

__all__ = ["TilingError", "Geometry", "analyze", "analyze_windowed", "model_geometry", "tile_grid"]  # + TiledRunner (.tilerun)


class TilingError(ScalesEdgeError):
    """The model has an operation that tiles cannot reproduce (run whole images: ``tile=0``)."""


# Ops that act on each pixel independently (any rank-4 operand may be a spatial tensor; others
# broadcast). Their output's receptive field is the widest of their inputs'.
_POINTWISE = {
    "Abs", "Add", "And", "BatchNormalization", "Cast", "Ceil", "Clip", "Div", "Elu", "Equal", "Erf",
    "Exp", "Floor", "Gelu", "Greater", "GreaterOrEqual", "HardSigmoid", "HardSwish", "Identity",
    "LeakyRelu", "Less", "LessOrEqual", "Log", "Max", "Min", "Mish", "Mul", "Neg", "Not", "Or",
    "PRelu", "Pow", "Reciprocal", "Relu", "Round", "Selu", "Sigmoid", "Sign", "Softplus", "Softsign",
    "Sqrt", "Sub", "Sum", "Tanh", "ThresholdedRelu", "Where", "Xor", "Mean", "Dropout",
    "DequantizeLinear", "QuantizeLinear",
}
# Ops with a kernel over H, W (the data input is input 0).
_WINDOWED = {"Conv", "AveragePool", "MaxPool", "LpPool", "BinaryConv2d"}


@dataclass
class Pool:
    """A global average pool: ``output = mean over H, W of data``."""

    index: int  # node position in the graph
    data: str
    output: str
    keepdims: bool
    scale: float  # pixels of ``data`` per input pixel


@dataclass
class Geometry:
    """What tiling needs to know about a model (see :func:`analyze` and :func:`analyze_windowed`)."""

    radius: float  # receptive-field radius of the output, in input (LR) pixels (inf: unbounded)
    scale: float  # output pixels per input pixel
    pools: list[Pool] = field(default_factory=list)
    min_side: int = 1  # smallest input side every op accepts
    window: int = 0  # window-attention models: the window side (tiles align to its grid); 0 for CNNs

    @property
    def exact(self) -> bool:
        """Whether the receptive field is known, so some overlap makes tiles exact."""
        return math.isfinite(self.radius)

    @property
    def exact_overlap(self) -> int:
        """The smallest overlap that makes tiles exact (the radius, rounded up, plus one pixel for
        the rounding of sub-pixel positions after pixel shuffles and resizes; for window models
        rounded up to whole windows)."""
        if not self.exact:
            raise TilingError("the model declares no receptive field, so no overlap is known to make tiles exact")
        return aligned_overlap(int(math.ceil(self.radius - 1e-9)) + 1, self.window or 1)


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _constants(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    consts = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for a in node.attribute:
                if a.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(a.t)
    return consts


def _reduce_axes(node: onnx.NodeProto, consts: dict[str, np.ndarray]) -> list[int] | None:
    axes = _attr(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        arr = consts.get(node.input[1])
        if arr is None:
            return None
        axes = arr.tolist()
    return None if axes is None else sorted(int(a) % 4 for a in axes)


def _is_spatial_mean(node: onnx.NodeProto, consts: dict[str, np.ndarray]) -> bool:
    if node.op_type == "GlobalAveragePool":
        return True
    return node.op_type == "ReduceMean" and _reduce_axes(node, consts) == [2, 3]


def _window(node: onnx.NodeProto, consts: dict[str, np.ndarray]) -> tuple[list[int], list[int], list[int], list[int]]:
    """(kernel, strides, dilations, pads[begin_h, begin_w, end_h, end_w]) of a windowed op."""
    kernel = _attr(node, "kernel_shape")
    if kernel is None and node.op_type == "Conv" and node.input[1] in consts:
        kernel = list(consts[node.input[1]].shape[2:])
    if kernel is None:
        raise TilingError(f"{node.op_type} node {node.name!r} has no kernel_shape")
    kernel = [int(k) for k in kernel]
    nd = len(kernel)
    strides = [int(s) for s in (_attr(node, "strides") or [1] * nd)]
    dil = [int(d) for d in (_attr(node, "dilations") or [1] * nd)]
    auto_pad = _attr(node, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        total = [d * (k - 1) for k, d in zip(kernel, dil)]
        first = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total]
        pads = first + [t - f for t, f in zip(total, first)]
    elif auto_pad == "VALID":
        pads = [0] * (2 * nd)
    else:
        pads = [int(p) for p in (_attr(node, "pads") or [0] * (2 * nd))]
    return kernel, strides, dil, pads


def _channels_last_shuffles(graph: onnx.GraphProto, consts: dict[str, np.ndarray]) -> dict[int, tuple[int, str, set[int]]]:
    """The pixel shuffles written in channels-last layout (the INT8 tail's, see
    :func:`scales_edge.export.quantize._channels_last_shuffles`): ``Transpose(0,2,3,1) → Reshape
    [0,0,0,r,r,-1] → Transpose(0,1,3,2,4,5) → Reshape(Shape(·) · [1,r,r,1] / [1,1,1,r²]) →
    Transpose(0,3,1,2)``, a ``DepthToSpace`` (DCR) of blocksize r. Returns, by the index of the
    first ``Transpose``: (r, the output tensor, the indices of the other nodes). A chain whose
    inner tensors are read by any other node is not one."""
    nodes = list(graph.node)
    readers: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for t in n.input:
            readers.setdefault(t, []).append(i)
    outputs = {o.name for o in graph.output}

    def perm(i: int) -> list[int] | None:
        n = nodes[i]
        return [int(v) for v in _attr(n, "perm", [])] if n.op_type == "Transpose" else None

    def only(t: str, op: str) -> int | None:
        rs = readers.get(t, [])
        return rs[0] if len(rs) == 1 and nodes[rs[0]].op_type == op and t not in outputs else None

    def const(t: str) -> list[int] | None:
        a = consts.get(t)
        return None if a is None else [int(v) for v in a.reshape(-1)]

    found: dict[int, tuple[int, str, set[int]]] = {}
    for i, n in enumerate(nodes):
        if perm(i) != [0, 2, 3, 1]:
            continue
        t_nhwc = n.output[0]
        rs = readers.get(t_nhwc, [])
        split = next((j for j in rs if nodes[j].op_type == "Reshape"), None)
        shape = next((j for j in rs if nodes[j].op_type == "Shape"), None)
        if split is None or shape is None or len(rs) != 2 or t_nhwc in outputs:
            continue
        dims = const(nodes[split].input[1])
        if not dims or len(dims) != 6 or dims[:3] != [0, 0, 0] or dims[3] != dims[4] or dims[3] < 2 or dims[5] != -1:
            continue
        r = dims[3]
        shuffle = only(nodes[split].output[0], "Transpose")
        mul = only(nodes[shape].output[0], "Mul")
        div = only(nodes[mul].output[0], "Div") if mul is not None else None
        if shuffle is None or perm(shuffle) != [0, 1, 3, 2, 4, 5] or div is None:
            continue
        if const(nodes[mul].input[1]) != [1, r, r, 1] or const(nodes[div].input[1]) != [1, 1, 1, r * r]:
            continue
        merge = only(nodes[shuffle].output[0], "Reshape")
        if merge is None or nodes[merge].input[1] != nodes[div].output[0] or len(readers.get(nodes[div].output[0], [])) != 1:
            continue
        last = only(nodes[merge].output[0], "Transpose")
        if last is None or perm(last) != [0, 3, 1, 2]:
            continue
        found[i] = (r, nodes[last].output[0], {split, shuffle, shape, mul, div, merge, last})
    return found


@dataclass
class _T:
    """Per-tensor facts: ``None`` (no spatial extent: constants, pooled values) or spatial."""

    radius: float
    scale: float


def analyze(proto: onnx.ModelProto, inputs: Sequence[str] | None = None) -> Geometry:
    """Receptive field, scale, global pools and minimum input side of an image-to-image model.

    ``inputs`` names the spatial inputs, all at the resolution the radius and scale are measured
    in (default: the model's one image input); a part of a graph, such as the upsampling tail of
    :mod:`scales_edge.runtime.tileplan`, is analysed from the tensors the rest hands it.

    Raises :class:`TilingError` for an op whose output at a pixel depends on more than a bounded
    window of the input (other than a global average pool), or that moves pixels around in a way
    tiles cannot follow (reshapes of spatial tensors, spatial slices, ...).
    """
    graph = proto.graph
    consts = _constants(proto)
    facts: dict[str, _T | None] = {name: None for name in consts}
    inputs = list(inputs) if inputs else [_image_input(proto, consts)]
    pools: list[Pool] = []
    # size propagation for the minimum input side: each tensor's side as a function of n
    side_fns: dict[str, Callable[[int], int]] = {}
    for name in inputs:
        facts[name] = _T(0.0, 1.0)
        side_fns[name] = lambda n: n
    checks: list[Callable[[int], bool]] = []

    shuffles = _channels_last_shuffles(graph, consts)
    inner = set().union(*(nodes for _, _, nodes in shuffles.values()))
    for idx, node in enumerate(graph.node):
        if idx in inner:
            continue
        ins = [facts.get(i) if i else None for i in node.input]
        spatial = [f for f in ins if f is not None]
        op = node.op_type
        if idx in shuffles and ins[0] is not None:
            # a pixel shuffle in channels-last layout: a DepthToSpace
            bs, y, _ = shuffles[idx]
            facts[y] = _T(ins[0].radius, ins[0].scale * bs)
            prev = side_fns.get(node.input[0], lambda n: n)
            side_fns[y] = (lambda prev, bs: lambda n: prev(n) * bs)(prev, bs)
            continue
        if op == "Constant" or not spatial:
            for o in node.output:
                facts[o] = None
            continue
        out: _T | None
        data = ins[0]
        if _is_spatial_mean(node, consts):
            if data is None:
                raise TilingError(f"{op} node {node.name!r} pools a tensor of unknown layout")
            pools.append(Pool(idx, node.input[0], node.output[0], bool(_attr(node, "keepdims", 1)), data.scale))
            out = None
        elif op in _WINDOWED and (node.domain in ("", "ai.onnx") or node.domain == DOMAIN):
            if data is None:  # e.g. a 1-D conv over pooled values
                if len(spatial) and any(f is not None for f in ins[1:]):
                    raise TilingError(f"{op} node {node.name!r} has spatial weights")
                out = None
            else:
                kernel, strides, dil, pads = _window(node, consts)
                if len(kernel) != 2:
                    raise TilingError(f"{op} node {node.name!r} is not a 2-D window over H, W")
                reach = max(
                    max(pads[a], d * (k - 1) - pads[a]) for a, (k, d) in enumerate(zip(kernel, dil))
                )
                if strides[0] != strides[1]:
                    raise TilingError(f"{op} node {node.name!r} has unequal strides")
                out = _T(data.radius + reach / data.scale, data.scale / strides[0])
                prev = side_fns.get(node.input[0], lambda n: n)
                k, s, d = kernel[0], strides[0], dil[0]
                p = pads[0] + pads[2]
                fn = (lambda prev, k, s, d, p: lambda n: (prev(n) + p - d * (k - 1) - 1) // s + 1)(prev, k, s, d, p)
                side_fns[node.output[0]] = fn
                checks.append(fn)
        elif op == "DepthToSpace" and data is not None:
            bs = int(_attr(node, "blocksize"))
            out = _T(data.radius, data.scale * bs)
            prev = side_fns.get(node.input[0], lambda n: n)
            side_fns[node.output[0]] = (lambda prev, bs: lambda n: prev(n) * bs)(prev, bs)
        elif op == "SpaceToDepth" and data is not None:
            bs = int(_attr(node, "blocksize"))
            out = _T(data.radius + (bs - 1) / data.scale, data.scale / bs)
            prev = side_fns.get(node.input[0], lambda n: n)
            side_fns[node.output[0]] = (lambda prev, bs: lambda n: prev(n) // bs)(prev, bs)
            checks.append(side_fns[node.output[0]])
        elif op in ("Resize", "Upsample") and data is not None:
            scales = None
            if op == "Resize" and len(node.input) > 2 and node.input[2]:
                scales = consts.get(node.input[2])
            elif op == "Upsample" and len(node.input) > 1:
                scales = consts.get(node.input[1])
            if scales is None or scales.size != 4 or scales[2] != scales[3] or scales[0] != 1 or scales[1] != 1:
                raise TilingError(f"{op} node {node.name!r} does not resize H, W by a constant factor")
            mode = _attr(node, "mode", b"nearest")
            mode = mode.decode() if isinstance(mode, bytes) else mode
            taps = {"nearest": 1, "linear": 1, "cubic": 2}.get(mode, 2)
            f = float(scales[2])
            out = _T(data.radius + taps / data.scale, data.scale * f)
            prev = side_fns.get(node.input[0], lambda n: n)
            side_fns[node.output[0]] = (lambda prev, f: lambda n: int(math.floor(prev(n) * f)))(prev, f)
        elif op in _POINTWISE or (op == "Concat" and int(_attr(node, "axis", 0)) % 4 in (0, 1)) or (
            op == "Split" and int(_attr(node, "axis", 0)) % 4 in (0, 1)
        ):
            scales = {round(f.scale, 9) for f in spatial}
            if len(scales) > 1:
                raise TilingError(f"{op} node {node.name!r} mixes tensors of different resolutions")
            out = _T(max(f.radius for f in spatial), spatial[0].scale)
            src = next(i for i, f in zip(node.input, ins) if f is not None)
            for o in node.output:
                if src in side_fns:
                    side_fns[o] = side_fns[src]
        elif op in ("Squeeze", "Unsqueeze", "Reshape", "Flatten", "Expand") and data is None:
            out = None
        else:
            where = "a spatial tensor" if data is not None else "its inputs"
            raise TilingError(
                f"{op} node {node.name!r} acts on {where} in a way tiles cannot reproduce"
            )
        for o in node.output:
            facts[o] = out

    outputs = [o.name for o in graph.output]
    final = facts.get(outputs[0])
    if final is None:
        raise TilingError("the model's output does not depend on the image pixels")

    def fits(n: int) -> bool:
        return all(check(n) >= 1 for check in checks)

    min_side = next((n for n in range(1, 4097) if fits(n)), 4097)
    return Geometry(final.radius, final.scale, pools, min_side)


def _image_input(proto: onnx.ModelProto, consts: dict[str, np.ndarray]) -> str:
    inputs = [i.name for i in proto.graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise TilingError(f"tiling needs a model with one image input, this one has {len(inputs)}")
    return inputs[0]


def model_config(proto: onnx.ModelProto) -> dict[str, Any]:
    """The build configuration in the ``scales_edge.config`` metadata ({} if there is none)."""
    import json

    from .session import metadata

    raw = metadata(proto).get("scales_edge.config")
    if not raw:
        return {}
    try:
        cfg = json.loads(raw)
    except ValueError:
        raise TilingError("the model's scales_edge.config metadata is not JSON; re-export it with scales-edge") from None
    return cfg if isinstance(cfg, dict) else {}


def window_radius(proto: onnx.ModelProto) -> float:
    """The receptive-field radius (LR pixels) of a window-attention model, as the exporter wrote it
    (``scales_edge.receptive_radius`` metadata, from the ``receptive_radius`` of the zoo's registry
    entry), or inf if the export declares none (then no overlap is known to make tiles exact)."""
    from .session import metadata

    try:
        radius = float(metadata(proto)["scales_edge.receptive_radius"])
    except (KeyError, ValueError):
        return math.inf
    return radius if radius >= 0 else math.inf


# Ops that start the upsampling tail (global pools must come before them, at LR resolution).
_UPSAMPLING = {"DepthToSpace", "Resize", "Upsample", "ConvTranspose"}


def analyze_windowed(proto: onnx.ModelProto, window: int, radius: float = math.inf) -> Geometry:
    """Geometry of a window-attention Transformer (SwinIR, HAT) exported by scales-edge.

    Its graph reshapes the feature map into windows, which :func:`analyze` cannot follow, and its
    receptive field grows by up to a window per attention block (far beyond a CNN's). What tiling
    needs comes from the export instead: the window (tiles are aligned to
    its grid so that inside a tile the windows, shifted windows and the padding of the image's
    bottom and right edges are the whole image's), the receptive-field ``radius`` the zoo
    declares for the configuration (written by the export: :func:`window_radius`), and the
    global pools of the LR body
    (SCALES' channel re-scaling, HAT's channel attention), which get whole-image statistics as
    for CNNs. The pools' inputs are at the *padded* LR size (a multiple of the window)."""
    from .session import metadata

    if window < 1:
        raise TilingError(f"window size must be >= 1, got {window}")
    consts = _constants(proto)
    _image_input(proto, consts)
    try:
        scale = float(int(metadata(proto)["scales_edge.scale"]))
    except (KeyError, ValueError):
        raise TilingError("no scales_edge.scale in the model metadata; re-export it with scales-edge") from None
    pools: list[Pool] = []
    upsampled = False
    shuffles = _channels_last_shuffles(proto.graph, consts)
    for idx, node in enumerate(proto.graph.node):
        if node.op_type in _UPSAMPLING or idx in shuffles:
            upsampled = True
        if _is_spatial_mean(node, consts):
            if upsampled:
                raise TilingError(f"{node.op_type} node {node.name!r} pools after the upsampling")
            pools.append(Pool(idx, node.input[0], node.output[0], bool(_attr(node, "keepdims", 1)), 1.0))
    return Geometry(radius, scale, pools, 1, window)


def model_geometry(proto: onnx.ModelProto) -> Geometry:
    """:func:`analyze_windowed` for window-attention Transformers (a ``window_size`` in the
    export's configuration: SwinIR, HAT), :func:`analyze` for the rest."""
    cfg = model_config(proto)
    if not cfg.get("window_size"):
        return analyze(proto)
    try:
        window = int(cfg["window_size"])
    except (TypeError, ValueError):
        raise TilingError(f"window_size {cfg['window_size']!r} in the model metadata is not a number") from None
    return analyze_windowed(proto, window, window_radius(proto))


@dataclass(frozen=True)
class Tile:
    y0: int  # core, in input pixels (half-open)
    y1: int
    x0: int
    x1: int
    ry0: int  # region run through the model (core + overlap, clipped to the image)
    ry1: int
    rx0: int
    rx1: int


def _cuts(n: int, tile: int, align: int = 1) -> list[tuple[int, int]]:
    """``ceil(n / tile)`` spans of near-equal length (each <= ``tile``) covering ``[0, n)``, each
    starting at a multiple of ``align`` (spans are whole ``align`` cells; the last may be partial)."""
    cells = -(-n // align)
    per = max(1, tile // align)
    parts = -(-cells // per)
    bounds = [min(n, round(i * cells / parts) * align) for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(parts)]


def aligned_overlap(overlap: int, align: int) -> int:
    """``overlap`` rounded up to a multiple of ``align``."""
    return -(-overlap // align) * align


def tile_grid(h: int, w: int, tile: int, overlap: int, align: int = 1) -> list[Tile]:
    """Cores of at most ``tile`` x ``tile`` input pixels covering ``h`` x ``w`` (near-equal sizes,
    so there is no thin last row or column), each grown by ``overlap`` pixels on every side and
    clipped to the image. Sorted largest region first: ONNX Runtime's memory arena then reaches
    its high-water mark on the first tile and the smaller ones reuse its blocks.

    With ``align`` > 1 (a window-attention model's window) cores and regions start on multiples
    of ``align``: cores are whole cells of the grid (at least one, even if ``tile`` is smaller)
    and the overlap is rounded up to a multiple of ``align`` (:func:`aligned_overlap`)."""
    if tile < 1:
        raise ValueError(f"tile must be >= 1, got {tile}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    if align < 1:
        raise ValueError(f"align must be >= 1, got {align}")
    overlap = aligned_overlap(overlap, align)
    tiles = []
    for y0, y1 in _cuts(h, tile, align):
        for x0, x1 in _cuts(w, tile, align):
            tiles.append(
                Tile(y0, y1, x0, x1, max(0, y0 - overlap), min(h, y1 + overlap), max(0, x0 - overlap), min(w, x1 + overlap))
            )
    tiles.sort(key=lambda t: -(t.ry1 - t.ry0) * (t.rx1 - t.rx0))
    return tiles


def __getattr__(name: str) -> Any:
    """The graph surgery (:mod:`.tilegraph`) and the runner (:mod:`.tilerun`) live in their own
    modules; their public names stay importable from here."""
    if name in ("pooled_input_model", "statistics_model", "_prune"):
        from . import tilegraph

        return getattr(tilegraph, name)
    if name in ("TiledRunner", "_run"):
        from . import tilerun

        return getattr(tilerun, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

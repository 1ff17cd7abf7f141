"""INT8 head and tail: ONNX Runtime static quantization (QDQ) of the full-precision layers around
the binary body.

**What is quantized.** The FP ``Conv`` layers that run before the first binary layer (the head:
``conv_first``; RDN's ``sfe1``/``sfe2``) and after the last one (the tail: the upsampler's convs,
``conv_hr``, ``conv_last``...), with the pixel shuffles (``DepthToSpace``) and (leaky) ReLUs between
them, so that ONNX Runtime's CPU provider fuses the tail into channels-last (NHWC) ``QLinearConv →
pixel shuffle → QLinearLeakyRelu → QLinearConv ...`` on 8-bit tensors (the shuffles are written in
channels-last form for that: see Choices). Weights are int8 per output channel,
activations uint8, ranges from MinMax calibration on real photos. Nothing else changes: the binary
body (``scales_edge`` ops, their FP re-scaling branches, skips) keeps its ops and weights, and the
graph's final additions (the bilinear base, MeanShift, long skips) stay FP32. The head and tail
are found from the PyTorch model (:func:`head_tail_convs`), so every CNN and Transformer of the
zoo with a binary body works; a model with no binary layer (``binary="fp"``) is refused.

**How.** ORT's calibrator builds its own ``InferenceSession``, which cannot load our op library, so
the head and tail nodes are cut out of the exported graph as one sub-model of standard ops (its
inputs: the tensors those nodes read from the rest of the graph; its outputs: the tensors the rest
reads from them). Our session runs the whole model on the calibration crops with those input
tensors as extra outputs; they are the sub-model's calibration data. ``quantize_static``
quantizes the sub-model; its nodes and initializers then replace the original ones in the full
graph. The tensor names at the cut are kept (a quantized output keeps its name at the
``DequantizeLinear`` that ends it), so the body reads the same names as before.

**Choices** (measured on the demo model, x86-64 AVX2 without VNNI, ONNX Runtime 1.32):

* ``reduce_range`` (7-bit weights): without it, the fused ``QLinearConv`` (MLAS' u8s8 AVX2 kernel,
  which adds pairs of 8-bit products in 16 bits) saturates: 34 dB vs PyTorch on random input and
  43-47 dB on photos, against 40 / 46-49 dB with it, and the same model run unfused gives the
  second numbers. With 7-bit weights no CPU saturates, so one file is right everywhere.
* uint8 activations: asymmetric int8 activations give identical numbers (the same grid shifted by
  128) and ran slower here; uint8 is what ORT's x86 kernels are built for. One 3x3 64->64
  ``QLinearConv`` at 1280x720, one thread: 0.42 s with uint8 activations and int8 weights (MLAS'
  indirect "ConvSym" kernel, ~80 GMAC/s: its bound, 32 MACs a cycle with ``vpmaddubsw`` +
  ``vpmaddwd``), 3.2 s with int8 activations (no such kernel on AVX2), 0.81 s with uint8 weights;
  8-bit instead of 7-bit weights (0.40 s) or one scale per tensor (0.41 s) are no faster.
* QDQ format: ORT's recommended format for CPU; the graph stays readable (``Conv`` with
  ``DequantizeLinear`` weights), and ``scales-edge info`` counts it like the FP32 graph.
* Channels-last pixel shuffles (:func:`_channels_last_shuffles`): ORT's NHWC transformer makes each
  ``QLinearConv`` channels-last, but ``DepthToSpace`` exists only in NCHW, so each shuffle ran as
  ``Transpose → DepthToSpace → QLinearLeakyRelu → Transpose`` (uint8; ORT's ``DepthToSpace`` is an
  element-by-element 6-D shuffle): 0.24 s of the 64-channel SRResNet x4 at 320x180
  (``DepthToSpace`` 0.14 s, ``Transpose`` 0.10 s), 12% of its time. The export writes each shuffle as uint8 ``Reshape →
  Transpose → Reshape`` between NHWC transposes that cancel against ORT's, with the upconv's output
  channels permuted to DCR order so that the transpose moves runs of ``r·C`` bytes: 0.02 s, and
  the same values bit for bit (``runtime.tiling`` reads it as a ``DepthToSpace``).
* Narrow convs get zero filters up to 16 (:func:`_pad_narrow_convs`): below 16 output channels
  MLAS' indirect kernel does not apply and ``QLinearConv`` falls back to a whole-image im2col +
  GEMM, ~7 GMAC/s, the im2col taking about the same time for 1 to 8 output channels: ``conv_last``
  (3 output channels, 1.6 G MACs at 1280x720 from 64 channels) took 0.23 s of the 64-channel
  SRResNet x4. With 13 all-zero int8 filters (zero points 0, zero int32 bias) it runs in the fast
  kernel, 8.5 G MACs at ~77 GMAC/s: 0.11 s; a ``Split`` on the channel axis drops the 13 channels
  from its uint8 output (ORT adds 2 ms of ``Transpose`` of the 16 channels and 2 ms of ``Split``),
  and the values are the same bit for bit. The rewrite fires only on the exact QDQ pattern
  (uint8 per-tensor input and output, int8 per-channel or per-tensor weights, int32 bias, one
  group, a kernel wider than 1x1: a 1x1 conv needs no im2col, and padding one 64 -> 3 at 720p
  gained nothing), on any such conv under 16 output channels: in the zoo ``conv_last``, and the
  head/tail convs of models narrower than 16 channels; the head ``conv_first`` (``num_feat``
  outputs, 40-64) and the upconvs are untouched, and so is a conv before a pixel shuffle. The
  tensors at the cut, and every tensor of the graph before, keep their names, shapes and values
  (the two widened ones get new names). ``runtime.tiling`` treats the ``Split`` as a per-pixel op.
  The file carries 13·C·9 more int8 weights (7.5 KB for C = 64); ``scales-edge info`` does not
  count them (an output channel that nothing reads is dead: see :mod:`scales_edge.info`), so the
  ``.onnx`` and its checkpoint report the same parameters and MACs. The metadata lists the padded
  convs (``padded_convs``).

**Measured** on the demo model (SRResNet x4, 40 channels): 0.31 MB instead of 0.68 MB; held-out
PSNR/SSIM 30.055 dB / 0.8226 instead of 30.064 / 0.8230; 1.55-1.71x faster than FP32 at 320x180 on
one thread (0.80-0.86 s vs 1.27-1.47 s in three alternating runs; ``conv_last`` 0.064 s instead of
0.096 s unpadded, which the run-to-run noise hides end to end; 1.4x with ``DepthToSpace`` in
earlier runs). The 64-channel SRResNet x4 of ``benchmarks/bench_all.py``: 1.41-1.54 s vs
3.68-4.06 s in FP32 (2.6-2.7x in four runs; without the padding of ``conv_last`` 1.51-1.68 s,
2.4-2.5x, in the same runs; 1.9-2.0x with ``DepthToSpace`` in earlier runs); its INT8 tail is now
~1.1 s of ``QLinearConv`` at 75-90 GMAC/s (``conv_last`` 0.11 s) and 0.06 s of ``QLinearLeakyRelu``.
Against PyTorch: 40.4 dB on random input, 46.5-49.2 dB on photos. The head accounts for nearly all
of that (tail alone: 50-57 dB): its quantization noise flips 2.4% of the body's binarized
activations, those near their threshold, which costs 0.005 dB on the held-out photos; the head is
0.2% of the FP MACs, so quantizing it buys next to nothing in speed.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import nn

from ..errors import ScalesEdgeError
from ..nn import binary_layers

__all__ = [
    "CALIB_CROP",
    "CALIB_CROPS",
    "QuantizeError",
    "TAILS",
    "calibration_crops",
    "calibration_photos",
    "head_tail_convs",
    "quantize_head_tail",
]

TAILS = ("fp32", "int8")
#: Calibration: this many LR crops of this side (pixels), spread over the photos, fixed seed.
CALIB_CROPS = 32
CALIB_CROP = 64
CALIB_SEED = 0
#: Op types quantized inside the head and tail (the rest of their nodes stay FP32).
QUANT_OPS = ("Conv", "DepthToSpace", "LeakyRelu", "Relu")
MIN_OPSET = 13  # per-channel DequantizeLinear (axis)


class QuantizeError(ScalesEdgeError):
    """The model's head and tail cannot be quantized as asked."""


# ---------------------------------------------------------------------------- which layers


def head_tail_convs(model: nn.Module) -> tuple[list[str], list[str]]:
    """Qualified names of the FP ``nn.Conv2d`` layers run before the first binary layer (head) and
    after the last one (tail), in execution order; a binary layer's own FP branches are neither.

    Found by running the model once on a small input with hooks (a model may build its layers in
    any order; what counts is when they run)."""
    layers = dict(binary_layers(model))
    if not layers:
        arch = (getattr(model, "config", None) or {}).get("arch", type(model).__name__)
        raise QuantizeError(
            f"--tail int8 quantizes the FP head and tail around a binary body; this {arch} model has no "
            "binary layers (binary=fp): export it with --tail fp32"
        )
    inside = tuple(name + "." for name in layers)
    events: list[tuple[str, str]] = []
    hooks = []
    for name, module in model.named_modules():
        if name in layers:
            hooks.append(module.register_forward_pre_hook(lambda *_a, n=name: events.append(("enter", n))))
            hooks.append(module.register_forward_hook(lambda *_a, n=name: events.append(("leave", n))))
        elif isinstance(module, nn.Conv2d) and not name.startswith(inside):
            hooks.append(module.register_forward_hook(lambda *_a, n=name: events.append(("conv", n))))
    cfg = getattr(model, "config", None) or {}
    channels = int(cfg.get("num_in_ch", 3))
    side = max(8, int(cfg.get("window_size", 0) or 0))
    try:
        with torch.no_grad():
            model.eval()(torch.rand(1, channels, side, side))
    finally:
        for h in hooks:
            h.remove()
    first = next(i for i, (kind, _) in enumerate(events) if kind == "enter")
    last = max(i for i, (kind, _) in enumerate(events) if kind == "leave")
    head = [n for kind, n in events[:first] if kind == "conv"]
    tail = [n for kind, n in events[last:] if kind == "conv"]
    if not head and not tail:
        raise QuantizeError("the model has no FP convolution before its first or after its last binary layer")
    return head, tail


# ---------------------------------------------------------------------------- calibration data


def calibration_photos(calib: str | Path | Sequence[str | Path] | None = None) -> list[Path]:
    """The calibration photos: ``calib`` (a folder of images, or a list of files), or by default
    the photos packaged with scikit-image / matplotlib minus the demo's held-out ones."""
    from ..data import list_images, sample_photos
    from ..demo import HELD_OUT

    if calib is None:
        try:
            photos = sample_photos()
        except FileNotFoundError as exc:
            raise QuantizeError(f"{exc}; or pass --calib DIR with your own photos") from None
        paths = [p for name, p in photos.items() if name not in HELD_OUT]
        if not paths:
            raise QuantizeError("no packaged calibration photos (install scikit-image), or pass --calib DIR")
        return paths
    if isinstance(calib, (str, Path)):
        return list_images(calib)
    paths = [Path(p) for p in calib]
    if not paths:
        raise QuantizeError("the list of calibration photos is empty")
    return paths


def calibration_crops(
    paths: Sequence[str | Path],
    scale: int,
    channels: int = 3,
    count: int = CALIB_CROPS,
    size: int = CALIB_CROP,
    seed: int = CALIB_SEED,
) -> Iterator[np.ndarray]:
    """``count`` LR crops ``[1, C, size, size]`` float32 on [0, 1], as the model sees photos: each
    HR photo is mod-cropped and downscaled with MATLAB bicubic (:func:`~scales_edge.data.make_lr`),
    then cropped at seeded random positions (smaller LR images are used whole). The crops cycle
    over up to ``count`` photos spread evenly over ``paths``; the same arguments give the same
    crops. Gray models get BT.601 luma."""
    import cv2

    from ..data import imread, make_lr

    if count < 1 or size < 1:
        raise QuantizeError(f"calibration needs at least one crop of at least one pixel, got {count} of {size}")
    chosen = [paths[i * len(paths) // min(count, len(paths))] for i in range(min(count, len(paths)))]
    rng = np.random.default_rng(seed)
    lrs: dict[int, np.ndarray] = {}
    for k in range(count):
        j = k % len(chosen)
        if j not in lrs:
            lr = make_lr(imread(chosen[j]), scale)
            if channels == 1:
                lr = cv2.cvtColor(lr, cv2.COLOR_RGB2GRAY)[..., None]
            elif channels != 3:
                raise QuantizeError(f"calibration photos are RGB or gray; the model takes {channels} channels")
            lrs[j] = lr
        lr = lrs[j]
        h, w = min(size, lr.shape[0]), min(size, lr.shape[1])
        y = int(rng.integers(0, lr.shape[0] - h + 1))
        x = int(rng.integers(0, lr.shape[1] - w + 1))
        crop = lr[y : y + h, x : x + w].astype(np.float32) / 255.0
        yield np.ascontiguousarray(crop.transpose(2, 0, 1)[None])


# ---------------------------------------------------------------------------- the cut


def _region(graph: onnx.GraphProto, head: list[int], tail: list[int]) -> list[int]:
    """Node indices of the head (the head convs and everything they depend on) and the tail (the
    tail convs and everything that depends on them), in graph order."""
    producer = {o: i for i, n in enumerate(graph.node) for o in n.output if o}
    consumers: dict[str, list[int]] = {}
    for i, n in enumerate(graph.node):
        for t in n.input:
            consumers.setdefault(t, []).append(i)
    region: set[int] = set()
    for start, step in ((head, lambda i: [producer[t] for t in graph.node[i].input if t in producer]),
                        (tail, lambda i: [c for o in graph.node[i].output for c in consumers.get(o, [])])):
        stack = list(start)
        while stack:
            i = stack.pop()
            if i not in region:
                region.add(i)
                stack.extend(step(i))
    return sorted(region)


def _module_of(node_name: str) -> str:
    """The PyTorch layer a node was traced from: the exporter names nodes after the module scope,
    ``/body/body.0/conv1/spatial/Conv`` for ``body.0.conv1.spatial``."""
    parts = node_name.strip("/").split("/")[:-1]
    return ".".join(p.rsplit(".", 1)[-1] for p in parts)


def _conv_nodes(graph: onnx.GraphProto, names: list[str]) -> list[int]:
    """Graph positions of the ``Conv`` nodes of these PyTorch layers: by the node's scope name, else
    by the layer's weight or bias (onnxsim may fold a constant factor into the weight)."""
    convs = [(i, n) for i, n in enumerate(graph.node) if n.op_type == "Conv" and n.domain in ("", "ai.onnx")]
    found = []
    for name in names:
        hits = [i for i, n in convs if _module_of(n.name) == name]
        if len(hits) != 1:
            hits = [i for i, n in convs if f"{name}.weight" in n.input[1:] or f"{name}.bias" in n.input[1:]]
        if len(hits) != 1:
            raise QuantizeError(f"cannot find the ONNX Conv of layer {name} in the exported graph")
        found.append(hits[0])
    return found


class _Cut:
    """The head and tail nodes of ``proto`` as a sub-model, and what crosses the cut."""

    def __init__(self, proto: onnx.ModelProto, head: list[str], tail: list[str]) -> None:
        g = proto.graph
        self.proto = proto
        self.nodes = _region(g, _conv_nodes(g, head), _conv_nodes(g, tail))
        bad = [g.node[i] for i in self.nodes if g.node[i].domain not in ("", "ai.onnx")]
        if bad:
            raise QuantizeError(
                f"the FP head/tail depends on {bad[0].domain}::{bad[0].op_type} ({bad[0].name}): "
                "only standard ops can be quantized"
            )
        inside = set(self.nodes)
        inits = {t.name for t in g.initializer}
        produced = {o for i in self.nodes for o in g.node[i].output}
        graph_outputs = {o.name for o in g.output}
        outside_reads = {t for j, n in enumerate(g.node) if j not in inside for t in n.input}
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        for i in self.nodes:
            for t in g.node[i].input:
                if t and t not in produced and t not in inits and t not in self.inputs:
                    self.inputs.append(t)
            for t in g.node[i].output:
                if t and (t in graph_outputs or t in outside_reads) and t not in self.outputs:
                    self.outputs.append(t)
        self.initializers = sorted({t for i in self.nodes for t in g.node[i].input if t in inits})

    def submodel(self, types: dict[str, tuple[int, int]]) -> onnx.ModelProto:
        """The cut-out nodes as a model (``types``: tensor name → (ONNX element type, rank))."""
        g = self.proto.graph

        def info(name: str) -> onnx.ValueInfoProto:
            elem, rank = types[name]
            return helper.make_tensor_value_info(name, elem, [f"{name}_d{k}" for k in range(rank)])

        wanted = set(self.initializers)
        graph = helper.make_graph(
            [g.node[i] for i in self.nodes],
            "head_tail",
            [info(t) for t in self.inputs],
            [info(t) for t in self.outputs],
            [t for t in g.initializer if t.name in wanted],
        )
        opsets = [o for o in self.proto.opset_import if o.domain in ("", "ai.onnx")]
        return helper.make_model(graph, opset_imports=opsets, ir_version=self.proto.ir_version)

    def stitch(self, quantized: onnx.ModelProto) -> onnx.ModelProto:
        """``proto`` with the cut-out nodes replaced by ``quantized``'s nodes and initializers."""
        out = onnx.ModelProto()
        out.CopyFrom(self.proto)
        g = out.graph
        inside = set(self.nodes)
        kept = [n for i, n in enumerate(g.node) if i not in inside]
        rank = {n.name: i for i, n in enumerate(self.proto.graph.node) if n.name}
        nodes = _toposort(kept + list(quantized.graph.node), rank)
        del g.node[:]
        g.node.extend(nodes)
        produced = {o for n in g.node for o in n.output}
        read = {t for n in g.node for t in n.input} | {o.name for o in g.output}
        old = {t.name: t for t in g.initializer}
        new = list(quantized.graph.initializer)
        for t in new:
            if t.name in old and t.name not in self.initializers and t.name in read:
                raise QuantizeError(f"the quantizer's initializer {t.name!r} collides with a tensor of the model")
        new_names = {t.name for t in new}
        keep = [t for t in g.initializer if t.name in read and t.name not in produced and t.name not in new_names]
        del g.initializer[:]
        g.initializer.extend(keep + [t for t in new if t.name in read])
        live = produced | {t.name for t in g.initializer} | {i.name for i in g.input}
        vis = [v for v in g.value_info if v.name in live]
        del g.value_info[:]
        g.value_info.extend(vis)
        versions = {o.domain or "": o.version for o in out.opset_import}
        for o in quantized.opset_import:
            d = o.domain or ""
            if d not in versions or (d == "" and o.version > versions[d]):
                versions[d] = o.version
        del out.opset_import[:]
        out.opset_import.extend(helper.make_opsetid(d, v) for d, v in versions.items())
        return out


def _toposort(nodes: list[onnx.NodeProto], rank: dict[str, int]) -> list[onnx.NodeProto]:
    """Nodes in an order where each runs after its inputs' producers: original nodes keep their
    graph order (``rank``), nodes the quantizer added go right after the last producer they read."""
    producer = {o: k for k, n in enumerate(nodes) for o in n.output if o}
    deps = [{producer[t] for t in n.input if t in producer} for n in nodes]
    users: list[list[int]] = [[] for _ in nodes]
    for k, ds in enumerate(deps):
        for d in ds:
            users[d].append(k)
    key: dict[int, float] = {}
    heap: list[tuple[float, int]] = []

    def push(k: int) -> None:
        n = nodes[k]
        if n.name in rank:
            key[k] = float(rank[n.name])
        else:
            key[k] = max((key[d] for d in deps[k]), default=-1.0) + 0.5
        heapq.heappush(heap, (key[k], k))

    for k, ds in enumerate(deps):
        if not ds:
            push(k)
    waiting = [len(ds) for ds in deps]
    order = []
    while heap:
        _, k = heapq.heappop(heap)
        order.append(nodes[k])
        for u in users[k]:
            waiting[u] -= 1
            if waiting[u] == 0:
                push(u)
    if len(order) != len(nodes):
        raise QuantizeError("the quantized graph has a cycle")
    return order


# ---------------------------------------------------------------------------- rewrites of the quantized graph


class _Graph:
    """Who produces and who reads each tensor of a graph, and its initializers (for the rewrites
    below, which match the QDQ patterns ``quantize_static`` writes)."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.inits = {t.name: t for t in graph.initializer}
        self.producer = {o: n for n in graph.node for o in n.output if o}
        self.readers: dict[str, list[onnx.NodeProto]] = {}
        for n in graph.node:
            for t in n.input:
                self.readers.setdefault(t, []).append(n)
        self.outputs = {o.name for o in graph.output}

    def only_reader(self, name: str, op_type: str) -> onnx.NodeProto | None:
        """The node that reads ``name`` if it is the only one, of type ``op_type``, and ``name`` is
        not a graph output."""
        rs = self.readers.get(name, [])
        if len(rs) != 1 or rs[0].op_type != op_type or name in self.outputs:
            return None
        return rs[0]

    def const(self, name: str) -> np.ndarray | None:
        return numpy_helper.to_array(self.inits[name]) if name in self.inits else None

    def set_const(self, name: str, value: np.ndarray) -> None:
        self.inits[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(value), name))

    def conv_constants(self, conv: onnx.NodeProto) -> list[str] | None:
        """The initializers of ``conv``'s weight and bias (behind their ``DequantizeLinear``: data,
        scale, zero point), or None unless the conv alone reads them (so they can be rewritten)."""
        found: list[str] = []
        for w_or_b in conv.input[1:3]:
            if not w_or_b:
                continue
            src = self.producer.get(w_or_b)
            if src is not None and src.op_type != "DequantizeLinear" or len(self.readers.get(w_or_b, [])) != 1:
                return None
            for name in src.input if src is not None else [w_or_b]:
                if not name:
                    continue
                if name not in self.inits or len(self.readers.get(name, [])) != 1:
                    return None
                found.append(name)
        return found

    def weight(self, conv: onnx.NodeProto) -> np.ndarray | None:
        """``conv``'s weight as stored (int8 behind its ``DequantizeLinear``), if a constant."""
        src = self.producer.get(conv.input[1])
        return self.const(src.input[0]) if src is not None else self.const(conv.input[1])


def _channels_last_shuffles(model: onnx.ModelProto) -> int:
    """Rewrite each quantized pixel shuffle of ``model`` (a ``Conv`` whose uint8 output goes
    through ``DequantizeLinear → DepthToSpace → QuantizeLinear`` with the same scale and zero
    point) into the same shuffle on the uint8 tensor in channels-last layout, which ONNX Runtime
    runs between its NHWC ``QLinearConv`` nodes without leaving NHWC; returns how many.

    The shuffle becomes ``Transpose(0,2,3,1) → Reshape [N, H, W, r, r, C] → Transpose(0,1,3,2,4,5)
    → Reshape [N, rH, rW, C] → Transpose(0,3,1,2)`` (the last shape from ``Shape``: the input size
    is free). Its outer transposes cancel against the ones ORT's NHWC transformer puts around each
    ``QLinearConv``, and the middle one moves whole runs of ``r·C`` bytes because the conv's output
    channels are permuted from PyTorch's ``CRD`` order (channel ``c·r² + i·r + j``) to ``DCR``
    (``(i·r + j)·C + c``): the int8 filters, their scales and zero points and the int32 bias, rows
    permuted. The values computed are the same, bit for bit."""
    g = model.graph
    ix = _Graph(g)
    producer, only_reader, const = ix.producer, ix.only_reader, ix.const

    def same_qparams(a: onnx.NodeProto, b: onnx.NodeProto) -> bool:
        pa = [const(t) for t in a.input[1:3]]
        pb = [const(t) for t in b.input[1:3]]
        return len(pa) == len(pb) == 2 and all(
            x is not None and y is not None and x.shape == () and x.dtype == y.dtype and np.array_equal(x, y)
            for x, y in zip(pa, pb)
        )

    count = 0
    for d2s in [n for n in g.node if n.op_type == "DepthToSpace"]:
        attrs = {a.name: helper.get_attribute_value(a) for a in d2s.attribute}
        r = int(attrs.get("blocksize", 0))
        mode = attrs.get("mode", b"DCR")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        dq = producer.get(d2s.input[0])
        q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        conv = producer.get(q.input[0]) if q is not None and q.op_type == "QuantizeLinear" else None
        q2 = only_reader(d2s.output[0], "QuantizeLinear")
        if r < 2 or conv is None or conv.op_type != "Conv" or q2 is None:
            continue
        if not same_qparams(q, q2) or not same_qparams(q, dq):
            continue
        if only_reader(conv.output[0], "QuantizeLinear") is None or only_reader(q.output[0], "DequantizeLinear") is None:
            continue
        if only_reader(dq.output[0], "DepthToSpace") is None:
            continue
        # The conv's per-output-channel constants: DequantizeLinear'd initializers read by it alone.
        constants = ix.conv_constants(conv)
        weight = ix.weight(conv)
        if constants is None or weight is None or weight.shape[0] % (r * r):
            continue
        rows = [name for name in constants if ix.inits[name].dims and ix.inits[name].dims[0] > 1]
        k = weight.shape[0]
        if mode not in ("CRD", "DCR") or any(ix.inits[name].dims[0] != k for name in rows):
            continue
        if mode == "CRD":
            c = k // (r * r)
            perm = np.arange(k).reshape(c, r * r).T.reshape(-1)  # new channel (i*r + j)*C + c <- c*r*r + i*r + j
            for name in rows:
                ix.set_const(name, const(name)[perm])
        base = f"{d2s.name or d2s.output[0]}/channels_last"
        x, y = q.output[0], q2.output[0]
        tensor = {k_: f"{base}/{k_}" for k_ in ("nhwc", "6d", "6d_t", "shape", "shape_r", "shape_out", "out")}
        g.initializer.extend([
            numpy_helper.from_array(np.array([0, 0, 0, r, r, -1], np.int64), f"{base}/split_shape"),
            numpy_helper.from_array(np.array([1, r, r, 1], np.int64), f"{base}/mul"),
            numpy_helper.from_array(np.array([1, 1, 1, r * r], np.int64), f"{base}/div"),
        ])

        def node(op: str, ins: list[str], out: str, name: str, **attrs: Any) -> onnx.NodeProto:
            return helper.make_node(op, ins, [out], name=f"{base}/{name}", **attrs)

        nodes = [
            node("Transpose", [x], tensor["nhwc"], "to_nhwc", perm=[0, 2, 3, 1]),
            node("Reshape", [tensor["nhwc"], f"{base}/split_shape"], tensor["6d"], "split"),
            node("Transpose", [tensor["6d"]], tensor["6d_t"], "shuffle", perm=[0, 1, 3, 2, 4, 5]),
            node("Shape", [tensor["nhwc"]], tensor["shape"], "shape"),
            node("Mul", [tensor["shape"], f"{base}/mul"], tensor["shape_r"], "shape_mul"),
            node("Div", [tensor["shape_r"], f"{base}/div"], tensor["shape_out"], "shape_div"),
            node("Reshape", [tensor["6d_t"], tensor["shape_out"]], tensor["out"], "merge"),
            node("Transpose", [tensor["out"]], y, "to_nchw", perm=[0, 3, 1, 2]),
        ]
        at = list(g.node).index(dq)
        for n in (dq, d2s, q2):
            g.node.remove(n)
        for i, n in enumerate(nodes):
            g.node.insert(at + i, n)
        count += 1
    if count:
        live = {t for n in g.node for t in n.input}
        keep = [t for t in g.initializer if t.name in live]
        del g.initializer[:]
        g.initializer.extend(keep)
    return count


#: MLAS' indirect u8s8 convolution ("ConvSym") needs this many output channels; below it
#: ``QLinearConv`` runs as a whole-image im2col + GEMM (see Choices).
MIN_CONV_CHANNELS = 16


def _pad_narrow_convs(model: onnx.ModelProto, channels: int = MIN_CONV_CHANNELS) -> dict[str, tuple[int, int]]:
    """Give each quantized ``Conv`` of ``model`` with fewer than ``channels`` output channels
    zero filters up to ``channels`` and drop their outputs again from its uint8 output with a
    ``Split`` on the channel axis, so that ONNX Runtime runs it with MLAS' fast kernel (see the
    module doc, Choices); returns {layer: (output channels, padded)}.

    Only the exact pattern ``quantize_static`` writes is rewritten: a 2-D ``Conv`` of one group
    with a kernel wider than 1x1 (a 1x1 conv needs no im2col, and its fallback is as fast),
    reading a per-tensor uint8 ``DequantizeLinear``, an int8 weight and an int32 bias (if any)
    behind ``DequantizeLinear`` nodes and initializers that it alone reads (one scale per tensor
    or per output channel), whose output only a per-tensor uint8 ``QuantizeLinear`` reads, whose
    output only one ``DequantizeLinear`` reads (so a conv before a pixel shuffle, rewritten by
    :func:`_channels_last_shuffles`, is left alone). It becomes::

        Conv [M + P filters] → QuantizeLinear → Split(axis 1, [M, P]) → (first part) DequantizeLinear

    The ``P`` extra filters and their biases dequantize to zeros: int8 / int32 zeros with zero
    point 0 (their per-channel scales repeat the last channel's, so every requantization scale
    stays positive), or the zero point where it is one per tensor; so their outputs are the
    output zero point, and the ``Split``'s second output is read by
    nothing. A conv's output channels are computed independently, so the ``M`` real ones are the
    same bit for bit. The two tensors that widen get new names (``…/padded``); every tensor of
    the original graph keeps its name, shape and value."""
    g = model.graph
    ix = _Graph(g)

    def qparams(node: onnx.NodeProto | None, op_type: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The constant scale and zero point of ``node``, an ``op_type``."""
        if node is None or node.op_type != op_type or len(node.input) < 3:
            return None
        scale, zero = ix.const(node.input[1]), ix.const(node.input[2])
        return None if scale is None or zero is None else (scale, zero)

    def per_tensor_uint8(node: onnx.NodeProto | None, op_type: str) -> bool:
        p = qparams(node, op_type)
        return p is not None and p[0].shape == p[1].shape == () and p[1].dtype == np.uint8

    def rows(node: onnx.NodeProto | None, dtype: type, m: int) -> bool:
        """``node`` dequantizes a constant ``dtype`` [m, ...] with one scale for all or per row."""
        p = qparams(node, "DequantizeLinear")
        data = ix.const(node.input[0]) if p is not None else None
        if data is None or data.dtype != dtype or data.shape[:1] != (m,):
            return False
        scale, zero = p
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 1)
        if scale.shape == ():
            return zero.shape == ()
        return scale.shape == (m,) and zero.shape in ((), (m,)) and (axis == 0 or m == 1)

    padded: dict[str, tuple[int, int]] = {}
    for conv in [n for n in g.node if n.op_type == "Conv" and n.domain in ("", "ai.onnx")]:
        group = next((helper.get_attribute_value(a) for a in conv.attribute if a.name == "group"), 1)
        x_dq, w_dq = (ix.producer.get(t) for t in conv.input[:2])
        b_dq = ix.producer.get(conv.input[2]) if len(conv.input) > 2 and conv.input[2] else None
        q = ix.only_reader(conv.output[0], "QuantizeLinear")
        dq = ix.only_reader(q.output[0], "DequantizeLinear") if q is not None else None
        weight = ix.weight(conv)
        if group != 1 or weight is None or weight.ndim != 4 or weight.shape[0] >= channels:
            continue
        if weight.shape[2] * weight.shape[3] == 1 or ix.conv_constants(conv) is None:
            continue  # a 1x1 conv is a GEMM without im2col: as fast with few output channels
        m = weight.shape[0]
        if not (per_tensor_uint8(x_dq, "DequantizeLinear") and per_tensor_uint8(q, "QuantizeLinear")
                and per_tensor_uint8(dq, "DequantizeLinear") and rows(w_dq, np.int8, m)):
            continue
        if (b_dq is not None and not rows(b_dq, np.int32, m)) or (b_dq is None and len(conv.input) > 2 and conv.input[2]):
            continue  # a bias, but not an int32 one behind a DequantizeLinear
        extra = channels - m
        for node in [w_dq] + ([b_dq] if b_dq is not None else []):
            data, scale, zero = (ix.const(t) for t in node.input[:3])
            fill = zero if scale.ndim == 0 else 0  # values that dequantize to 0
            ix.set_const(node.input[0], np.concatenate([data, np.full((extra, *data.shape[1:]), fill, data.dtype)]))
            if scale.ndim:  # one per channel: the extra ones' scales repeat the last (positive) one
                ix.set_const(node.input[1], np.concatenate([scale, np.repeat(scale[-1:], extra)]))
                ix.set_const(node.input[2], np.concatenate([np.broadcast_to(zero, (m,)), np.zeros(extra, zero.dtype)]))
                kept = [a for a in node.attribute if a.name != "axis"]
                del node.attribute[:]
                node.attribute.extend(kept + [helper.make_attribute("axis", 0)])
        wide_f, wide_u8 = f"{conv.output[0]}/padded", f"{q.output[0]}/padded"
        sizes, rest = f"{q.output[0]}/split", f"{q.output[0]}/padding"
        g.initializer.append(numpy_helper.from_array(np.array([m, extra], np.int64), sizes))
        split = helper.make_node("Split", [wide_u8, sizes], [q.output[0], rest], name=f"{conv.name or wide_f}/drop_padding", axis=1)
        conv.output[0] = q.input[0] = wide_f
        q.output[0] = wide_u8
        g.node.insert(list(g.node).index(q) + 1, split)
        padded[_module_of(conv.name) or conv.name] = (m, channels)
    return padded


# ---------------------------------------------------------------------------- quantization


def _element_types(proto: onnx.ModelProto) -> dict[str, int]:
    """Element types ONNX shape inference finds (it does not know our ops: their outputs and
    what follows them are missing, and are float32)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # noqa: BLE001 - inference is a hint here
        return {}
    g = inferred.graph
    return {
        v.name: v.type.tensor_type.elem_type
        for v in list(g.value_info) + list(g.input) + list(g.output)
        if v.type.tensor_type.elem_type
    }


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """ORT's quantizer logs advice (pre-processing) through the root logger; keep it off the CLI."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_head_tail(
    proto: onnx.ModelProto,
    model: nn.Module,
    calib: str | Path | Sequence[str | Path] | None = None,
    *,
    custom_ops: bool = True,
    crops: int = CALIB_CROPS,
    crop_size: int = CALIB_CROP,
) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """``proto`` (exported from ``model``) with its FP head and tail quantized to INT8 (see the
    module doc); returns the model and a description of the quantization (for the metadata).

    ``calib``: a folder of photos or a list of image files (default: the packaged photos, minus
    the demo's held-out ones). ``custom_ops``: whether ``proto`` needs our op library to run."""
    import onnxruntime
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    from ..runtime.session import make_session

    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        raise QuantizeError(f"--tail int8 needs ONNX opset >= {MIN_OPSET} (per-channel DequantizeLinear), not {opset}")
    head, tail = head_tail_convs(model)
    cut = _Cut(proto, head, tail)
    cfg = getattr(model, "config", None) or {}
    scale = int(cfg.get("scale", getattr(model, "scale", 1)))
    channels = int(cfg.get("num_in_ch", 3))
    photos = calibration_photos(calib)

    # Our session computes what crosses the cut into the head/tail, crop by crop.
    capture = onnx.ModelProto()
    capture.CopyFrom(proto)
    have = {o.name for o in capture.graph.output} | {i.name for i in capture.graph.input}
    known = _element_types(proto)
    for t in cut.inputs + cut.outputs:
        if t not in have:
            elem = known.get(t, onnx.TensorProto.FLOAT)  # what our ops output (not inferred)
            capture.graph.output.append(helper.make_tensor_value_info(t, elem, None))
    session = make_session(capture, register_ops=custom_ops)
    input_name = session.get_inputs()[0].name
    names = [o.name for o in session.get_outputs()]

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        values = dict(zip(names, session.run(names, {input_name: x})))
        values[input_name] = x
        return values

    crop_iter = calibration_crops(photos, scale, channels, crops, crop_size)
    first = run(next(crop_iter))
    types = {t: (helper.np_dtype_to_tensor_dtype(first[t].dtype), first[t].ndim) for t in cut.inputs + cut.outputs}

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.pending: Iterator[dict[str, np.ndarray]] = self._feeds()

        @staticmethod
        def _feeds() -> Iterator[dict[str, np.ndarray]]:
            yield {t: first[t] for t in cut.inputs}
            for x in crop_iter:
                values = run(x)
                yield {t: values[t] for t in cut.inputs}

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.pending, None)

    sub = cut.submodel(types)
    g = sub.graph
    to_quantize = [n.name for n in g.node if n.op_type in QUANT_OPS]
    unnamed = [n for n in g.node if not n.name]
    for k, n in enumerate(unnamed):  # the quantizer selects nodes by name
        n.name = f"head_tail_{n.op_type}_{k}"
        if n.op_type in QUANT_OPS:
            to_quantize.append(n.name)
    with tempfile.TemporaryDirectory(prefix="scales_edge_q_") as tmp, _quiet_quantizer():
        out_path = Path(tmp) / "quantized.onnx"
        quantize_static(
            sub,
            str(out_path),
            Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(QUANT_OPS),
            nodes_to_quantize=to_quantize,
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        quantized = onnx.load(str(out_path))
    shuffles = _channels_last_shuffles(quantized)
    padded = _pad_narrow_convs(quantized)
    result = cut.stitch(quantized)
    info = {
        "format": "QDQ",
        "weights": "int8, per output channel, 7-bit range (reduce_range)",
        "activations": "uint8",
        "calibration": "MinMax",
        "pixel_shuffles": f"{shuffles} channels-last (uint8, filters in DCR order)" if shuffles else "none",
        "padded_convs": {name: f"{m} -> {k} output channels, zero filters dropped by a Split" for name, (m, k) in padded.items()},
        "calibration_photos": [Path(p).name for p in photos] if len(photos) <= 16 else len(photos),
        "calibration_crops": f"{crops} x {crop_size}x{crop_size} LR px",
        "head": head,
        "tail": tail,
        "onnxruntime": onnxruntime.__version__,
    }
    return result, info

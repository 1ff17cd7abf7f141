"""The tiling plan: the graphs a tiled run executes, from one graph analysis, for two executors.

Tiling an image so that the result equals a whole-image run with bounded memory
(:mod:`scales_edge.runtime.tiling` explains how) runs graphs derived from the exported one. This
module builds them, from :func:`~scales_edge.runtime.tiling.model_geometry`'s analysis of the
model (fused ``ScalesConv2d`` expanded first, so every global pool is a graph node):

* ``stats_local`` / ``stats_override`` (models with global pools): the LR body up to the pools,
  returning each pool's input summed over a crop of the tile, with each tile pooling itself or
  with the pools' values fed (:func:`~scales_edge.runtime.tilegraph.statistics_model`);
* ``body`` and ``tail``: the model with the pools' values as inputs, cut in two before its
  upsampling tail (:func:`find_tail`). An output tile runs the body on its LR region, then the
  tail on sub-tiles of it (:meth:`TilingPlan.tail_tiles`): the tail's tensors are ``scale**2``
  times larger per LR pixel than the body's (SRResNet x4 at 256-px tiles: 330 MB each in ONNX
  Runtime's blocked layout), and its receptive field is a few pixels, so sub-tiles cost little
  recomputation. Convolutions give every pixel the same arithmetic wherever it sits in the
  tensor, so the sub-tiled tail returns the same float bits as the whole tile's;
* ``apply`` instead of the two when no cut qualifies.

The Python tiler (:class:`~scales_edge.runtime.tilerun.TiledRunner`) builds a plan and runs it.
``scales-edge export`` stores the same plan in the model's metadata under :data:`PLAN_KEY`
(:func:`plan_metadata`), and the native runner ``scales-edge-run`` (runner/) executes it: the
same graphs, feeds, tile order, float64 sums and convergence test, so its output bytes equal
``scales-edge upscale``'s without a second implementation of the graph analysis in C++.

The metadata value is JSON (format :data:`PLAN_FORMAT`): ``format``; ``graph_crc32`` (CRC-32 of the
serialized ``GraphProto`` the plan was made from: a runner refuses a plan that does not match the
graph beside it); ``input`` (the image input); ``scale``; ``radius`` and ``exact_overlap`` (null
when unbounded); ``window`` (0 for CNNs); ``min_side``; ``pools`` (``output``, ``keepdims``,
``scale`` of each global pool, in graph order); ``tail`` (null, or ``features``: the tensors the
body hands the tail besides the image, ``radius`` and ``overlap`` of the tail in LR pixels);
``graphs``: for each kind above, ``model`` (base64 of the zlib-compressed ``ModelProto`` without
the initializers it shares with the exported graph) and ``initializers`` (the names of those, to
take from the exported graph).
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from dataclasses import dataclass
from typing import Callable, Sequence

import onnx
from onnx import helper

from .tilegraph import _prune, pooled_input_model, statistics_model
from .tiling import Geometry, Tile, TilingError, _constants, _cuts, analyze, model_geometry
from .unfuse import has_fused, unfuse

__all__ = ["PLAN_FORMAT", "PLAN_KEY", "TailSplit", "TilingPlan", "find_tail", "plan_metadata"]

#: Metadata key of the plan in an exported model, and the plan's format version.
PLAN_KEY = "scales_edge.tiling"
PLAN_FORMAT = 1
#: Largest tail overlap (LR pixels) worth a cut: more, and the sub-tiles recompute too much.
TAIL_MAX_OVERLAP = 8
#: Cut positions tried, counted from the end of the graph (the tail is a few nodes).
_TAIL_SEARCH = 64


@dataclass(frozen=True)
class TailSplit:
    """Where the model with pools as inputs is cut: nodes ``[index:]`` are the tail."""

    index: int
    features: tuple[str, ...]  # tensors of the body the tail reads (LR), besides the image input
    radius: float  # the tail's receptive-field radius in LR pixels
    overlap: int  # LR pixels a tail sub-tile sees beyond its core (exact)


def _tail_model(apply: onnx.ModelProto, index: int, inputs: Sequence[str]) -> onnx.ModelProto:
    """Nodes ``[index:]`` of ``apply`` as a model whose graph inputs are ``inputs``."""
    g = apply.graph
    tail = onnx.ModelProto()
    tail.CopyFrom(apply)
    del tail.graph.node[:]
    tail.graph.node.extend(g.node[index:])
    del tail.graph.input[:]
    fed = {i.name: i for i in g.input}
    for name in inputs:
        tail.graph.input.append(fed.get(name) or helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    _prune(tail.graph)
    return tail


def find_tail(
    apply: onnx.ModelProto, image: str, scale: float, probe: Callable[[list[str]], dict[str, tuple]] | None
) -> TailSplit | None:
    """The cut of ``apply`` (the model with its pools' values as inputs) before its upsampling tail.

    A cut at node ``c`` makes nodes ``[c:]`` the tail. It qualifies when :func:`analyze` can follow
    the tail from the tensors it reads (the body's, taken at LR resolution, and the image), the
    tail does all of the model's upsampling (its scale is the model's) and its exact overlap is at
    most :data:`TAIL_MAX_OVERLAP`. ``probe(names)`` returns the shapes and element sizes of the
    named tensors in a run of the model on a small image (:meth:`TilingPlan._probe`): a cut
    qualifies only if every tensor it hands over has the image's height and width, and the cut
    handing over the fewest bytes per pixel wins (SRResNet: the body's output, not the 4x wider
    input of the first pixel shuffle), then the one with the smallest tail. ``None`` if no cut
    qualifies (or ``probe`` is None or fails)."""
    g = apply.graph
    nodes = list(g.node)
    consts = set(_constants(apply))
    pooled = {i.name for i in g.input} - {image} - consts  # the pools' values: not spatial
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    candidates: list[tuple[int, list[str], Geometry]] = []
    for c in range(len(nodes) - 1, max(-1, len(nodes) - 1 - _TAIL_SEARCH), -1):
        made = {o for n in nodes[c:] for o in n.output}
        reads: list[str] = []
        for n in nodes[c:]:
            for t in n.input:
                if t and t not in made and t not in consts and t not in reads:
                    reads.append(t)
        spatial = [t for t in reads if t == image or producer.get(t, len(nodes)) < c]
        if spatial == [image] or len(spatial) + sum(t in pooled for t in reads) != len(reads):
            continue
        try:
            geo = analyze(_tail_model(apply, c, reads), inputs=spatial)
        except TilingError:
            continue
        if abs(geo.scale - scale) > 1e-9 or geo.pools or not geo.exact or geo.exact_overlap > TAIL_MAX_OVERLAP:
            continue
        candidates.append((c, spatial, geo))
    if not candidates or probe is None:
        return None
    try:
        shapes = probe(sorted({t for _, spatial, _ in candidates for t in spatial if t != image}))
    except Exception:  # noqa: BLE001 - no probe run, no cut: tiles run the model whole
        return None
    best: tuple | None = None
    for c, spatial, geo in candidates:
        info = [shapes.get(t) for t in spatial if t != image]
        if any(i is None for i in info):
            continue
        cost = sum(channels * size for channels, size in info)
        key = (cost, geo.exact_overlap, geo.radius, -c)
        if best is None or key < best[0]:
            best = (key, TailSplit(c, tuple(t for t in spatial if t != image), geo.radius, geo.exact_overlap))
    return None if best is None else best[1]


class TilingPlan:
    """The graphs of a tiled run of ``proto`` and how to cut an image for them. ``probe=False``
    skips the ONNX Runtime run that measures the tensors a body/tail cut would hand over, and so
    the cut (tiles then run the model with pools as inputs whole: more memory, same output).

    Raises :class:`~scales_edge.runtime.tiling.TilingError` if the model cannot be tiled."""

    def __init__(self, proto: onnx.ModelProto, *, probe: bool = True) -> None:
        self.source = proto
        # A fused ScalesConv2d pools inside the op: expanded, its pool is a node like the others.
        # (The fused linears and attention of Transformers pool nothing: they stay fused.)
        convs = ("ScalesConv2d",)
        self.proto = unfuse(proto, convs) if has_fused(proto, convs) else proto
        self.geometry: Geometry = model_geometry(self.proto)
        inits = {t.name for t in self.proto.graph.initializer}
        self.input_name = next(i.name for i in self.proto.graph.input if i.name not in inits)
        self._models: dict[str, onnx.ModelProto] = {}
        self.tail: TailSplit | None = find_tail(
            self.model("apply"), self.input_name, self.geometry.scale, self._probe if probe else None
        )

    def _probe(self, names: list[str]) -> dict[str, tuple[int, int] | None]:
        """(channels, bytes per element) of each named tensor of the model whose height and width
        are the input's, from one ONNX Runtime run on a small random image (None for the rest)."""
        import numpy as np

        from .session import make_session

        model = onnx.ModelProto()
        model.CopyFrom(self.proto)
        for name in names:
            model.graph.output.append(onnx.ValueInfoProto(name=name))
        sess = make_session(model, threads=1)
        shape = sess.get_inputs()[0].shape
        channels = shape[1] if len(shape) == 4 and isinstance(shape[1], int) else 3
        side = max(16, self.geometry.min_side, 2 * self.geometry.window)
        x = np.random.default_rng(0).random((1, channels, side, side), dtype=np.float32)
        outs = sess.run(names, {self.input_name: x})
        return {
            n: (int(a.shape[1]), int(a.dtype.itemsize)) if a.ndim == 4 and a.shape[2:] == (side, side) else None
            for n, a in zip(names, outs)
        }

    @property
    def kinds(self) -> list[str]:
        """The graphs a tiled run uses, in the order it uses them."""
        stats = ["stats_local", "stats_override"] if self.geometry.pools else []
        return stats + (["body", "tail"] if self.tail else ["apply"])

    def model(self, kind: str) -> onnx.ModelProto:
        """The graph of one kind (``apply``, ``stats_local``, ``stats_override``, ``body``, ``tail``)."""
        if kind not in self._models:
            pools = self.geometry.pools
            if kind == "apply":
                model = pooled_input_model(self.proto, pools)
            elif kind in ("stats_local", "stats_override"):
                model = statistics_model(self.proto, pools, override=(kind == "stats_override"))
            elif kind in ("body", "tail") and self.tail is not None:
                apply = self.model("apply")
                if kind == "body":
                    model = onnx.ModelProto()
                    model.CopyFrom(apply)
                    del model.graph.output[:]
                    for name in self.tail.features:
                        model.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
                    _prune(model.graph)
                else:
                    fed = {i.name for i in apply.graph.input}
                    reads = [self.input_name, *self.tail.features] + [p.output for p in pools if p.output in fed]
                    model = _tail_model(apply, self.tail.index, reads)
            else:
                raise ValueError(f"no {kind!r} graph in this plan")
            self._models[kind] = model
        return self._models[kind]

    # ------------------------------------------------------------------ tile geometry
    def stats_tile(self, tile: int) -> int:
        """Core side of the statistics passes' tiles (see ``TiledRunner.stats_tile``): ``tile``
        times the scale over the finest pool's resolution (pools at the output resolution, as in
        the paper scope's binary HR conv, give the output tiles' size)."""
        if self.geometry.window:
            return tile
        finest = max((p.scale for p in self.geometry.pools), default=1.0)
        return tile * max(1, int(round(self.geometry.scale / max(finest, 1.0))))

    def tail_tile(self, tile: int) -> int:
        """Core side (LR pixels) of the tail's sub-tiles: ``2 * tile`` output pixels."""
        return max(1, 2 * tile // max(1, int(round(self.geometry.scale))))

    def tail_tiles(self, t: Tile, tile: int) -> list[Tile]:
        """Sub-tiles of output tile ``t`` for the tail: cores cut from ``t``'s core, grown by the
        tail's overlap and clipped to ``t``'s region (the body output the tail reads)."""
        assert self.tail is not None
        side, ov = self.tail_tile(tile), self.tail.overlap
        out = []
        for y0, y1 in _cuts(t.y1 - t.y0, side):
            for x0, x1 in _cuts(t.x1 - t.x0, side):
                ya, yb, xa, xb = t.y0 + y0, t.y0 + y1, t.x0 + x0, t.x0 + x1
                out.append(Tile(ya, yb, xa, xb, max(t.ry0, ya - ov), min(t.ry1, yb + ov),
                                max(t.rx0, xa - ov), min(t.rx1, xb + ov)))
        return out

    # ------------------------------------------------------------------ the stored form
    def to_json(self) -> str:
        """The plan as :data:`PLAN_KEY`'s metadata value (see the module docstring)."""
        g = self.geometry
        shared = {t.name: t for t in self.source.graph.initializer}
        graphs = {}
        for kind in self.kinds:
            model = onnx.ModelProto()
            model.CopyFrom(self.model(kind))
            del model.metadata_props[:]
            names = [t.name for t in model.graph.initializer
                     if t.name in shared and t.SerializeToString() == shared[t.name].SerializeToString()]
            keep = [t for t in model.graph.initializer if t.name not in set(names)]
            del model.graph.initializer[:]
            model.graph.initializer.extend(keep)
            blob = zlib.compress(model.SerializeToString(), 9)
            graphs[kind] = {"model": base64.b64encode(blob).decode("ascii"), "initializers": names}
        tail = None
        if self.tail is not None:
            tail = {"features": list(self.tail.features), "radius": self.tail.radius, "overlap": self.tail.overlap}
        plan = {
            "format": PLAN_FORMAT,
            "graph_crc32": zlib.crc32(self.source.graph.SerializeToString()),
            "input": self.input_name,
            "scale": int(round(g.scale)),
            "radius": g.radius if g.exact else None,
            "exact_overlap": g.exact_overlap if g.exact else None,
            "window": g.window,
            "min_side": g.min_side,
            "pools": [{"output": p.output, "keepdims": p.keepdims, "scale": p.scale} for p in g.pools],
            "tail": tail,
            "graphs": graphs,
        }
        return json.dumps(plan, separators=(",", ":"))


def plan_metadata(proto: onnx.ModelProto) -> str | None:
    """:data:`PLAN_KEY`'s value for ``proto`` (its metadata must be final: the analysis reads the
    scale and configuration), or ``None`` if the model cannot be tiled."""
    try:
        plan = TilingPlan(proto)
    except TilingError:
        return None
    if not math.isfinite(plan.geometry.scale) or plan.geometry.scale < 1:
        return None
    return plan.to_json()

"""The Python tiler: :class:`TiledRunner` runs a :class:`~scales_edge.runtime.tileplan.TilingPlan`
on an image tile by tile (the method: :mod:`scales_edge.runtime.tiling`'s docstring)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import onnx

from ..errors import ScalesEdgeError
from .tilegraph import _crop_input
from .tiling import Tile, TilingError, tile_grid

__all__ = ["TiledRunner"]

def _run(sess, outputs, feed):
    """``sess.run`` with ONNX Runtime's errors as :class:`ScalesEdgeError` (one line)."""
    try:
        return sess.run(outputs, feed)
    except Exception as exc:  # onnxruntime raises its own exception types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        shape = next((v.shape for k, v in feed.items() if getattr(v, "ndim", 0) == 4), None)
        raise ScalesEdgeError(f"ONNX Runtime failed on an input of shape {shape}: {first}") from None


Session = Any  # an onnxruntime.InferenceSession
Progress = Callable[[float], None]  # fraction of the image's work done, in [0, 1]


class TiledRunner:
    """Run an SR model on ``[1, C, H, W]`` float32 arrays tile by tile (see the module docstring).

    ``make_session(proto, kind)`` creates an ONNX Runtime session for a graph of kind ``full`` or
    one of the :class:`~scales_edge.runtime.tileplan.TilingPlan`'s (``stats_local``,
    ``stats_override``, and ``body`` + ``tail`` or ``apply``); they are created on first use.
    """

    def __init__(
        self,
        proto: onnx.ModelProto,
        make_session: Callable[[onnx.ModelProto, str], Session],
        full_session: Session | None = None,
        *,
        max_passes: int | None = None,
        tol: float = 3e-4,
        stats_tile: int | None = None,
    ) -> None:
        from .tileplan import TilingPlan

        self.plan = TilingPlan(proto)  # the graphs to run, from the graph analysis
        self.proto = self.plan.proto  # fused ScalesConv2d expanded
        self.geometry = self.plan.geometry
        self._make = make_session
        self._full = full_session
        self._sessions: dict[str, Session] = {}
        self.max_passes = max_passes
        self.tol = tol
        self.stats_tile_override = stats_tile
        self.last_passes = 0  # statistics passes of the last run (0: no global pools)
        inits = {t.name for t in proto.graph.initializer}
        self.input_name = next(i.name for i in proto.graph.input if i.name not in inits)

    # sessions -----------------------------------------------------------------------------
    def _session(self, kind: str) -> Session:
        if kind == "full":
            if self._full is None:
                self._full = self._make(self.proto, kind)
            return self._full
        if kind not in self._sessions:
            self._sessions[kind] = self._make(self.plan.model(kind), kind)
        return self._sessions[kind]

    # the work -----------------------------------------------------------------------------
    def passes_bound(self) -> int:
        """Most statistics passes one image can take (one per pool, plus the first)."""
        n = len(self.geometry.pools)
        return 0 if n == 0 else min(self.max_passes or (n + 1), n + 1)

    def global_means(
        self, x: np.ndarray, tiles: Sequence[Tile], on_step: Callable[[], None] | None = None
    ) -> list[np.ndarray]:
        """The whole image's value of every global pool, computed tile by tile (``tiles`` must
        cover the image; their cores must not overlap)."""
        pools = self.geometry.pools
        h, w = x.shape[2], x.shape[3]
        # A window model pools its *padded* map: the image's bottom and right edges are padded to
        # a multiple of the window. Tiles are aligned to the window grid, so a tile on that edge
        # pads the same rows (columns); its crop takes them in, and the sums are divided by the
        # padded area.
        m = self.geometry.window or 1
        pad_h, pad_w = -h % m, -w % m
        means: list[np.ndarray] | None = None
        self.last_passes = 0
        # One tile covering the image: its own means are the image's, exact after one pass.
        bound = 1 if len(tiles) == 1 else self.passes_bound()
        for it in range(bound):
            sess = self._session("stats_local" if means is None else "stats_override")
            names = {i.name for i in sess.get_inputs()}
            sums: list[np.ndarray] | None = None
            for t in tiles:
                feed = {self.input_name: np.ascontiguousarray(x[:, :, t.ry0 : t.ry1, t.rx0 : t.rx1])}
                ey = t.y1 - t.ry0 + (pad_h if t.y1 == h else 0)
                ex = t.x1 - t.rx0 + (pad_w if t.x1 == w else 0)
                for p in pools:
                    starts, ends = _crop_input(p.scale)
                    feed[starts] = np.array([(t.y0 - t.ry0) * p.scale, (t.x0 - t.rx0) * p.scale], np.int64)
                    feed[ends] = np.array([ey * p.scale, ex * p.scale], np.int64)
                if means is not None:
                    for p, m in zip(pools, means):
                        feed[p.output] = m
                feed = {k: v for k, v in feed.items() if k in names}
                res = _run(sess, [f"__pool_sum_{k}" for k in range(len(pools))], feed)
                if sums is None:
                    sums = [r.astype(np.float64) for r in res]
                else:
                    for acc, r in zip(sums, res):
                        acc += r
                if on_step:
                    on_step()
            assert sums is not None
            new = []
            for p, s in zip(pools, sums):
                mean = (s / ((h + pad_h) * p.scale * (w + pad_w) * p.scale)).astype(np.float32)
                new.append(mean.reshape(mean.shape + (1, 1)) if p.keepdims else mean)
            self.last_passes = it + 1
            # Compared in float64 (numpy's scalar promotion rules differ between versions).
            done = means is not None and all(
                float(np.max(np.abs(a - b))) <= self.tol * max(1.0, float(np.max(np.abs(b)))) for a, b in zip(new, means)
            )
            means = new
            if done:
                break
        return means or []

    def stats_tile(self, tile: int) -> int:
        """Core side of the statistics passes' tiles. They run the graph only up to the last
        pool's input: with a full-precision tail that is the LR body, whose activations per pixel
        are about ``scale**2`` times smaller than the tail's, so ``tile * scale`` keeps their
        memory near the output tiles' and needs fewer, wider tiles (less overlap to recompute,
        and one pass when one tile covers the image). Pools at a higher resolution (the binary
        upsampler and HR convs of the paper's scope pool their inputs at 2x, 4x) shrink the
        factor to ``scale / (highest pool resolution)``: with a pool at the output resolution
        the statistics tiles are the output tiles' size.
        Not for window-attention models: their LR body (attention matrices of every window) is
        what takes the memory, so their statistics tiles are the output tiles' size."""
        if self.stats_tile_override:
            return self.stats_tile_override
        return self.plan.stats_tile(tile)

    def run(
        self,
        x: np.ndarray,
        tile: int,
        overlap: int,
        write: Callable[[Tile, np.ndarray], None],
        on_progress: Progress | None = None,
    ) -> None:
        """Super-resolve ``x`` tile by tile; ``write(tile, y)`` receives each tile's core output
        (``[C, (y1-y0)*s, (x1-x0)*s]`` float32, not clipped). ``tile <= 0`` or an image that fits
        in one tile runs the whole image at once."""
        h, w = x.shape[2], x.shape[3]
        s = int(round(self.geometry.scale))
        if tile <= 0 or (h <= tile and w <= tile):
            y = _run(self._session("full"), None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]
            write(Tile(0, h, 0, w, 0, h, 0, w), y[0])
            if on_progress:
                on_progress(1.0)
            self.last_passes = 0
            return
        align = self.geometry.window or 1
        tiles = tile_grid(h, w, tile, overlap, align)
        pools = self.geometry.pools
        stats_tiles = tile_grid(h, w, self.stats_tile(tile), overlap, align) if pools else []
        bound = 1 if len(stats_tiles) == 1 else self.passes_bound()
        # Progress in units of LR pixels run through the model: a statistics tile costs its area
        # (the body dominates the binary nets' time), an output tile its area times 1.5 (the
        # tail). The number of statistics passes is guessed (3) and the total grows if needed.
        area = lambda t: (t.ry1 - t.ry0) * (t.rx1 - t.rx0)  # noqa: E731
        stats_work = sum(area(t) for t in stats_tiles)
        apply_work = 1.5 * sum(area(t) for t in tiles)
        state = {"done": 0.0, "total": stats_work * min(bound, 3) + apply_work, "left": apply_work}

        def step(amount: float, applying: bool = False) -> None:
            state["done"] += amount
            if applying:
                state["left"] -= amount
            state["total"] = max(state["total"], state["done"] + state["left"])
            if on_progress:
                on_progress(min(1.0, state["done"] / state["total"]))

        it = iter(stats_tiles * bound)
        means = self.global_means(x, stats_tiles, lambda: step(area(next(it)))) if pools else []
        # The statistics sessions' memory arenas go back before the output tiles run.
        for kind in ("stats_local", "stats_override"):
            self._sessions.pop(kind, None)
        state["total"] = state["done"] + state["left"]
        for t in tiles:
            feed = {self.input_name: np.ascontiguousarray(x[:, :, t.ry0 : t.ry1, t.rx0 : t.rx1])}
            for p, m in zip(pools, means):
                feed[p.output] = m
            if self.plan.tail is None:
                self._apply_tile(self._session("apply"), t, feed, s, write)
            else:
                self._apply_split(t, tile, feed, s, write)
            step(1.5 * area(t), applying=True)

    def _apply_tile(self, sess: Session, t: Tile, feed: dict, s: int, write: Callable[[Tile, np.ndarray], None]) -> None:
        """One tile (or tail sub-tile) through ``sess``; its core goes to ``write``."""
        names = {i.name for i in sess.get_inputs()}
        y = _run(sess, None, {k: v for k, v in feed.items() if k in names})[0][0]
        oy, ox = (t.y0 - t.ry0) * s, (t.x0 - t.rx0) * s
        write(t, y[:, oy : oy + (t.y1 - t.y0) * s, ox : ox + (t.x1 - t.x0) * s])

    def _apply_split(self, t: Tile, tile: int, feed: dict, s: int, write: Callable[[Tile, np.ndarray], None]) -> None:
        """One tile as the plan's body on its region, then the tail on sub-tiles of it."""
        split = self.plan.tail
        assert split is not None
        body, tail = self._session("body"), self._session("tail")
        names = {i.name for i in body.get_inputs()}
        feats = _run(body, list(split.features), {k: v for k, v in feed.items() if k in names})
        region = (t.ry1 - t.ry0, t.rx1 - t.rx0)
        for name, f in zip(split.features, feats):
            if f.ndim != 4 or f.shape[2:] != region:
                raise TilingError(f"the tiling plan's cut tensor {name!r} is {f.shape}, not at the input's resolution {region}")
        x = feed[self.input_name]
        for sub in self.plan.tail_tiles(t, tile):
            ys, xs = slice(sub.ry0 - t.ry0, sub.ry1 - t.ry0), slice(sub.rx0 - t.rx0, sub.rx1 - t.rx0)
            sub_feed = {k: v for k, v in feed.items() if k != self.input_name}
            sub_feed[self.input_name] = np.ascontiguousarray(x[:, :, ys, xs])
            for name, f in zip(split.features, feats):
                sub_feed[name] = np.ascontiguousarray(f[:, :, ys, xs])
            self._apply_tile(tail, sub, sub_feed, s, write)

    def run_array(self, x: np.ndarray, tile: int, overlap: int) -> np.ndarray:
        """:meth:`run` assembled into one ``[1, C, sH, sW]`` float32 array."""
        s = int(round(self.geometry.scale))
        out: np.ndarray | None = None

        def write(t: Tile, y: np.ndarray) -> None:
            nonlocal out
            if out is None:
                out = np.zeros((1, y.shape[0], x.shape[2] * s, x.shape[3] * s), np.float32)
            out[0, :, t.y0 * s : t.y1 * s, t.x0 * s : t.x1 * s] = y

        self.run(x, tile, overlap, write)
        assert out is not None
        return out

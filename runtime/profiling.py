"""Where the time of one ONNX Runtime run goes: kernel time per op type and per group of ops.

A profiled session (``SessionOptions.enable_profiling``) writes a JSON trace: one event per node
and run with ``cat == "Node"``, the node's name (``<node>_kernel_time``; older ORT versions add
``<node>_fence_before``/``_fence_after`` markers, which are skipped), ``args.op_name`` and ``dur`` in
microseconds, plus ``cat == "Session"`` events (``model_run`` per run, loading, initialisation).
:func:`summarize` averages the node events over the profiled runs and sums them per op type and per
group; :func:`node_group` is the grouping rule. :func:`profile_model` runs a model in a separate
profiled session, so profiling never touches the timed runs of :mod:`.bench`.
"""

from __future__ import annotations

import bisect
import json
import os
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Mapping

import numpy as np

from ..errors import ScalesEdgeError
from .library import kernel_choices
from .session import DOMAIN, load_model, make_session

BINARY = "binary ops"
BRANCHES = "binary-layer FP branches"
ATTENTION = "window attention"
FP = "FP head/tail"
LAYOUT = "layout"
#: The groups, in the order they are reported.
GROUPS = (BINARY, BRANCHES, ATTENTION, FP, LAYOUT)
#: ``scales_edge`` ops that are no binary layer: the fused window attention (FP arithmetic).
ATTENTION_OP_TYPES = frozenset({"WindowAttention"})

#: Op types that only move, copy, reinterpret or describe data (no arithmetic on values), including
#: the reorders ORT's NCHWc layout transformer inserts. ``DepthToSpace`` (pixel shuffle) is not here:
#: it is part of the FP upsampler.
LAYOUT_OP_TYPES = frozenset({
    "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice", "Pad",
    "Cast", "Expand", "Tile", "Gather", "GatherElements", "GatherND", "Identity", "Shape", "Size",
    "ReorderInput", "ReorderOutput", "MemcpyToHost", "MemcpyFromHost",
})

_KERNEL_SUFFIX = "_kernel_time"
_MARKER_SUFFIXES = ("_fence_before", "_fence_after")


class ProfileError(ScalesEdgeError):
    """An ORT profile that cannot be read or holds no node timings."""


def module_path(node_name: str) -> str | None:
    """The PyTorch module a node came from, from the name the TorchScript ONNX exporter gives it.

    The exporter names a node ``/<scope>/.../<Op>_<k>``, one scope per module whose ``forward`` ran,
    each the module's name without its parent's prefix except that a numeric atom keeps the name
    before it (``/body/body.0/conv1/Mul`` is in ``body.0.conv1``; a ModuleList does not run, so
    ``/layers.0/residual_group/blocks.1/attn/Softmax`` is in ``layers.0.residual_group.blocks.1.attn``).
    ORT keeps that prefix when it fuses or re-lays nodes (``.../conv1/Sigmoid_output_0_nchwc``,
    ``.../MatMul/MatMulScaleFusion/``). Returns ``""`` for a top-level node and ``None`` for a name
    without a scope (a binary op, whose name is its layer's dotted name, or a node ORT created).
    """
    if not node_name.startswith("/"):
        return None
    atoms: list[str] = []
    for part in node_name.strip("/").split("/")[:-1]:
        new = [a for a in part.split(".") if a]
        # The longest tail of the path so far that the part starts with is already there.
        overlap = max((j for j in range(1, len(new)) if atoms[-j:] == new[:j]), default=0)
        atoms += new[overlap:]
    return ".".join(atoms)


def _inside(path: str | None, layers: Collection[str]) -> str | None:
    if path is None:
        return None
    for layer in layers:
        if path == layer or path.startswith(layer + "."):
            return layer
    return None


def node_group(
    op_type: str,
    node_name: str,
    binary_op_types: Collection[str],
    binary_layers: Collection[str],
    module: str | None = None,
) -> str:
    """The group of one node; the first rule that matches wins:

    1. ``binary ops``: the op type is one of the ``scales_edge`` domain's binary layers
       (``binary_op_types``: the domain's ops but ``WindowAttention``).
    2. ``window attention``: the fused ``scales_edge::WindowAttention`` (version 3 exports).
    3. ``layout``: the op type is in :data:`LAYOUT_OP_TYPES` (transposes, reshapes, concats,
       slices, pads, casts, gathers and ORT's ``ReorderInput``/``ReorderOutput``), wherever it is.
    4. ``binary-layer FP branches``: the node's module (:func:`module_path` of its name, or
       ``module`` for a node ORT renamed, see :func:`inherited_modules`) is one of
       ``binary_layers`` (the names of the binary ops, i.e. their layers' dotted names) or inside
       one: the spatial and channel re-scaling and the layer's own skip add.
    5. ``FP head/tail``: everything else that computes: the FP convolutions and upsampler, the
       attention of Transformers written as standard ops (older or ``--no-fuse`` exports), and
       the glue between binary layers that an FP network has too (activations, a block's
       residual add).
    """
    if op_type in binary_op_types:
        return BINARY
    if op_type in ATTENTION_OP_TYPES:
        return ATTENTION
    if op_type in LAYOUT_OP_TYPES:
        return LAYOUT
    path = module_path(node_name)
    if _inside(path if path is not None else module, binary_layers):
        return BRANCHES
    return FP


def inherited_modules(graph, binary_op_types: Collection[str]) -> dict[str, str]:
    """Modules for the nodes of ``graph`` (an ``onnx.GraphProto``) whose names carry none.

    ORT names some nodes it creates without the exporter's scope (a 3-D ``MatMul`` rewritten as
    ``Reshape -> Gemm -> Reshape`` becomes ``Gemm_2``). Such a node gets the module of the nodes that
    consume its outputs (through other unscoped nodes) when all of those are in one module; binary
    ops do not count as consumers (a node feeding only a binary op is its layer's input, not part
    of the layer).
    """
    consumers: dict[str, list[int]] = defaultdict(list)
    for i, node in enumerate(graph.node):
        for name in node.input:
            consumers[name].append(i)
    out: dict[str, str] = {}
    for start in graph.node:
        if module_path(start.name) is not None or start.op_type in binary_op_types:
            continue
        found: set[str] = set()
        seen: set[int] = set()
        todo = list(start.output)
        while todo:
            for i in consumers.get(todo.pop(), ()):
                node = graph.node[i]
                if i in seen or node.op_type in binary_op_types:
                    continue
                seen.add(i)
                path = module_path(node.name)
                if path is None:
                    todo.extend(node.output)
                else:
                    found.add(path)
        if len(found) == 1:
            out[start.name] = found.pop()
    return out


@dataclass
class Profile:
    """Mean kernel time per run of the profiled runs, per op type and per group (ms)."""

    runs: int
    node_ms: float  # sum over the nodes
    by_op_type: list[dict[str, Any]]  # op_type, ms, share, nodes (largest first)
    by_group: list[dict[str, Any]]  # group, ms, share, nodes, op_types (in GROUPS order)
    warmup: int = 0
    wall_median_ms: float | None = None  # median wall time of the profiled runs
    outside_nodes_ms: float | None = None  # wall_median_ms - node_ms
    # The kernel path each scales_edge op node of the profiled session ran (library.kernel_choices())
    kernel_paths: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_profile(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The events of an ORT profile file (a JSON list, or a trace object with ``traceEvents``)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ProfileError(f"{path}: not a readable ORT profile ({exc})") from None
    if isinstance(data, dict):
        data = data.get("traceEvents")
    if not isinstance(data, list):
        raise ProfileError(f"{path}: not an ORT profile (no list of events)")
    return [e for e in data if isinstance(e, dict)]


def _node_events(events: Iterable[Mapping[str, Any]]) -> list[tuple[float, str, str | None, float]]:
    """(ts, node name, op type or None, dur µs) of the kernel events."""
    out = []
    for e in events:
        if e.get("cat") != "Node" or "dur" not in e:
            continue
        name = str(e.get("name", ""))
        if name.endswith(_MARKER_SUFFIXES):
            continue
        if name.endswith(_KERNEL_SUFFIX):
            name = name[: -len(_KERNEL_SUFFIX)]
        args = e.get("args") if isinstance(e.get("args"), dict) else {}
        op = args.get("op_name") or args.get("op_type")
        out.append((float(e.get("ts", 0)), name, str(op) if op else None, float(e["dur"])))
    return out


def _run_of_each(nodes: list[tuple[float, str, str | None, float]], events: Iterable[Mapping[str, Any]]) -> tuple[list[int], int]:
    """The run each node event belongs to, and the number of runs.

    Runs are the ``model_run`` session events (a node event belongs to the last run that started
    before it); without them, the k-th event of a node is taken to be in the k-th run.
    """
    starts = sorted(float(e.get("ts", 0)) for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    if starts:
        return [max(bisect.bisect_right(starts, ts) - 1, 0) for ts, *_ in nodes], len(starts)
    order = sorted(range(len(nodes)), key=lambda i: nodes[i][0])
    count: dict[str, int] = defaultdict(int)
    run = [0] * len(nodes)
    for i in order:
        run[i] = count[nodes[i][1]]
        count[nodes[i][1]] += 1
    return run, max(count.values(), default=0)


def summarize(
    events: Iterable[Mapping[str, Any]],
    binary_op_types: Collection[str],
    binary_layers: Collection[str],
    *,
    skip_runs: int = 0,
    inherited: Mapping[str, str] | None = None,
    op_types: Mapping[str, str] | None = None,
    source: str = "the profile",
) -> Profile:
    """Kernel time per run by op type and by :func:`node_group`, averaged over the runs of
    ``events`` after the first ``skip_runs`` (warm-up). ``inherited``: modules of renamed nodes
    (:func:`inherited_modules`); ``op_types``: node name -> op type, for events without ``op_name``."""
    events = list(events)
    nodes = _node_events(events)
    if not nodes:
        raise ProfileError(
            f"{source} has no node events: ORT ran no kernels (is the whole graph constant?) "
            "or this onnxruntime records no node timings"
        )
    run_of, total_runs = _run_of_each(nodes, events)
    runs = total_runs - skip_runs
    if runs < 1:
        raise ProfileError(f"{source} holds {total_runs} run(s), not more than the {skip_runs} warm-up run(s)")
    inherited = inherited or {}
    op_types = op_types or {}
    per_node: dict[tuple[str, str], float] = defaultdict(float)
    for (_, name, op, dur), run in zip(nodes, run_of):
        if run >= skip_runs:
            per_node[(name, op or op_types.get(name, "unknown"))] += dur
    if not per_node:
        raise ProfileError(f"{source} has no node events after the {skip_runs} warm-up run(s)")
    total = sum(per_node.values())
    by_type: dict[str, list] = defaultdict(lambda: [0.0, 0])
    by_group: dict[str, list] = {g: [0.0, 0, defaultdict(float)] for g in GROUPS}
    for (name, op), dur in per_node.items():
        by_type[op][0] += dur
        by_type[op][1] += 1
        g = by_group[node_group(op, name, binary_op_types, binary_layers, inherited.get(name))]
        g[0] += dur
        g[1] += 1
        g[2][op] += dur
    ms = 1e-3 / runs
    type_rows = [
        {"op_type": op, "ms": t * ms, "share": t / total, "nodes": n}
        for op, (t, n) in sorted(by_type.items(), key=lambda kv: -kv[1][0])
    ]
    group_rows = [
        {"group": g, "ms": t * ms, "share": t / total, "nodes": n, "op_types": sorted(ops, key=lambda o: -ops[o])}
        for g, (t, n, ops) in by_group.items()
    ]
    return Profile(runs=runs, node_ms=total * ms, by_op_type=type_rows, by_group=group_rows, warmup=skip_runs)


def profile_model(
    model: str | os.PathLike,
    feed: Mapping[str, np.ndarray],
    threads: int = 1,
    runs: int = 10,
    warmup: int = 3,
    on_run: Callable[[], None] | None = None,
) -> Profile:
    """Run ``model`` ``warmup + runs`` times on ``feed`` in a new profiled session and summarize the
    profile of the last ``runs`` runs (grouped against the graph ORT actually ran)."""
    import onnx

    if runs < 1 or warmup < 0:
        raise ValueError("runs must be >= 1 and warmup >= 0")
    with tempfile.TemporaryDirectory(prefix="scales-edge-profile-") as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        sess = make_session(model, threads=threads, profile=str(Path(tmp) / "ort"), optimized_model=str(optimized))
        before = len(kernel_choices())
        walls = []
        for i in range(warmup + runs):
            t0 = time.perf_counter()
            sess.run(None, dict(feed))
            if i >= warmup:
                walls.append(time.perf_counter() - t0)
            if on_run:
                on_run()
        events = read_profile(sess.end_profiling())
        paths = kernel_choices()[before:]
        try:  # the graph ORT ran: its node names are the profile's
            graph = onnx.load(str(optimized), load_external_data=False).graph
        except Exception:  # not written by this ORT version: the exported graph (renamed nodes stay unscoped)
            graph = load_model(model).graph
    binary_nodes = [n for n in graph.node if n.domain == DOMAIN and n.op_type not in ATTENTION_OP_TYPES]
    binary_op_types = {n.op_type for n in binary_nodes}
    binary_layers = {n.name for n in binary_nodes}
    prof = summarize(
        events,
        binary_op_types,
        binary_layers,
        skip_runs=warmup,
        inherited=inherited_modules(graph, binary_op_types),
        op_types={n.name: n.op_type for n in graph.node},
        source=f"the ORT profile of {model}",
    )
    prof.wall_median_ms = float(np.median(walls) * 1e3)
    prof.outside_nodes_ms = prof.wall_median_ms - prof.node_ms
    prof.kernel_paths = paths
    for row in prof.by_op_type:  # which paths the nodes of each binary op type ran, e.g. {"avx512": 32}
        if row["op_type"] in binary_op_types:
            counts: dict[str, int] = {}
            for c in paths:
                if c.get("op") == row["op_type"]:
                    counts[c["path"]] = counts.get(c["path"], 0) + 1
            row["paths"] = counts
    return prof

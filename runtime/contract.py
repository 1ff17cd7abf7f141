"""The ``scales_edge`` op contract as scales-edge's loaders check it (docs/ops.md, "Validation").

ONNX Runtime checks none of this for a custom domain: it accepts any ``scales_edge`` version from
1 to 1000, or no ``opset_import`` for the domain at all, and any attribute on a custom op. Inside
ORT, the op library sees each node on its own, by attribute name and inputs: it refuses bad
attribute values and inputs, and likely-mistaken attribute names (``ops/ort/attributes.h``), but
it cannot learn which domain version the model imports (ORT matches a custom kernel by the op's
first version, whatever the model imports) nor list a node's attributes. This module reads the
whole model, so every scales-edge command (through :func:`~scales_edge.runtime.session.make_session`)
and ``scales-edge info`` refuse, in one line naming the node and the cause:

* ``scales_edge`` nodes without a ``scales_edge`` ``opset_import``;
* a domain version the op library does not implement (it implements 1 to
  :func:`newest_version`, the library's ``kDomainVersion``);
* an op the imported version does not have;
* an attribute the op does not take, or one of the wrong type;
* more or fewer inputs than the op has.

:data:`OPS` is the table of the domain's ops; a new op or version is one entry.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Iterator

import onnx
from onnx import AttributeProto

from ..errors import ModelError

DOMAIN = "scales_edge"


class ContractError(ModelError):
    """A model that breaks the scales_edge op contract (docs/ops.md)."""


@dataclass(frozen=True)
class OpSpec:
    """One op of the domain: the version that introduced it, its inputs in order (the first
    ``required`` must be given; the rest are optional, absent or named ``""``), its attributes
    with their ONNX types, and for an attribute a later version added, that version (``added``;
    the op library cannot tell versions apart, this check can)."""

    name: str
    since: int
    inputs: tuple[str, ...]
    required: int
    attributes: dict[str, int] = field(default_factory=dict)
    added: dict[str, int] = field(default_factory=dict)


_INTS, _INT = AttributeProto.INTS, AttributeProto.INT
_FLOAT, _STRING = AttributeProto.FLOAT, AttributeProto.STRING
_CONV_INPUTS = ("X", "beta", "W", "scale", "bias")
_CONV_ATTRS = {"kernel_shape": _INTS, "strides": _INTS, "pads": _INTS, "dilations": _INTS, "group": _INT}

OPS: dict[str, OpSpec] = {
    spec.name: spec
    for spec in (
        OpSpec("BinaryConv2d", 1, _CONV_INPUTS, 4, _CONV_ATTRS),
        OpSpec("BinaryLinear", 1, _CONV_INPUTS, 4),
        OpSpec(
            "ScalesConv2d", 2, _CONV_INPUTS + ("spatial_weight", "spatial_bias", "channel_weight"), 4,
            {**_CONV_ATTRS, "skip": _INT, "channel_from_output": _INT, "pixel_shuffle": _INT},
            added={"pixel_shuffle": 3},
        ),
        OpSpec(
            "ScalesLinear", 3,
            _CONV_INPUTS + ("spatial_weight", "spatial_bias", "residual", "norm_weight", "norm_bias"), 4,
            {"activation": _STRING, "norm_epsilon": _FLOAT},
        ),
        OpSpec(
            "WindowAttention", 3, ("QKV", "bias_table", "bias_index"), 3,
            {"num_heads": _INT, "window_size": _INT, "shift_size": _INT, "key_window_size": _INT,
             "scale": _FLOAT},
        ),
    )
}

#: Names other engines give a convolution's settings, and the attribute of ours each means.
ALIASES = {
    "stride": "strides", "padding": "pads", "pad": "pads", "paddings": "pads", "kernel_size": "kernel_shape",
    "kernel": "kernel_shape", "ksize": "kernel_shape", "dilation": "dilations", "dilation_rate": "dilations",
    "groups": "group", "auto_pad": "pads", "residual": "skip", "skip_connection": "skip",
    "channel_from_input": "channel_from_output",
}


def newest_version() -> int:
    """The newest domain version the op library implements: the installed library's own
    ``kDomainVersion``, or the numpy reference's when no library is installed."""
    from .library import library_domain_version

    version = library_domain_version()
    if version is None:
        from .reference import DOMAIN_VERSION

        version = DOMAIN_VERSION
    return version


def supported_versions() -> tuple[int, ...]:
    return tuple(range(1, newest_version() + 1))


def versions_text() -> str:
    newest = newest_version()
    return "1" if newest == 1 else f"1 to {newest}"


def domain_version(model: onnx.ModelProto) -> int | None:
    """The ``scales_edge`` op-domain version the model imports, or None."""
    for imp in model.opset_import:
        if imp.domain == DOMAIN:
            return int(imp.version)
    return None


def _nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of ``graph`` and of the subgraphs in its nodes' attributes."""
    for node in graph.node:
        yield node
        for a in node.attribute:
            if a.type == AttributeProto.GRAPH:
                yield from _nodes(a.g)
            elif a.type == AttributeProto.GRAPHS:
                for g in a.graphs:
                    yield from _nodes(g)


def node_version(node: onnx.NodeProto) -> int:
    """The lowest domain version that has the node's op and every attribute it sets (1 for an op
    the table does not have)."""
    spec = OPS.get(node.op_type)
    if spec is None:
        return 1
    return max([spec.since] + [spec.added.get(a.name, 0) for a in node.attribute])


def domain_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The ``scales_edge`` nodes of the model: main graph, subgraphs and model-local functions."""
    nodes = list(_nodes(model.graph))
    for f in model.functions:
        for node in f.node:
            nodes.append(node)
    return [n for n in nodes if n.domain == DOMAIN]


def attribute_list(names) -> str:
    return ", ".join(names) if names else "no attributes"


def unknown_attribute_message(op: str, name: str) -> str:
    """The op library's message for an attribute ``op`` does not take (ops/ort/attributes.cc)."""
    own = list(OPS[op].attributes)
    meant = ALIASES.get(name)
    if meant not in own:
        close = difflib.get_close_matches(name.lower().replace("-", "_"), own, n=1, cutoff=0.75)
        meant = close[0] if close else None
    if name == "auto_pad" and meant:
        return f"scales_edge.{op}: attribute 'auto_pad' is not supported; give explicit 'pads'"
    hint = f" (did you mean '{meant}'?)" if meant else ""
    return f"scales_edge.{op}: unknown attribute '{name}'{hint}; {op} takes {attribute_list(own)}"


_TYPE_NAMES = {_INT: "an int", _INTS: "a list of ints", _FLOAT: "a float", _STRING: "a string"}


def _node_problem(node: onnx.NodeProto, version: int) -> str | None:
    spec = OPS.get(node.op_type)
    if spec is None or spec.since > version:
        have = [s.name for s in OPS.values() if s.since <= version]
        later = f" (it exists from version {spec.since})" if spec else ""
        return (f"{DOMAIN}.{node.op_type} is not an op of {DOMAIN} version {version}{later}; "
                f"version {version} has {', '.join(have)}")
    op = spec.name
    for a in node.attribute:
        if a.name not in spec.attributes:
            return unknown_attribute_message(op, a.name)
        if spec.added.get(a.name, 0) > version:
            return (f"{DOMAIN}.{op}: attribute '{a.name}' exists from {DOMAIN} version {spec.added[a.name]}; "
                    f"the model imports version {version}")
        want = spec.attributes[a.name]
        if a.type != want:
            got = AttributeProto.AttributeType.Name(a.type).lower()
            return f"{DOMAIN}.{op}: attribute '{a.name}' must be {_TYPE_NAMES[want]}, got {got}"
    given = len(node.input)
    while given and not node.input[given - 1]:  # trailing absent optional inputs
        given -= 1
    if not spec.required <= given <= len(spec.inputs):
        names = ", ".join(spec.inputs[: spec.required])
        optional = "".join(f"[, {n}" for n in spec.inputs[spec.required:]) + "]" * (len(spec.inputs) - spec.required)
        return (f"{DOMAIN}.{op}: expects {spec.required} to {len(spec.inputs)} inputs ({names}{optional}), "
                f"got {given}")
    if any(not node.input[i] for i in range(spec.required)):
        return f"{DOMAIN}.{op}: inputs {', '.join(spec.inputs[: spec.required])} are required; one is empty"
    return None


def check_model(model: onnx.ModelProto, where: str = "model") -> int | None:
    """Raise :class:`ContractError` (one line: ``where``, the node, the cause) if the model breaks
    the contract; return the domain version it imports (None: it uses no ``scales_edge`` op)."""
    version = domain_version(model)
    nodes = domain_nodes(model)
    if nodes and version is None:
        raise ContractError(
            f"{where}: has {len(nodes)} {DOMAIN} op(s) but no opset_import for the {DOMAIN} domain, so "
            f"nothing says which version of the ops it means; this scales-edge implements versions "
            f"{versions_text()} (docs/ops.md): re-export the model or add the import"
        )
    if version is not None and version not in supported_versions():
        raise ContractError(
            f"{where}: uses {DOMAIN} op-domain version {version}; this scales-edge implements versions "
            f"{versions_text()} (docs/ops.md): upgrade scales-edge or re-export the model"
        )
    for node in nodes:
        problem = _node_problem(node, version)
        if problem:
            label = node.name or (node.output[0] if node.output else node.op_type)
            raise ContractError(f"{where}: node {label!r}: {problem}")
    return version

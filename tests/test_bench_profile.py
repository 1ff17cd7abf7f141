"""``scales-edge bench --profile``: reading ORT profiles, the grouping rule, the CLI end to end."""

from __future__ import annotations

import json

import onnx
import pytest
import torch
from typer.testing import CliRunner

from scales_edge import build_model
from scales_edge.cli import app
from scales_edge.export import export_onnx
from scales_edge.runtime.profiling import (
    ATTENTION,
    BINARY,
    BRANCHES,
    FP,
    GROUPS,
    LAYOUT,
    ProfileError,
    inherited_modules,
    module_path,
    node_group,
    read_profile,
    summarize,
)
from _opslib import require_installed_library

torch.set_num_threads(1)
runner = CliRunner()

# A hand-written profile of a SCALES-style model: 3 runs (the first is warm-up), times in µs.
# (node name as ORT writes it, op type or None when the event lacks op_name, [dur run 0, 1, 2])
SYNTHETIC = [
    ("body.0.conv1", "BinaryConv2d", [999, 100, 140]),
    ("/body/body.0/conv1/spatial/Conv", "Conv", [999, 30, 50]),
    ("/body/body.0/conv1/Mul", "Mul", [999, 10, 10]),
    ("/body/body.0/conv1/Unsqueeze", "Unsqueeze", [999, 2, 2]),
    ("Gemm_2", "Gemm", [999, 16, 24]),  # renamed; its module is given (inherited) below
    ("/body/body.0/Add", "Add", [999, 6, 4]),
    ("/conv_first/Conv_output_0_nchwc", "Conv", [999, 200, 300]),
    ("/pixel_shuffle/DepthToSpace", "DepthToSpace", [999, 20, 20]),
    ("ReorderInput_token_3", "ReorderInput", [999, 8, 12]),
    ("/tail/Relu", None, [999, 1, 3]),  # op type only from the graph (op_types)
]
INHERITED = {"Gemm_2": "body.0.conv1"}
OP_TYPES = {"/tail/Relu": "Relu"}
# Means over runs 1 and 2 in ms, summed by hand.
EXPECTED_TYPES = {  # op type: (ms, nodes)
    "Conv": (0.040 + 0.250, 2), "BinaryConv2d": (0.120, 1), "DepthToSpace": (0.020, 1), "Gemm": (0.020, 1),
    "Mul": (0.010, 1), "ReorderInput": (0.010, 1), "Add": (0.005, 1), "Unsqueeze": (0.002, 1), "Relu": (0.002, 1),
}
EXPECTED_GROUPS = {  # group: (ms, nodes)
    BINARY: (0.120, 1),
    BRANCHES: (0.040 + 0.010 + 0.020, 3),  # spatial conv, re-scaling Mul, the renamed Gemm
    ATTENTION: (0.0, 0),
    FP: (0.005 + 0.250 + 0.020 + 0.002, 4),  # block residual add, head conv, pixel shuffle, Relu
    LAYOUT: (0.002 + 0.010, 2),
}
TOTAL_MS = 0.479


def _synthetic_events(with_runs: bool = True) -> list[dict]:
    events = [
        {"cat": "Session", "name": "model_loading_uri", "ts": 5, "dur": 400, "ph": "X", "args": {}},
        {"cat": "Session", "name": "session_initialization", "ts": 410, "dur": 500, "ph": "X", "args": {}},
    ]
    for run in range(3):
        start = 1000 + 20000 * run
        if with_runs:
            events.append({"cat": "Session", "name": "model_run", "ts": start, "dur": 19000, "ph": "X", "args": {}})
        ts = start + 10
        for name, op, durs in SYNTHETIC:
            args = {"op_name": op, "provider": "CPUExecutionProvider"} if op else {"provider": "CPUExecutionProvider"}
            # markers of older ORT versions, to be ignored
            events.append({"cat": "Node", "name": f"{name}_fence_before", "ts": ts, "dur": 0, "ph": "X", "args": {"op_name": op}})
            events.append({"cat": "Node", "name": f"{name}_kernel_time", "ts": ts + 1, "dur": durs[run], "ph": "X", "args": args})
            events.append({"cat": "Node", "name": f"{name}_fence_after", "ts": ts + 1 + durs[run], "dur": 7, "ph": "X", "args": {}})
            ts += durs[run] + 5
    return events


def _check_synthetic(prof) -> None:
    assert prof.runs == 2 and prof.warmup == 1
    assert prof.node_ms == pytest.approx(TOTAL_MS)
    types = {r["op_type"]: (r["ms"], r["nodes"]) for r in prof.by_op_type}
    assert set(types) == set(EXPECTED_TYPES)
    for op, (ms, nodes) in EXPECTED_TYPES.items():
        assert types[op][0] == pytest.approx(ms) and types[op][1] == nodes, op
    assert [r["ms"] for r in prof.by_op_type] == sorted((r["ms"] for r in prof.by_op_type), reverse=True)
    assert [r["group"] for r in prof.by_group] == list(GROUPS)
    for row in prof.by_group:
        ms, nodes = EXPECTED_GROUPS[row["group"]]
        assert row["ms"] == pytest.approx(ms) and row["nodes"] == nodes, row["group"]
        assert row["share"] == pytest.approx(ms / TOTAL_MS)
    assert next(r for r in prof.by_group if r["group"] == FP)["op_types"] == ["Conv", "DepthToSpace", "Add", "Relu"]


@pytest.mark.parametrize("layout", ["list", "trace-object"])
def test_summarize_synthetic_profile_file(tmp_path, layout):
    events = _synthetic_events()
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(events if layout == "list" else {"traceEvents": events}))
    prof = summarize(read_profile(path), {"BinaryConv2d"}, {"body.0.conv1"}, skip_runs=1, inherited=INHERITED, op_types=OP_TYPES)
    _check_synthetic(prof)


def test_summarize_without_model_run_events_counts_runs_per_node():
    prof = summarize(_synthetic_events(with_runs=False), {"BinaryConv2d"}, {"body.0.conv1"}, skip_runs=1,
                     inherited=INHERITED, op_types=OP_TYPES)
    _check_synthetic(prof)


def test_summarize_errors(tmp_path):
    sessions_only = [e for e in _synthetic_events() if e["cat"] != "Node"]
    with pytest.raises(ProfileError, match="no node events"):
        summarize(sessions_only, {"BinaryConv2d"}, set())
    with pytest.raises(ProfileError, match="3 run.*3 warm-up"):
        summarize(_synthetic_events(), {"BinaryConv2d"}, set(), skip_runs=3)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ProfileError, match="bad.json"):
        read_profile(bad)
    unknown = summarize([{"cat": "Node", "name": "n_kernel_time", "ts": 1, "dur": 3}], set(), set())
    assert [(r["op_type"], r["nodes"]) for r in unknown.by_op_type] == [("unknown", 1)]
    assert unknown.node_ms == pytest.approx(0.003)


def test_module_path_of_exporter_names():
    assert module_path("/body/body.0/conv1/Mul_1") == "body.0.conv1"
    assert module_path("/body/body.0/conv1/Sigmoid_output_0_nchwc") == "body.0.conv1"
    assert module_path("/layers.0/residual_group/blocks.1/attn/Softmax") == "layers.0.residual_group.blocks.1.attn"
    assert module_path("/layers.0/residual_group/blocks.1/mlp/fc2/spatial/MatMul/MatMulScaleFusion/") == (
        "layers.0.residual_group.blocks.1.mlp.fc2.spatial.MatMul"
    )
    assert module_path("/upsample/upsample.0/Conv") == "upsample.0"
    assert module_path("/Add") == ""
    assert module_path("body.0.conv1") is None and module_path("ReorderInput_token_3") is None


def _graph_groups(graph):
    binary = [n for n in graph.node if n.domain == "scales_edge" and n.op_type != "WindowAttention"]
    binary_op_types = {n.op_type for n in binary}
    layers = {n.name for n in binary}
    inherited = inherited_modules(graph, binary_op_types)
    return {n.name: node_group(n.op_type, n.name, binary_op_types, layers, inherited.get(n.name)) for n in graph.node}, inherited


def test_node_group_on_exported_srresnet(tmp_path):
    torch.manual_seed(0)
    model = build_model("srresnet", scale=2, num_feat=16, num_block=2, binary="scales", binary_scope="body")
    graph = export_onnx(model, tmp_path / "m.onnx").graph
    groups, _ = _graph_groups(graph)
    layer_scopes = [f"/body/body.{b}/conv{c}/" for b in range(2) for c in (1, 2)]
    for node in graph.node:
        if node.domain == "scales_edge":
            want = BINARY
        elif node.op_type in ("Unsqueeze", "Squeeze"):
            want = LAYOUT
        elif node.name.startswith(tuple(layer_scopes)):
            want = BRANCHES  # re-scaling convs, sigmoids, muls, the mean, the layer's skip add
        else:
            want = FP  # head, tail, pixel shuffle, the ReLU and residual add between binary layers
        assert groups[node.name] == want, (node.op_type, node.name)
    assert sorted(n.name for n in graph.node if groups[n.name] == BINARY) == ["body.0.conv1", "body.0.conv2", "body.1.conv1", "body.1.conv2"]
    assert groups["/pixel_shuffle/DepthToSpace"] == FP and groups["/body/body.0/relu/Relu"] == FP


def test_renamed_nodes_inherit_their_binary_layer_swinir(tmp_path):
    torch.manual_seed(0)
    model = build_model("swinir_light", scale=2, binary="scales", embed_dim=12, depths=[2], num_heads=2, window_size=4)
    graph = export_onnx(model, tmp_path / "sw.onnx", fuse=False).graph  # version 1: branches are nodes
    groups, inherited = _graph_groups(graph)
    gemms = [n for n in graph.node if n.op_type == "Gemm" and "/" not in n.name]
    assert gemms, "the exporter no longer writes unscoped Gemm nodes; the inheritance test needs another case"
    for node in gemms:  # the spatial re-scaling linear of a BinaryLinear, written as Reshape -> Gemm -> Reshape
        assert inherited[node.name].rsplit(".", 2)[-2:] in (["attn", "qkv"], ["attn", "proj"], ["mlp", "fc1"], ["mlp", "fc2"])
        assert groups[node.name] == BRANCHES
    for node in graph.node:
        if node.op_type in ("Softmax", "LayerNormalization"):
            assert groups[node.name] == FP, node.name  # attention and norms stay FP
        if node.name.endswith("/spatial/MatMul") or node.name.endswith("/Sigmoid"):
            assert groups[node.name] == BRANCHES, node.name
    assert sum(g == BINARY for g in groups.values()) == sum(n.domain == "scales_edge" for n in graph.node) > 0


def test_node_group_on_fused_transformers(tmp_path):
    """A version-3 export: each binary linear is one ScalesLinear (its branch and epilogue inside),
    each attention one WindowAttention, in their own groups; the FP32 model's attention too."""
    for binary in ("scales", "fp"):
        torch.manual_seed(0)
        model = build_model("swinir_light", scale=2, binary=binary, embed_dim=12, depths=[2], num_heads=2, window_size=4)
        graph = export_onnx(model, tmp_path / f"{binary}.onnx").graph
        groups, _ = _graph_groups(graph)
        ops = {n.name: n.op_type for n in graph.node}
        assert [ops[n] for n, g in groups.items() if g == ATTENTION] == ["WindowAttention"] * 2
        binary_ops = sorted(ops[n] for n, g in groups.items() if g == BINARY)
        assert binary_ops == (["ScalesConv2d"] + ["ScalesLinear"] * 8 if binary == "scales" else [])
        assert not any(g == BRANCHES for g in groups.values())
        assert all(groups[n] == FP for n, op in ops.items() if op in ("LayerNormalization", "Softmax", "Gemm", "MatMul"))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    require_installed_library()
    d = tmp_path_factory.mktemp("profile")
    torch.manual_seed(0)
    model = build_model("srresnet", scale=2, num_feat=16, num_block=2, binary="scales", binary_scope="body")
    export_onnx(model, d / "m.onnx", fuse=False)  # version 1: the branches are separate nodes
    export_onnx(model, d / "fused.onnx")  # version 2: one ScalesConv2d per SCALES conv
    export_onnx(model, d / "ref.onnx", binary_as="fp32-reference")
    return d


def test_cli_bench_profile_with_baseline(models):
    d = models
    out = d / "bench.json"
    res = runner.invoke(app, ["bench", str(d / "m.onnx"), "--baseline", str(d / "ref.onnx"), "--size", "40x32",
                              "--runs", "3", "--warmup", "1", "--profile", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "by group" in res.output and "binary-layer FP branches" in res.output and "outside the kernels" in res.output
    data = json.loads(out.read_text())
    profs = [r["profile"] for r in data["results"]]
    for prof in profs:
        assert prof["runs"] == 3 and prof["warmup"] == 1
        type_ms = sum(r["ms"] for r in prof["by_op_type"])
        assert sum(r["ms"] for r in prof["by_group"]) == pytest.approx(type_ms) == pytest.approx(prof["node_ms"])
        assert sum(r["nodes"] for r in prof["by_group"]) == sum(r["nodes"] for r in prof["by_op_type"])
        assert sum(r["share"] for r in prof["by_group"]) == pytest.approx(1.0)
        assert prof["outside_nodes_ms"] == pytest.approx(prof["wall_median_ms"] - prof["node_ms"])
        assert [r["group"] for r in prof["by_group"]] == list(GROUPS)
    groups = {r["group"]: r for r in profs[0]["by_group"]}
    assert groups[BINARY]["ms"] > 0 and groups[BINARY]["nodes"] == 4 and groups[BINARY]["op_types"] == ["BinaryConv2d"]
    assert groups[BRANCHES]["nodes"] > 0 and groups[FP]["nodes"] > 0
    assert {r["op_type"]: r["nodes"] for r in profs[0]["by_op_type"]}["BinaryConv2d"] == 4
    ref = {r["group"]: r for r in profs[1]["by_group"]}
    assert ref[BINARY]["nodes"] == 0 and ref[BRANCHES]["nodes"] == 0  # the FP32 reference has no scales_edge op


def test_cli_bench_profile_fused_model(models):
    """A fused export has its branches inside the binary op: that group is empty."""
    out = models / "fused.json"
    res = runner.invoke(app, ["bench", str(models / "fused.onnx"), "--size", "40x32", "--runs", "2", "--warmup", "1",
                              "--profile", "--json", str(out)])
    assert res.exit_code == 0, res.output
    (result,) = json.loads(out.read_text())["results"]
    prof = result["profile"]
    groups = {r["group"]: r for r in prof["by_group"]}
    assert groups[BINARY]["nodes"] == 4 and groups[BINARY]["op_types"] == ["ScalesConv2d"]
    assert groups[BRANCHES]["nodes"] == 0
    # The kernel path of each binary op node: in the timed result and in the profile, and the
    # profile's op-type row counts its nodes' paths.
    for kernels in (result["kernels"], prof["kernel_paths"]):
        assert [k["op"] for k in kernels] == ["ScalesConv2d"] * 4
        assert all(k["path"] in {"portable", "avx2", "avx512", "neon"} for k in kernels)
    row = next(r for r in prof["by_op_type"] if r["op_type"] == "ScalesConv2d")
    assert sum(row["paths"].values()) == 4
    assert "kernel paths: ScalesConv2d" in res.output


def test_cli_bench_without_profile_has_none(models):
    out = models / "plain.json"
    res = runner.invoke(app, ["bench", str(models / "m.onnx"), "--size", "16x16", "--runs", "1", "--warmup", "0", "--json", str(out)])
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())["results"][0]
    assert result["profile"] is None and "by group" not in res.output
    # 1 thread: the run's CPU time is the calling thread's, at most its wall time (and not 0)
    assert 0 < result["cpu_median_ms"] <= result["median_ms"] * 1.05 + 1


def test_cli_bench_profile_without_node_events_is_one_line_error(models):
    # Every value is a constant: ORT folds the graph away and runs no kernel.
    a = onnx.numpy_helper.from_array(torch.ones(1, 3, 2, 2).numpy(), "a")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Add", ["a", "a"], ["y"], name="/Add")], "const",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, None, None])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 2, 2])], initializer=[a],
    )
    path = models / "const.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), path)
    res = runner.invoke(app, ["bench", str(path), "--size", "8x8", "--runs", "1", "--warmup", "0", "--profile"])
    assert res.exit_code == 2 and "no node events" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1

"""The tiling plan (runtime/tileplan.py): the graphs of a tiled run, the body/tail cut, the stored
form the native runner reads, and the pixel arithmetic both executors share (runtime/pixels.py)."""

from __future__ import annotations

import base64
import json
import zlib

import cv2
import numpy as np
import onnx
import pytest
import torch

from _opslib import require_installed_library
from scales_edge import build_model
from scales_edge.export import export_onnx
from scales_edge.runtime.infer import Upscaler
from scales_edge.runtime.pixels import LUMA, resize_cubic, to_gray
from scales_edge.runtime.tileplan import PLAN_FORMAT, PLAN_KEY, TilingPlan, find_tail
from scales_edge.runtime.tiling import statistics_model, tile_grid

require_installed_library()
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model_x4(tmp_path_factory):
    """SRResNet-SCALES x4 (16 channels, 2 blocks), body scope: 4 ScalesConv2d with global channel
    pools, an FP upsampling tail."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("plan") / "m.onnx"
    export_onnx(build_model("srresnet", scale=4, num_feat=16, num_block=2, binary_scope="body").eval(), path)
    return path


def test_the_paper_scope_cut_hands_the_binary_upsampler_the_body_output(tmp_path):
    """Paper scope: the upsampler convs are binary and pool; with the pools' values fed, the tail
    still starts at upconv1 (its conv reads the body's output) and pools nothing itself."""
    torch.manual_seed(0)
    path = tmp_path / "p.onnx"
    export_onnx(build_model("srresnet", scale=4, num_feat=16, num_block=2).eval(), path)
    plan = TilingPlan(onnx.load(str(path)))
    assert plan.kinds == ["stats_local", "stats_override", "body", "tail"]
    tail = plan.model("tail")
    first = tail.graph.node[0]
    assert first.op_type == "BinaryConv2d" and first.input[0] == plan.tail.features[0]
    assert not any(n.op_type == "GlobalAveragePool" for n in tail.graph.node)
    assert {p.scale for p in plan.geometry.pools} == {1.0, 2.0, 4.0}  # body, upconv2, conv_hr inputs
    assert plan.stats_tile(64) == 64  # a pool at the output resolution: statistics tiles of the output's size


def test_the_cut_hands_the_tail_the_body_output(model_x4):
    """SRResNet: the tail starts at the convolution that widens the body's output for the first pixel
    shuffle (not after it: 4x more channels to hand over), and reads the image for its bilinear base."""
    plan = TilingPlan(onnx.load(str(model_x4)))
    assert plan.kinds == ["stats_local", "stats_override", "body", "tail"]
    tail = plan.model("tail")
    first = tail.graph.node[0]
    assert first.op_type == "Conv" and first.input[0] == plan.tail.features[0]
    assert [n.op_type for n in tail.graph.node].count("DepthToSpace") == 2
    assert {i.name for i in tail.graph.input} == {"input", *plan.tail.features}
    # upconv1 3x3 at LR (1) + upconv2 at 2x (1/2) + conv_hr and conv_last at 4x (1/4 each); the
    # bilinear base reaches 1 LR px: radius 2, exact overlap 3
    assert plan.tail.radius == pytest.approx(2.0) and plan.tail.overlap == 3
    body = plan.model("body")
    assert [o.name for o in body.graph.output] == list(plan.tail.features)
    assert not any(n.op_type in ("DepthToSpace", "Resize") for n in body.graph.node)


def test_no_probe_no_cut(model_x4):
    plan = TilingPlan(onnx.load(str(model_x4)), probe=False)
    assert plan.tail is None and plan.kinds[-1] == "apply"
    assert find_tail(plan.model("apply"), plan.input_name, plan.geometry.scale, None) is None


def test_sub_tiled_tail_equals_whole_tiles(model_x4):
    """The Python tiler's floats are the same with the cut (body, then the tail on sub-tiles) and
    without it (each tile's region through the whole model): convolutions compute every pixel the
    same way wherever it sits."""
    up = Upscaler(str(model_x4), threads=1)
    rng = np.random.default_rng(0)
    x = rng.random((1, 3, 45, 70), dtype=np.float32)
    assert up.runner.plan.tail is not None
    split = up.runner.run_array(x, tile=16, overlap=6)
    up.runner.plan = TilingPlan(up.proto, probe=False)
    up.runner._sessions.clear()
    whole_tiles = up.runner.run_array(x, tile=16, overlap=6)
    np.testing.assert_array_equal(split, whole_tiles)


def test_statistics_graph_sums_last_pool_first(model_x4):
    """Crop-and-sums after the body, last pool first: ONNX Runtime's default order (a depth-first walk
    back from the last leaf) then frees each pool input as soon as the body is past it."""
    plan = TilingPlan(onnx.load(str(model_x4)), probe=False)
    g = statistics_model(plan.proto, plan.geometry.pools, override=False).graph
    names = [n.name for n in g.node]
    sums = [n for n in names if n.startswith("__pool_s")]
    k = len(plan.geometry.pools)
    assert names[-2 * k:] == sums
    assert sums == [f"__pool_{op}_{i}" for i in reversed(range(k)) for op in ("slice", "sum")]


def test_plan_in_the_exported_metadata(model_x4):
    """What the runner reads: format, the graph's CRC, geometry, and each graph without the weights
    it shares with the model (named instead), which complete it to the plan's model."""
    proto = onnx.load(str(model_x4))
    raw = {p.key: p.value for p in proto.metadata_props}[PLAN_KEY]
    stored = json.loads(raw)
    assert stored["format"] == PLAN_FORMAT
    assert stored["graph_crc32"] == zlib.crc32(proto.graph.SerializeToString())
    plan = TilingPlan(proto)
    assert stored["scale"] == 4 and stored["exact_overlap"] == plan.geometry.exact_overlap
    assert [p["output"] for p in stored["pools"]] == [p.output for p in plan.geometry.pools]
    assert stored["tail"]["features"] == list(plan.tail.features)
    shared = {t.name: t for t in proto.graph.initializer}
    for kind in plan.kinds:
        entry = stored["graphs"][kind]
        m = onnx.load_from_string(zlib.decompress(base64.b64decode(entry["model"])))
        assert not {t.name for t in m.graph.initializer} & set(entry["initializers"])
        m.graph.initializer.extend(shared[n] for n in entry["initializers"])
        want = plan.model(kind)
        assert [n.SerializeToString() for n in m.graph.node] == [n.SerializeToString() for n in want.graph.node]
        assert {t.name for t in m.graph.initializer} == {t.name for t in want.graph.initializer}


def test_tail_tiles_cover_the_core_inside_the_region(model_x4):
    plan = TilingPlan(onnx.load(str(model_x4)))
    for t in tile_grid(70, 45, 16, 6):
        hits = np.zeros((70, 45), int)
        for s in plan.tail_tiles(t, 16):
            hits[s.y0 : s.y1, s.x0 : s.x1] += 1
            assert t.ry0 <= s.ry0 <= s.y0 and s.y1 <= s.ry1 <= t.ry1
            assert s.ry0 == max(t.ry0, s.y0 - 3) and s.rx1 == min(t.rx1, s.x1 + 3)
            assert s.y1 - s.y0 <= plan.tail_tile(16) == 8
        assert (hits[t.y0 : t.y1, t.x0 : t.x1] == 1).all() and hits.sum() == (t.y1 - t.y0) * (t.x1 - t.x0)


# ------------------------------------------------------------------------------ pixels


def _keys(t: np.ndarray, a: float = -0.75) -> np.ndarray:
    """The Keys cubic kernel, in float64."""
    t = np.abs(t)
    return np.where(t <= 1, (a + 2) * t**3 - (a + 3) * t**2 + 1,
                    np.where(t < 2, a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a, 0.0))


@pytest.mark.parametrize("dtype,s", [(np.uint8, 2), (np.uint8, 3), (np.uint8, 4), (np.uint16, 4)])
def test_resize_cubic_is_keys_bicubic(dtype, s):
    """Against the kernel evaluated directly in float64 (sample positions (i + 0.5) / s - 0.5, edge
    pixels repeated): equal wherever that is not so near a rounding tie that the float32 weights
    (OpenCV's, kept) decide it; within one level of OpenCV's INTER_CUBIC (which takes Intel IPP's
    code where it has it)."""
    rng = np.random.default_rng(1)
    peak = np.iinfo(dtype).max
    a = rng.integers(0, peak + 1, (13, 17)).astype(dtype)
    got = resize_cubic(a, s)
    assert got.dtype == dtype and got.shape == (13 * s, 17 * s)

    def weights(n):
        pos = (np.arange(n * s) + 0.5) / s - 0.5
        base = np.floor(pos).astype(int)
        idx = np.clip(base[:, None] + np.arange(-1, 3), 0, n - 1)
        return idx, _keys(pos[:, None] - (base[:, None] + np.arange(-1, 3)))

    (yi, yw), (xi, xw) = weights(13), weights(17)
    ref = np.einsum("yk,xl,ykxl->yx", yw, xw, a.astype(np.float64)[yi[:, :, None, None], xi[None, None, :, :]])
    ref = np.clip(ref, 0, peak)
    clear = np.abs(ref - np.floor(ref) - 0.5) > 2e-6 * peak
    assert clear.mean() > 0.7
    np.testing.assert_array_equal(got[clear], np.rint(ref[clear]).astype(dtype))
    cv = cv2.resize(a, (17 * s, 13 * s), interpolation=cv2.INTER_CUBIC)
    assert np.abs(got.astype(int) - cv).max() <= 1


def test_to_gray_is_bt601_in_float32():
    rng = np.random.default_rng(2)
    y = rng.random((3, 5, 7), dtype=np.float32)
    got = to_gray(y)
    assert got.dtype == np.float32 and got.shape == (1, 5, 7)
    want = (np.float32(0.299) * y[0] + np.float32(0.587) * y[1]) + np.float32(0.114) * y[2]
    np.testing.assert_array_equal(got[0], want)
    assert LUMA.tolist() == pytest.approx([0.299, 0.587, 0.114])

"""Binary Transformers: SwinIR (light, classic) and HAT (S, full) built, loaded, exported and run in ORT.

* every arch × binarization × scale builds and runs (tiny configs), the real default configs build
  (and run on one window) with the published parameter counts;
* the window helpers against independent re-implementations of the reference code (reflect pad,
  shifted-window mask, HAT's overlapping windows and position indices);
* BasicSR-format FP checkpoints (``params`` / ``params_ema``) load with the official regenerable
  buffers present or absent; a position index of another window size is refused;
* export: one ONNX file (onnxsim'd, dynamic H and W) serves 48×48, 50×70 and 180×320, batch 2 too;
* parity ORT vs PyTorch (random weights, randomized thresholds and scales) at >= 60 dB.

About the parity of deep binary Transformers. A binarized activation that sits within float
rounding (~1e-7) of its threshold can come out with different signs in ORT and in PyTorch. In a CNN
the flip changes a few neighbouring pixels; in window attention it reaches every token of the window
(the attention output of all of them moves a little, so the binarized ``proj`` input of some of them
crosses its threshold too), and block after block the flips multiply. SwinIR-light (window 8) stays
below that regime: its plain parity is asserted at every size. HAT-S at full depth (36 HABs + 6 OCABs,
window 16 = 256 tokens) does not: one or two rounding flips grow into ~1 % of all signs and the
plain PSNR drops to 43-50 dB on this machine, while the model is exported exactly. So for HAT-S the
plain parity is asserted on a reduced depth (one group of two HABs + OCAB, same width and window)
at all three sizes, and the real config is checked with *sign-synchronized* parity: PyTorch
takes each binary layer's signs from ORT's input to that layer (its own FP branches, scales and
everything else unchanged), which removes the chaotic amplification and leaves the graph's
arithmetic to compare. The number of threshold-adjacent flips seen there is asserted to be tiny.
"""

from __future__ import annotations

import math
import os

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from scales_edge import CheckpointError, load_checkpoint, save_checkpoint
from scales_edge.errors import ConfigError
from scales_edge.models import build_model, full_config, get_arch, list_archs
from scales_edge.models.transformer_common import (
    MASK_VALUE,
    overlap_position_index,
    overlapping_windows,
    pad_to_multiple,
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_reverse,
)
from scales_edge.nn import (
    BiBERTLinear,
    BinaryConv2dBase,
    BinaryLinearBase,
    E2FIFConv2d,
    ScalesConv2d,
    ScalesLinear,
    binary_layers,
    sign_pm1,
)

torch.set_num_threads(1)

TRANSFORMERS = ("swinir_light", "swinir", "hat_s", "hat")
TINY = {
    "swinir_light": dict(embed_dim=12, depths=[2, 1], num_heads=2, window_size=4),
    "swinir": dict(embed_dim=12, depths=[2], num_heads=3, window_size=4, upsample_feat=8),
    "hat_s": dict(embed_dim=12, depths=[2], num_heads=2, window_size=4, compress_ratio=3, squeeze_factor=4, upsample_feat=8),
    "hat": dict(embed_dim=12, depths=[1, 2], num_heads=[2, 3], window_size=4, compress_ratio=3, squeeze_factor=4, upsample_feat=8),
}
LINEAR_TYPE = {"scales": ScalesLinear, "bibert": BiBERTLinear}
CONV_TYPE = {"scales": ScalesConv2d, "bibert": E2FIFConv2d}


def randomize(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial thresholds and layer scales, as tests/test_parity.py does (initially 0 and 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in binary_layers(model):
            if isinstance(layer, (ScalesConv2d, ScalesLinear)):
                layer.beta.copy_(torch.randn(layer.beta.shape, generator=g) * 0.2)
                layer.alpha.fill_(float(torch.rand((), generator=g)) + 0.5)
            if isinstance(layer, E2FIFConv2d):
                layer.bn.running_mean.copy_(torch.randn(layer.bn.running_mean.shape, generator=g))
                layer.bn.running_var.copy_(torch.rand(layer.bn.running_var.shape, generator=g) * 10 + 1)
    return model.eval()


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------ the zoo


def test_registry_lists_the_transformers():
    for arch in TRANSFORMERS:
        entry = get_arch(arch)
        assert entry.family == "transformer"
        assert entry.binaries == ("scales", "bibert", "fp")
    assert set(TRANSFORMERS) <= set(list_archs())
    with pytest.raises(ConfigError, match="binary"):
        build_model("swinir_light", binary="e2fif", **TINY["swinir_light"])


def test_defaults_are_the_published_configurations():
    light = full_config("swinir_light")
    assert (light["embed_dim"], light["depths"], light["num_heads"], light["window_size"]) == (60, [6] * 4, 6, 8)
    assert light["mlp_ratio"] == 2 and light["upsampler"] == "pixelshuffledirect"
    classic = full_config("swinir")
    assert (classic["embed_dim"], classic["depths"], classic["window_size"], classic["upsampler"]) == (180, [6] * 6, 8, "pixelshuffle")
    for arch, dim, cr, sf in (("hat_s", 144, 24, 24), ("hat", 180, 3, 30)):
        cfg = full_config(arch)
        assert (cfg["embed_dim"], cfg["compress_ratio"], cfg["squeeze_factor"]) == (dim, cr, sf)
        assert (cfg["depths"], cfg["num_heads"], cfg["window_size"], cfg["mlp_ratio"]) == ([6] * 6, 6, 16, 2)
        assert (cfg["overlap_ratio"], cfg["conv_scale"]) == (0.5, 0.01)


def _expected_binary_layers(arch: str) -> tuple[int, int]:
    """(binary linears, binary convs) of the TINY config: 4 per Transformer block, 1 conv per group."""
    depths = TINY[arch]["depths"]
    blocks = sum(depths) + (len(depths) if arch.startswith("hat") else 0)  # + one OCAB per group
    return 4 * blocks, len(depths)


@pytest.mark.parametrize("arch", TRANSFORMERS)
@pytest.mark.parametrize("binary", ["scales", "bibert", "fp"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_every_transformer_binary_scale_builds_and_runs(arch, binary, scale):
    torch.manual_seed(0)
    model = build_model(arch, scale=scale, binary=binary, **TINY[arch]).eval()
    x = torch.rand(2, 3, 5, 7)  # batch 2; neither side a window multiple
    with torch.no_grad():
        y = model(x)
        y1 = model(x[1:])
    assert y.shape == (2, 3, 5 * scale, 7 * scale)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y[1:], y1, rtol=1e-4, atol=1e-5)  # batch items stay independent

    layers = binary_layers(model)
    if binary == "fp":
        assert layers == []
        return
    n_lin, n_conv = _expected_binary_layers(arch)
    linears = [(n, m) for n, m in layers if isinstance(m, BinaryLinearBase)]
    convs = [(n, m) for n, m in layers if isinstance(m, BinaryConv2dBase)]
    assert len(linears) == n_lin and len(convs) == n_conv
    assert all(type(m) is LINEAR_TYPE[binary] for _, m in linears)
    assert all(type(m) is CONV_TYPE[binary] for _, m in convs)
    assert {n.rsplit(".", 1)[-1] for n, _ in linears} == {"qkv", "proj", "fc1", "fc2"}
    assert all(n.endswith(".conv") and n.startswith("layers.") for n, _ in convs)
    assert all(not m.skip for _, m in convs)  # the group's identity add plays that role
    # head and tail (and conv_after_body, the HAB conv branch) are plain FP convs
    for name in ("conv_first", "conv_after_body", "upsample"):
        mod = dict(model.named_modules())[name]
        assert all(type(m) in (nn.Conv2d, nn.PixelShuffle) for m in mod.modules() if not list(m.children()))


@pytest.mark.parametrize(
    "arch,scale,params",
    [
        # official parameter counts; ours include the relative position bias tables, which the
        # SwinIR paper's 878K / 897K leave out (24 blocks x 225 x 6 = 32,400)
        ("swinir_light", 2, 877_752 + 32_400),
        ("swinir_light", 4, 897_228 + 32_400),
        ("swinir", 4, 11_900_199),
        ("hat_s", 4, 9_621_183),
        ("hat", 4, 20_772_507),
    ],
)
def test_real_configs_build_with_the_published_sizes(arch, scale, params):
    torch.manual_seed(0)
    fp = build_model(arch, scale=scale, binary="fp")
    assert n_params(fp) == params
    model = build_model(arch, scale=scale).eval()  # SCALES
    depths = model.config["depths"]
    n_blocks = sum(depths) + (len(depths) if arch.startswith("hat") else 0)
    kinds = [type(m) for _, m in binary_layers(model)]
    assert kinds.count(ScalesLinear) == 4 * n_blocks and kinds.count(ScalesConv2d) == len(depths)
    with torch.no_grad():  # one window (smaller than a window: reflect-padded up to one)
        y = model(torch.rand(1, 3, 7, 10))
    assert y.shape == (1, 3, 7 * scale, 10 * scale) and torch.isfinite(y).all()


@pytest.mark.parametrize("arch", TRANSFORMERS)
def test_config_round_trips_through_our_checkpoint(tmp_path, arch):
    model = randomize(build_model(arch, scale=3, binary="scales", spatial=False, **TINY[arch]), seed=3)
    path = save_checkpoint(model, tmp_path / "m.pth")
    again = load_checkpoint(path)
    assert again.config == model.config
    assert not any(k.rsplit(".", 1)[-1] in ("relative_position_index", "attn_mask") for k in model.state_dict())
    x = torch.rand(1, 3, 6, 9)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))


# --------------------------------------------------------------------------- window helpers


@pytest.mark.parametrize("h,w,m", [(5, 7, 4), (8, 8, 8), (50, 70, 8), (17, 23, 16), (48, 48, 16), (9, 1, 8)])
def test_pad_to_multiple_is_reflect_padding(h, w, m):
    x = torch.rand(2, 3, h, w)
    y = pad_to_multiple(x, m)
    ph, pw = (-h) % m, (-w) % m
    assert y.shape == (2, 3, h + ph, w + pw)
    if ph < h and pw < w:
        torch.testing.assert_close(y, F.pad(x, (0, pw, 0, ph), mode="reflect"), rtol=0, atol=0)
    else:  # longer than the image: the reflection repeats (a 1-pixel side is replicated)
        assert torch.isfinite(y).all()
        if w == 1:
            assert torch.equal(y[..., :h, :], x.expand(-1, -1, -1, y.shape[-1]))


def _mask_by_regions(hp: int, wp: int, ws: int, shift: int) -> torch.Tensor:
    """The reference construction: label the 3 x 3 slice regions, compare labels per window."""
    img = torch.zeros(1, hp, wp, 1)
    cuts = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    label = 0
    for hs in cuts:
        for wsl in cuts:
            img[:, hs, wsl, :] = label
            label += 1
    win = img.reshape(1, hp // ws, ws, wp // ws, ws, 1).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws)
    diff = win.unsqueeze(1) - win.unsqueeze(2)
    return torch.where(diff != 0, MASK_VALUE, 0.0)


@pytest.mark.parametrize("hp,wp,ws", [(8, 8, 4), (16, 24, 8), (56, 72, 8), (48, 64, 16), (16, 16, 16)])
def test_shifted_window_mask_matches_the_region_construction(hp, wp, ws):
    mask = shifted_window_mask(hp, wp, ws, ws // 2, torch.device("cpu"))
    assert mask.shape == ((hp // ws) * (wp // ws), ws * ws, ws * ws)
    assert torch.equal(mask, _mask_by_regions(hp, wp, ws, ws // 2))


def test_window_partition_round_trip():
    x = torch.rand(2, 12, 20, 5)
    win = window_partition(x, 4)
    assert win.shape == (2 * 3 * 5, 16, 5)
    assert torch.equal(win[1].reshape(4, 4, 5), x[0, 0:4, 4:8])  # second window of the first row
    assert torch.equal(window_reverse(win, 4, 12, 20), x)


def test_relative_position_index_covers_the_table_once_per_offset():
    ws = 4
    idx = relative_position_index(ws)
    assert idx.shape == (16, 16)
    for q in range(16):
        for k in range(16):
            dy, dx = q // ws - k // ws, q % ws - k % ws
            assert idx[q, k] == (dy + ws - 1) * (2 * ws - 1) + dx + ws - 1


def test_overlap_position_index_follows_the_official_offsets():
    ws, ows = 4, 6
    idx = overlap_position_index(ws, ows)
    side = ws + ows - 1
    assert idx.shape == (ws * ws, ows * ows)
    for q in range(ws * ws):
        for k in range(ows * ows):
            rh = k // ows - q // ws + ws - ows + 1
            rw = k % ows - q % ws + ws - ows + 1
            assert idx[q, k] == rh * side + rw
    # negative entries wrap around the table (Python indexing); the wrapped map is one-to-one
    # over the distinct (dy, dx) offsets, so it is a relabelling of the table, not a collision
    assert idx.min() < 0
    offsets = {}
    for q in range(ws * ws):
        for k in range(ows * ows):
            key = (k // ows - q // ws, k % ows - q % ws)
            offsets.setdefault(key, set()).add(int(idx[q, k]) % (side * side))
    assert all(len(v) == 1 for v in offsets.values())
    assert len({next(iter(v)) for v in offsets.values()}) == len(offsets)


@pytest.mark.parametrize("h,w", [(8, 12), (16, 16)])
def test_overlapping_windows_match_unfold(h, w):
    ws, ows, c = 4, 6, 3
    x = torch.rand(2, h, w, c)
    ours = overlapping_windows(x, ws, ows)  # [B*nW, ows*ows, C]
    cols = nn.Unfold(kernel_size=ows, stride=ws, padding=(ows - ws) // 2)(x.permute(0, 3, 1, 2))
    ref = cols.reshape(2, c, ows * ows, -1).permute(0, 3, 2, 1).reshape(-1, ows * ows, c)
    assert torch.equal(ours, ref)


# ------------------------------------------------------------------- BasicSR checkpoints


def _official_buffers(arch: str, model: nn.Module, img_size: int = 16) -> dict[str, torch.Tensor]:
    """The buffers the official code stores besides the parameters, computed here independently."""
    cfg = model.config
    ws = cfg["window_size"]
    n = ws * ws
    sa = torch.empty(n, n, dtype=torch.int64)
    for q in range(n):
        for k in range(n):
            sa[q, k] = (q // ws - k // ws + ws - 1) * (2 * ws - 1) + (q % ws - k % ws + ws - 1)
    out = {}
    if arch.startswith("swinir"):
        nw = (img_size // ws) ** 2
        for i, d in enumerate(cfg["depths"]):
            for j in range(d):
                out[f"layers.{i}.residual_group.blocks.{j}.attn.relative_position_index"] = sa.clone()
                if j % 2:
                    out[f"layers.{i}.residual_group.blocks.{j}.attn_mask"] = torch.zeros(nw, n, n)
    else:
        ows = ws + int(ws * cfg["overlap_ratio"])
        oca = torch.empty(n, ows * ows, dtype=torch.int64)
        for q in range(n):
            for k in range(ows * ows):
                rh = k // ows - q // ws + ws - ows + 1
                rw = k % ows - q % ws + ws - ows + 1
                oca[q, k] = rh * (ws + ows - 1) + rw
        out["relative_position_index_SA"] = sa
        out["relative_position_index_OCA"] = oca
    return out


@pytest.mark.parametrize("arch", TRANSFORMERS)
@pytest.mark.parametrize("buffers", [True, False], ids=["with-buffers", "without-buffers"])
@pytest.mark.parametrize("key", ["params", "params_ema"])
def test_basicsr_fp_checkpoint_round_trip(tmp_path, arch, buffers, key):
    torch.manual_seed(1)
    src = build_model(arch, scale=2, binary="fp", **TINY[arch]).eval()
    with torch.no_grad():
        for p in src.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    state = dict(src.state_dict())
    if buffers:
        state.update(_official_buffers(arch, src))
    payload = {key: state}
    if key == "params_ema":
        payload["params"] = {k: torch.zeros_like(v) for k, v in state.items()}  # must not be used
    torch.save(payload, tmp_path / "official.pth")
    model = load_checkpoint(tmp_path / "official.pth", arch=arch, scale=2, binary="fp", **TINY[arch])
    x = torch.rand(1, 3, 9, 6)
    with torch.no_grad():
        assert torch.equal(model(x), src(x))


def test_basicsr_checkpoint_keys_are_the_official_names():
    """Spelled out for SwinIR-light (1 RSTB of 2 blocks) and HAT (1 RHAG of 1 HAB + OCAB)."""
    light = build_model("swinir_light", scale=2, binary="fp", embed_dim=12, depths=[2], num_heads=2, window_size=4)
    keys = ["conv_first.weight", "conv_first.bias", "patch_embed.norm.weight", "patch_embed.norm.bias"]
    for j in range(2):
        b = f"layers.0.residual_group.blocks.{j}."
        keys += [b + "norm1.weight", b + "norm1.bias", b + "attn.relative_position_bias_table"]
        keys += [b + f"attn.{n}.{p}" for n in ("qkv", "proj") for p in ("weight", "bias")]
        keys += [b + "norm2.weight", b + "norm2.bias"]
        keys += [b + f"mlp.{n}.{p}" for n in ("fc1", "fc2") for p in ("weight", "bias")]
    keys += ["layers.0.conv.weight", "layers.0.conv.bias", "norm.weight", "norm.bias"]
    keys += ["conv_after_body.weight", "conv_after_body.bias", "upsample.0.weight", "upsample.0.bias"]
    assert sorted(light.state_dict()) == sorted(keys)

    hat = build_model("hat", scale=4, binary="fp", embed_dim=12, depths=[1], num_heads=2, window_size=4, squeeze_factor=4)
    sd = hat.state_dict()
    b = "layers.0.residual_group.blocks.0."
    for k in [b + "conv_block.cab.0.weight", b + "conv_block.cab.2.weight", b + "conv_block.cab.3.attention.1.weight",
              b + "conv_block.cab.3.attention.3.bias", b + "attn.relative_position_bias_table",
              "layers.0.residual_group.overlap_attn.relative_position_bias_table",
              "layers.0.residual_group.overlap_attn.qkv.weight", "layers.0.residual_group.overlap_attn.mlp.fc2.bias",
              "conv_before_upsample.0.weight", "upsample.0.weight", "upsample.2.weight", "conv_last.bias"]:  # fmt: skip
        assert k in sd, k
    assert sd["layers.0.residual_group.overlap_attn.relative_position_bias_table"].shape == ((4 + 6 - 1) ** 2, 2)
    assert not any("relative_position_index" in k or "attn_mask" in k for k in sd)


def test_checkpoint_of_another_window_size_is_refused(tmp_path):
    src = build_model("hat_s", scale=2, binary="fp", **TINY["hat_s"])
    state = dict(src.state_dict(), **_official_buffers("hat_s", src))
    state["relative_position_index_SA"] = state["relative_position_index_SA"].flip(0)
    torch.save({"params": state}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="relative_position_index_SA"):
        load_checkpoint(tmp_path / "bad.pth", arch="hat_s", scale=2, binary="fp", **TINY["hat_s"])
    # SwinIR shares one index tensor between its blocks; every block's stored copy is checked
    light = build_model("swinir_light", scale=2, binary="fp", **TINY["swinir_light"])
    state = dict(light.state_dict(), **_official_buffers("swinir_light", light))
    key = "layers.1.residual_group.blocks.0.attn.relative_position_index"
    state[key] = state[key] + 1
    torch.save({"params": state}, tmp_path / "bad_light.pth")
    with pytest.raises(CheckpointError, match=key):
        load_checkpoint(tmp_path / "bad_light.pth", arch="swinir_light", scale=2, binary="fp", **TINY["swinir_light"])
    # unrelated unexpected keys are still reported by the strict load
    torch.save({"params": dict(src.state_dict(), extra=torch.zeros(1))}, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match="unexpected extra$"):
        load_checkpoint(tmp_path / "extra.pth", arch="hat_s", scale=2, binary="fp", **TINY["hat_s"])


# ------------------------------------------------------------------------------ ONNX export

from scales_edge.runtime.library import find_library  # noqa: E402

needs_ops = pytest.mark.skipif(
    find_library(required=False) is None and not os.environ.get("CI"), reason="the scales-edge op library is not installed"
)


def _export(model, path, **kw):
    from scales_edge.export import export_onnx

    return export_onnx(model, path, **kw)


@needs_ops
@pytest.mark.parametrize("arch", TRANSFORMERS)
def test_export_is_shape_generic_and_simplified(tmp_path, arch):
    from scales_edge.export import DOMAIN
    from scales_edge.runtime import make_session

    torch.manual_seed(0)
    model = randomize(build_model(arch, scale=2, **TINY[arch]), seed=0)
    tables = [k for k in model.state_dict() if k.endswith("relative_position_bias_table")]
    n_lin, n_conv = _expected_binary_layers(arch)
    for fuse in (True, False):
        path = tmp_path / f"m{int(fuse)}.onnx"
        proto = _export(model, path, fuse=fuse)
        ops = [n for n in proto.graph.node if n.domain == DOMAIN]
        binary = [n for n in ops if n.op_type != "WindowAttention"]
        # version 3: every binary linear one ScalesLinear, every attention one WindowAttention;
        # version 1 (fuse=False): BinaryLinear / BinaryConv2d and standard ops
        assert [n.op_type for n in binary].count("ScalesLinear" if fuse else "BinaryLinear") == n_lin
        assert [n.op_type for n in binary].count("ScalesConv2d" if fuse else "BinaryConv2d") == n_conv
        assert [n.name for n in binary] == [n for n, _ in binary_layers(model)]
        attention = [n for n in ops if n.op_type == "WindowAttention"]
        assert len(attention) == (len(tables) if fuse else 0)
        assert {i.version for i in proto.opset_import if i.domain == DOMAIN} == {3 if fuse else 1}
        meta = {p.key: p.value for p in proto.metadata_props}
        assert meta["scales_edge.arch"] == arch and meta["scales_edge.channels"] == "12"
        assert meta["scales_edge.op_domain_version"] == ("3" if fuse else "1")
        dims = proto.graph.input[0].type.tensor_type.shape.dim
        assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "height", "width"]
        # the position-bias tables are stored as tables (one shared index), not expanded to
        # heads x N x N: looked up by the op, or by a Gather in the graph
        if fuse:
            assert sorted(n.input[1] for n in attention) == sorted(tables)
            assert len({n.input[2] for n in attention}) == (2 if arch.startswith("hat") else 1)
        else:
            lookups = [n for n in proto.graph.node if n.op_type == "Gather" and n.input[0] in tables]
            assert sorted(n.input[0] for n in lookups) == sorted(tables)
        biggest = max(int(np.prod(t.dims)) for t in proto.graph.initializer)
        assert biggest == max(p.numel() for p in model.parameters() if p.dim() > 1)  # a conv weight
        # no size of the traced sample (32 x 32) is baked in: one file runs any size and batch
        sess = make_session(path, threads=1)
        for shape in [(1, 3, 5, 7), (2, 3, 17, 23), (1, 3, 48, 48), (1, 3, 50, 70)]:
            x = np.random.default_rng(0).random(shape, dtype=np.float32)
            out = sess.run(None, {"input": x})[0]
            with torch.no_grad():
                ref = model(torch.from_numpy(x)).numpy()
            assert out.shape == ref.shape == (shape[0], 3, 2 * shape[2], 2 * shape[3])
            np.testing.assert_allclose(out, ref, atol=2e-4)


@needs_ops
def test_fp32_reference_export_and_numpy_reference(tmp_path):
    """The FP32-reference export (the benchmark baseline) and the numpy reference of our ops both
    reproduce PyTorch on a SCALES SwinIR-light."""
    from onnx.reference import ReferenceEvaluator

    from scales_edge.export import DOMAIN
    from scales_edge.runtime import make_session
    from scales_edge.runtime.reference import custom_ops

    model = randomize(build_model("swinir_light", scale=2, **TINY["swinir_light"]), seed=5)
    x = np.random.default_rng(2).random((1, 3, 9, 11), dtype=np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    fp32 = _export(model, tmp_path / "fp32.onnx", binary_as="fp32-reference")
    assert not [n for n in fp32.graph.node if n.domain == DOMAIN]
    np.testing.assert_allclose(make_session(tmp_path / "fp32.onnx", threads=1).run(None, {"input": x})[0], ref, atol=2e-4)
    proto = _export(model, tmp_path / "m.onnx")
    out = ReferenceEvaluator(proto, new_ops=custom_ops()).run(None, {"input": x})[0]
    np.testing.assert_allclose(out, ref, atol=2e-4)


# ------------------------------------------------------------------------------------ parity


def synced_parity(path, model: nn.Module, x: np.ndarray) -> tuple[float, int, int]:
    """PSNR between ORT and PyTorch when PyTorch takes the *signs* of every binary layer from ORT's
    input to that layer (everything else, FP branches included, from its own computation).
    Returns (PSNR, signs that differ from PyTorch's own, signs compared)."""
    from scales_edge.runtime import make_session
    from scales_edge.runtime.validate import _with_binary_inputs_as_outputs, image_psnr

    proto, exposed = _with_binary_inputs_as_outputs(onnx.load(path))
    sess = make_session(proto, threads=1)
    names = [o.name for o in sess.get_outputs()]
    res = dict(zip(names, sess.run(names, {"input": x})))
    layers = dict(binary_layers(model))
    counts = [0, 0]

    def core_from(x_ort: np.ndarray):
        def core(layer, x_own):
            p = layer.core_params()
            conv = isinstance(layer, BinaryConv2dBase)
            shape = (1, -1, 1, 1) if conv else (-1,)
            beta = p.beta.view(shape)
            xs = sign_pm1(torch.from_numpy(x_ort) - beta)
            counts[0] += int((xs != sign_pm1(x_own - beta)).sum())
            counts[1] += xs.numel()
            if conv:
                y = F.conv2d(xs, p.weight_sign, None, layer.stride, layer.padding, layer.dilation)
            else:
                y = F.linear(xs, p.weight_sign)
            y = y * p.scale.view(shape)
            return y if p.bias is None else y + p.bias.view(shape)

        return core

    assert {name for name, _, _ in exposed} == set(layers)
    for name, xname, _ in exposed:
        layers[name].core_override = core_from(res[xname])
    try:
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
    finally:
        for layer in layers.values():
            layer.core_override = None
    return image_psnr(res[names[0]], ref), counts[0], counts[1]


SIZES = [(48, 48), (50, 70), (180, 320)]
# (arch, scale, config overrides, sizes for plain parity, sizes for synced parity)
PARITY = [
    pytest.param("swinir_light", 2, {}, SIZES, [(48, 48)], id="swinir_light-x2", marks=pytest.mark.slow),
    pytest.param("swinir_light", 4, {}, SIZES, [(48, 48)], id="swinir_light-x4", marks=pytest.mark.slow),
    pytest.param("hat_s", 2, {}, [], SIZES[:2], id="hat_s-x2", marks=pytest.mark.slow),
    pytest.param("hat_s", 4, {}, [], SIZES[:2], id="hat_s-x4", marks=pytest.mark.slow),
    pytest.param("hat_s", 2, {"depths": [2]}, SIZES, [], id="hat_s-depth2-x2", marks=pytest.mark.slow),
    pytest.param("hat_s", 4, {"depths": [2]}, SIZES, [], id="hat_s-depth2-x4", marks=pytest.mark.slow),
]


@needs_ops
@pytest.mark.parametrize("arch,scale,over,plain_sizes,synced_sizes", PARITY)
def test_ort_matches_pytorch(tmp_path, arch, scale, over, plain_sizes, synced_sizes):
    from scales_edge.export.parity import check_parity
    from scales_edge.runtime.validate import make_inputs

    torch.manual_seed(scale)
    model = randomize(build_model(arch, scale=scale, binary="scales", **over), seed=scale)
    path = tmp_path / "m.onnx"
    _export(model, path)  # one file for every size
    lines = []
    for h, w in plain_sizes:
        report = check_parity(path, model, make_inputs(sizes=[(h, w)], photos=False, seed=3), threads=1)
        (case,) = report.cases
        assert case.shape == (1, 3, h, w)
        lines.append(f"plain {h}x{w}: {case.psnr:.1f} dB, {case.sign_flips} / {case.signs} signs flipped")
        assert report.min_psnr >= 60.0, lines
    for h, w in synced_sizes:
        x = np.random.default_rng(3).random((1, 3, h, w), dtype=np.float32)
        psnr, flips, signs = synced_parity(path, model, x)
        lines.append(f"synced {h}x{w}: {psnr:.1f} dB, {flips} / {signs} signs differ from PyTorch's own")
        assert psnr >= 60.0, lines
        assert flips <= 1e-6 * signs + 10, lines  # only threshold-adjacent rounding, not a graph error
    print(f"{arch} x{scale} {over}: " + "; ".join(lines))


@needs_ops
def test_synced_parity_detects_a_wrong_graph(tmp_path):
    """The synchronized check is not vacuous: inverted weight signs of one binary conv are caught."""
    from onnx import numpy_helper

    model = randomize(build_model("swinir_light", scale=2, **TINY["swinir_light"]), seed=2)
    proto = _export(model, tmp_path / "m.onnx")
    for t in proto.graph.initializer:
        if t.name == "layers.0.conv.packed_weight":
            valid = np.uint64((1 << TINY["swinir_light"]["embed_dim"]) - 1)  # padding bits stay 0
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) ^ valid, t.name))
            break
    else:
        raise AssertionError("no packed weight of layers.0.conv")
    onnx.save(proto, tmp_path / "bad.onnx")
    x = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
    good, _, _ = synced_parity(tmp_path / "m.onnx", model, x)
    bad, _, _ = synced_parity(tmp_path / "bad.onnx", model, x)
    assert good >= 60 and bad < 40 and math.isfinite(bad)

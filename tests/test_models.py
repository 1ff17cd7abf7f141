"""Tests for the model zoo (scales_edge.models): registry, shapes, FP head/tail, configs, ablations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scales_edge.errors import ConfigError
from scales_edge.models import BINARY_SCOPES, build_model, full_config, get_arch, list_archs
from scales_edge.nn import E2FIFConv2d, ScalesConv2d, binary_layers

torch.set_num_threads(1)

# Tiny configurations, with the number of binary convs and their input widths worked out by hand.
TINY = {
    "srresnet": dict(num_feat=8, num_block=2),
    "edsr": dict(num_feat=8, num_block=2),
    "edsr_l": dict(num_feat=8, num_block=2),
    "rcan": dict(num_feat=16, num_group=2, num_block=1, squeeze_factor=4),
    "rdn": dict(num_feat=8, num_block=2, num_layer=2, growth=4),
}
# input channels of every binary conv of the TINY config, in module order, binary_scope="body"
BINARY_CIN = {
    "srresnet": [8, 8, 8, 8],  # 2 blocks x (conv1, conv2)
    "edsr": [8, 8, 8, 8, 8],  # 2 blocks x 2 + conv_after_body
    "edsr_l": [8, 8, 8, 8, 8],
    "rcan": [16] * 7,  # 2 groups x (1 RCAB x 2 convs + group conv) + conv_after_body
    # 2 dense blocks x (dense 8, dense 8+4, fusion 8+2*4) + gff 1x1 (2*8) + gff 3x3 (8)
    "rdn": [8, 12, 16, 8, 12, 16, 16, 8],
}
HEAD = {
    "srresnet": ["conv_first"],
    "edsr": ["conv_first"],
    "edsr_l": ["conv_first"],
    "rcan": ["conv_first"],
    "rdn": ["sfe1", "sfe2"],
}
TAIL = {
    "srresnet": ["upconv1", "upconv2", "conv_hr", "conv_last"],
    "edsr": ["upsample", "conv_last"],
    "edsr_l": ["upsample", "conv_last"],
    "rcan": ["upsample", "conv_last"],
    "rdn": ["upsample", "conv_last"],
}
BINARY_TYPE = {"scales": ScalesConv2d, "e2fif": E2FIFConv2d}


def paper_scope_layers(arch: str, scale: int) -> list[tuple[int, int]]:
    """(input channels, upscale) of every binary layer of the TINY config with
    binary_scope="body+upsampler", in module order: the body's, plus one binary layer per
    upsampling step (×2 twice at ×4), SRResNet's conv_hr and RDN's sfe2."""
    steps = [3] if scale == 3 else [2] * (scale // 2)
    body = [(c, 1) for c in BINARY_CIN[arch]]
    width = TINY[arch]["num_feat"]
    if arch == "srresnet":
        return body + [(width, r) for r in steps] + [(width, 1)]
    if arch == "rdn":  # upsampler: num_feat -> growth, then growth -> growth
        growth = TINY[arch]["growth"]
        return [(width, 1)] + body + [(width if i == 0 else growth, r) for i, r in enumerate(steps)]
    return body + [(width, r) for r in steps]


def tiny(arch: str) -> dict:
    if arch not in TINY:
        pytest.skip(f"no tiny test configuration for the new arch {arch!r}; add one to tests/test_models.py")
    return dict(TINY[arch])


def built_and_run(arch: str, binary: str, scale: int, **over) -> nn.Module:
    """The TINY model, checked to map a 5x7 input to a finite (5s)x(7s) output."""
    torch.manual_seed(0)
    model = build_model(arch, scale=scale, binary=binary, **tiny(arch), **over).eval()
    with torch.no_grad():
        y = model(torch.rand(2, 3, 5, 7))
    assert y.shape == (2, 3, 5 * scale, 7 * scale)
    assert torch.isfinite(y).all()
    return model


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _cases():
    # Transformers (SwinIR, HAT) have their own build/run matrix in tests/test_transformers.py.
    for arch in (a for a in list_archs() if get_arch(a).family == "cnn"):
        for binary in get_arch(arch).binaries:
            for scale in (2, 3, 4):
                yield pytest.param(arch, binary, scale, id=f"{arch}-{binary}-x{scale}")


def _paper_cases():
    for arch in (a for a in list_archs() if get_arch(a).family == "cnn"):
        for binary in ("scales", "e2fif"):
            for scale in (2, 3, 4):
                yield pytest.param(arch, binary, scale, id=f"{arch}-{binary}-x{scale}")


def test_registry_lists_the_cnn_zoo():
    assert {"srresnet", "edsr", "edsr_l", "rcan", "rdn"} <= set(list_archs())
    assert list_archs() == sorted(list_archs())
    for arch in ("srresnet", "edsr", "edsr_l", "rcan", "rdn"):
        entry = get_arch(arch)
        assert entry.family == "cnn"
        assert set(entry.binaries) == {"scales", "e2fif", "fp"}
    assert get_arch("SRResNet").name == "srresnet"  # case-insensitive


@pytest.mark.parametrize("arch,binary,scale", list(_cases()))
def test_every_arch_scale_binary_builds_and_runs(arch, binary, scale):
    """binary_scope="body": the residual body is binary, head and upsampling tail stay FP."""
    model = built_and_run(arch, binary, scale, binary_scope="body")

    layers = binary_layers(model)
    if binary == "fp":
        assert layers == []
    else:
        assert len(layers) == len(BINARY_CIN[arch])
        assert [m.in_channels for _, m in layers] == BINARY_CIN[arch]
        assert all(type(m) is BINARY_TYPE[binary] for _, m in layers)

    # head and tail stay full precision: every conv under them is a plain nn.Conv2d
    modules = dict(model.named_modules())
    tails = [t for t in TAIL[arch] if t in modules]
    if arch == "srresnet" and scale == 4:
        assert "upconv2" in tails
    for name in HEAD[arch] + tails:
        mod = modules[name]
        convs = [mod] if not list(mod.children()) else [m for m in mod.modules() if not list(m.children())]
        convs = [m for m in convs if not isinstance(m, nn.PixelShuffle)]
        assert convs, name
        assert all(type(m) is nn.Conv2d for m in convs), (name, convs)
    for lname, _ in layers:
        assert not any(lname == p or lname.startswith(p + ".") for p in HEAD[arch] + TAIL[arch]), lname
    # the first and the last convolution of the network are FP
    all_convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, ScalesConv2d, E2FIFConv2d))]
    assert type(all_convs[0]) is nn.Conv2d and all_convs[0].in_channels == 3
    assert type(all_convs[-1]) is nn.Conv2d and all_convs[-1].out_channels == 3


@pytest.mark.parametrize("arch,binary,scale", list(_paper_cases()))
def test_paper_scope_binarizes_every_conv_but_the_first_and_the_last(arch, binary, scale):
    """binary_scope="body+upsampler" (the default of a binarized model): the upsampler convs
    (each with its pixel shuffle, C -> r²C -> shuffle), SRResNet's conv_hr and RDN's sfe2 are
    binary too; the FP convs left are the first, the last, the binary layers' own re-scaling
    branches and RCAN's channel attention (1x1 convs on pooled 1x1 maps)."""
    model = built_and_run(arch, binary, scale)
    assert model.config["binary_scope"] == "body+upsampler"
    layers = binary_layers(model)
    assert [(m.in_channels, m.upscale) for _, m in layers] == paper_scope_layers(arch, scale)
    assert all(type(m) is BINARY_TYPE[binary] for _, m in layers)
    for _, m in layers:
        assert m.out_channels == m.shuffled_channels * m.upscale**2
    inside = tuple(n + "." for n, _ in layers)
    fp = [
        (n, m) for n, m in model.named_modules()
        if type(m) is nn.Conv2d and not n.startswith(inside) and ".attention." not in n
    ]
    first, last = ("sfe1" if arch == "rdn" else "conv_first"), "conv_last"
    assert [n for n, _ in fp] == [first, last]
    assert fp[0][1].in_channels == 3 and fp[1][1].out_channels == 3


def test_scope_defaults_and_choices():
    for arch in (a for a in list_archs() if get_arch(a).family == "cnn"):
        entry = get_arch(arch)
        assert entry.scopes == BINARY_SCOPES == ("body", "body+upsampler")
        assert entry.choices == {"binary_scope": BINARY_SCOPES}
        assert entry.option_choices(build_model(arch).config)["binary_scope"] == BINARY_SCOPES
        assert full_config(arch)["binary_scope"] == "body+upsampler"
        assert full_config(arch, binary="e2fif")["binary_scope"] == "body+upsampler"
        assert full_config(arch, binary="fp")["binary_scope"] == "body"
        assert full_config(arch, binary_scope="body")["binary_scope"] == "body"
    for arch in (a for a in list_archs() if get_arch(a).family == "transformer"):
        assert get_arch(arch).scopes == () and "binary_scope" not in get_arch(arch).choices


@pytest.mark.parametrize("scope", ["upsampler", "all", "", "BODY"])
def test_unknown_scope_is_named(scope):
    with pytest.raises(ConfigError, match="binary_scope"):
        build_model("srresnet", binary_scope=scope, **TINY["srresnet"])


def test_fp_model_has_no_upsampler_scope():
    with pytest.raises(ConfigError, match="binary_scope"):
        build_model("edsr", binary="fp", binary_scope="body+upsampler", **TINY["edsr"])


@pytest.mark.parametrize("arch", ["srresnet", "edsr", "edsr_l", "rcan", "rdn"])
@pytest.mark.parametrize("width", [40, 48])
def test_channel_widths_40_and_48(arch, width):
    torch.manual_seed(1)
    cfg = tiny(arch)
    cfg["num_feat"] = width
    for k in ("num_block", "num_group", "num_layer"):
        if k in cfg:
            cfg[k] = 1
    model = build_model(arch, scale=4, binary="scales", **cfg).eval()
    assert all(m.shuffled_channels in (width, cfg.get("growth", width)) for _, m in binary_layers(model))
    with torch.no_grad():
        y = model(torch.rand(1, 3, 5, 7))
    assert y.shape == (1, 3, 20, 28)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("arch", ["srresnet", "edsr", "edsr_l", "rcan", "rdn"])
def test_config_round_trips(arch):
    model = build_model(arch, scale=3, binary="scales", spatial=False, **tiny(arch))
    cfg = model.config
    assert cfg["arch"] == arch and cfg["scale"] == 3 and cfg["spatial"] is False
    for k, v in tiny(arch).items():
        assert cfg[k] == v
    again = build_model(**cfg)
    assert again.config == cfg
    sd1, sd2 = model.state_dict(), again.state_dict()
    assert list(sd1) == list(sd2)
    assert all(sd1[k].shape == sd2[k].shape for k in sd1)


def test_entry_defaults_fill_the_config():
    cfg = full_config("edsr_l")
    assert cfg["num_feat"] == 256 and cfg["num_block"] == 32 and cfg["res_scale"] == 0.1
    assert full_config("edsr")["num_feat"] == 64 and full_config("edsr")["res_scale"] == 1.0
    assert full_config("srresnet", num_feat=40)["num_feat"] == 40


def test_unknown_arch_lists_the_known_ones():
    with pytest.raises(ConfigError) as info:
        build_model("nope_net")
    msg = str(info.value)
    assert "nope_net" in msg
    for arch in list_archs():
        assert arch in msg
    assert isinstance(info.value, ValueError)


def test_unknown_keyword_is_named():
    with pytest.raises(ConfigError, match="num_fet"):
        build_model("srresnet", num_fet=8)


@pytest.mark.parametrize("arch", ["srresnet", "edsr", "edsr_l", "rcan", "rdn"])
@pytest.mark.parametrize("scale", [1, 5, 8])
def test_bad_scale(arch, scale):
    with pytest.raises(ConfigError, match="scale"):
        build_model(arch, scale=scale, **tiny(arch))


@pytest.mark.parametrize("binary", ["bibert", "binary", "FP32"])
def test_unsupported_binary(binary):
    with pytest.raises(ConfigError, match="binary|binarization"):
        build_model("srresnet", binary=binary, **TINY["srresnet"])


@pytest.mark.parametrize("arch", ["srresnet", "edsr", "edsr_l", "rcan", "rdn"])
def test_ablation_parameter_counts(arch):
    cfg = tiny(arch)
    cins = BINARY_CIN[arch]
    counts = {}
    for name, switches in {
        "full": {},
        "no_spatial": {"spatial": False},
        "no_channel": {"channel": False},
        "lsf_only": {"spatial": False, "channel": False},
        "no_lsf": {"lsf": False},
    }.items():
        counts[name] = n_params(build_model(arch, scale=2, binary="scales", binary_scope="body", **switches, **cfg))
    spatial = sum(c + 1 for c in cins)  # 1x1 conv Cin -> 1 with bias, per binary conv
    channel = 5 * len(cins)  # conv1d k=5, no bias, per binary conv
    lsf = sum(1 + c for c in cins)  # alpha + one beta per input channel
    assert counts["full"] - counts["no_spatial"] == spatial
    assert counts["full"] - counts["no_channel"] == channel
    assert counts["full"] - counts["lsf_only"] == spatial + channel
    assert counts["full"] - counts["no_lsf"] == lsf


def test_ablation_counts_by_hand_srresnet_and_rdn():
    """The same rule with the numbers written out: srresnet 4 body convs of width 8 (+ upconv1 and
    conv_hr in the paper scope); rdn widths 8..16 (+ sfe2 and the upsampler conv, width 8)."""
    def diff(arch, scope, **sw):
        full = n_params(build_model(arch, scale=2, binary_scope=scope, **TINY[arch]))
        return full - n_params(build_model(arch, scale=2, binary_scope=scope, **sw, **TINY[arch]))

    assert diff("srresnet", "body", spatial=False) == 4 * 9
    assert diff("srresnet", "body", channel=False) == 4 * 5
    assert diff("rdn", "body", spatial=False) == 9 + 13 + 17 + 9 + 13 + 17 + 17 + 9
    assert diff("rdn", "body", channel=False) == 8 * 5
    assert diff("srresnet", "body+upsampler", spatial=False) == 6 * 9
    assert diff("srresnet", "body+upsampler", channel=False) == 6 * 5
    assert diff("rdn", "body+upsampler", spatial=False) == 9 + 9 + 13 + 17 + 9 + 13 + 17 + 17 + 9 + 9
    assert diff("rdn", "body+upsampler", channel=False) == 10 * 5


def test_ablation_switches_reach_every_layer():
    model = build_model("rcan", scale=2, spatial=False, skip=False, lsf=False, **TINY["rcan"])
    for _, m in binary_layers(model):
        assert m.spatial is None and m.channel is not None and m.skip is False and m.lsf is False


def test_srresnet_fp_keys_follow_basicsr_msrresnet():
    for scale in (2, 3, 4):
        model = build_model("srresnet", binary="fp", scale=scale, num_feat=8, num_block=2)
        expected = ["conv_first.weight", "conv_first.bias"]
        for i in range(2):
            for c in ("conv1", "conv2"):
                expected += [f"body.{i}.{c}.weight", f"body.{i}.{c}.bias"]
        expected += ["upconv1.weight", "upconv1.bias"]
        if scale == 4:
            expected += ["upconv2.weight", "upconv2.bias"]
        expected += ["conv_hr.weight", "conv_hr.bias", "conv_last.weight", "conv_last.bias"]
        sd = model.state_dict()
        assert list(sd) == expected
        up = 4 if scale == 4 else scale * scale
        assert sd["upconv1.weight"].shape == (8 * up, 8, 3, 3)
        assert sd["conv_first.weight"].shape == (8, 3, 3, 3)
        assert sd["conv_last.weight"].shape == (3, 8, 3, 3)


def test_edsr_fp_keys_follow_basicsr_edsr():
    model = build_model("edsr", binary="fp", scale=4, num_feat=8, num_block=1)
    expected = [
        "conv_first.weight", "conv_first.bias",
        "body.0.conv1.weight", "body.0.conv1.bias", "body.0.conv2.weight", "body.0.conv2.bias",
        "conv_after_body.weight", "conv_after_body.bias",
        "upsample.0.weight", "upsample.0.bias", "upsample.2.weight", "upsample.2.bias",
        "conv_last.weight", "conv_last.bias",
    ]  # fmt: skip
    assert list(model.state_dict()) == expected


def test_srresnet_fp_adds_bilinear_base():
    """With the tail zeroed, the FP SRResNet output is exactly the bilinear upsampled input."""
    model = build_model("srresnet", binary="fp", scale=2, num_feat=8, num_block=1).eval()
    with torch.no_grad():
        model.conv_last.weight.zero_()
        model.conv_last.bias.zero_()
        x = torch.rand(1, 3, 4, 6)
        y = model(x)
    # bilinear x2, align_corners=False, written out: out[2i] = 0.25 x[i-1] + 0.75 x[i] (edge-clamped) ...
    def up1d(a, dim):
        n = a.shape[dim]
        idx = torch.arange(n)
        prev = a.index_select(dim, (idx - 1).clamp(min=0))
        nxt = a.index_select(dim, (idx + 1).clamp(max=n - 1))
        even, odd = 0.25 * prev + 0.75 * a, 0.75 * a + 0.25 * nxt
        return torch.stack([even, odd], dim=dim + 1).flatten(dim, dim + 1)

    expected = up1d(up1d(x, 2), 3)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("binary", ["scales", "e2fif"])
def test_binary_body_does_not_double_the_identity(binary):
    """Each residual block must add the identity of its input once. With a skip in both convs of a
    block plus the block's own add, features double per block (2^16 over SRResNet's body)."""
    torch.manual_seed(0)
    model = build_model("srresnet", num_feat=16, num_block=16, scale=2, binary=binary).eval()
    x = torch.rand(1, 16, 12, 12)
    stds = [x.std().item()]
    with torch.no_grad():
        for block in model.body:
            x = block(x)
            stds.append(x.std().item())
    # Additive growth stays far below 2^8 = 256 over the last 8 blocks; doubling would reach it.
    assert stds[16] / stds[8] < 8, stds


def test_zero_blocks_is_the_head_and_tail_network():
    """A count of repeated blocks may be 0 (the benchmarks' FP32 head+tail floor); -1 may not."""
    import torch

    m = build_model("srresnet", scale=2, num_feat=8, num_block=0, binary="fp").eval()
    assert not [k for k in m.state_dict() if k.startswith("body.")]
    assert m(torch.rand(1, 3, 5, 6)).shape == (1, 3, 10, 12)
    with pytest.raises(ConfigError, match="num_block must be 0 or a positive integer, got -1"):
        build_model("srresnet", num_block=-1)
    with pytest.raises(ConfigError, match="num_feat must be a positive integer, got 0"):
        build_model("srresnet", num_feat=0)

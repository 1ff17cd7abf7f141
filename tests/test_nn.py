"""Tests for scales_edge.nn: the SCALES binary layers, their baselines and the binarization primitives.

Every expected value is computed from the formulas of ``scales_edge/nn/layers.py``'s module docstring,
written out again here with plain torch ops (never by calling the layer's own helpers).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from scales_edge.nn import (
    BiBERTLinear,
    BinarySpec,
    E2FIFConv2d,
    ScalesConv2d,
    ScalesLinear,
    sign_pm1,
    sign_ste,
)

torch.set_num_threads(1)

# ----------------------------------------------------------------------------- plain references


def ref_sign(v: torch.Tensor) -> torch.Tensor:
    """+1 where v >= 0, -1 elsewhere (the project's convention), written without the library."""
    out = torch.full_like(v, -1.0)
    out[v >= 0] = 1.0
    return out


def ref_conv_core(x, weight, bias, alpha, beta, stride, padding, dilation):
    """conv(sign(X - beta), sign(W)) * alpha * mean|W_c| + bias, zero padding of the binarized input."""
    xb = ref_sign(x - beta.view(1, -1, 1, 1))
    wb = ref_sign(weight)
    y = F.conv2d(xb, wb, None, stride, padding, dilation)
    scale = alpha * weight.abs().mean(dim=(1, 2, 3))
    y = y * scale.view(1, -1, 1, 1)
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)
    return y


def ref_spatial(x, w, b, stride):
    """sigmoid(conv1x1_{C_in -> 1}(X)) written as a weighted channel sum (subsampled for stride)."""
    xs = x[:, :, ::stride, ::stride]
    logits = (xs * w.view(1, -1, 1, 1)).sum(dim=1, keepdim=True) + b.view(1, 1, 1, 1)
    return torch.sigmoid(logits)


def ref_channel(source, k):
    """sigmoid(conv1d_k(GAP(source))) over the channel axis, zero padded, no bias; k is the kernel [K]."""
    n, c = source.shape[:2]
    pooled = source.mean(dim=(2, 3))  # [N, C]
    half = k.numel() // 2
    padded = F.pad(pooled, (half, half))
    out = torch.zeros(n, c, dtype=source.dtype)
    for j in range(k.numel()):
        out = out + k[j] * padded[:, j : j + c]
    return torch.sigmoid(out)[:, :, None, None]


def ref_scales_conv(layer: ScalesConv2d, x: torch.Tensor) -> torch.Tensor:
    """The eval-mode ScalesConv2d formula of the module docstring, from the layer's raw tensors."""
    with torch.no_grad():
        y = ref_conv_core(
            x,
            layer.weight,
            layer.bias,
            layer.alpha,
            layer.beta,
            layer.stride,
            layer.dilation * (layer.kernel_size - 1) // 2,
            layer.dilation,
        )
        if layer.spatial is not None:
            y = y * ref_spatial(x, layer.spatial.weight.flatten(), layer.spatial.bias, layer.stride)
        if layer.channel is not None:
            source = x if layer.in_channels == layer.out_channels else y
            y = y * ref_channel(source, layer.channel.weight.flatten())
        if layer.in_channels == layer.out_channels and layer.stride == 1:
            y = y + x
        return y


def randomize_(module: nn.Module, seed: int = 0, buffers: bool = True) -> None:
    """Give every parameter (and buffer) a non-default value (alpha != 1, beta != 0, ...)."""
    g = torch.Generator().manual_seed(seed)
    tensors = list(module.named_parameters()) + (list(module.named_buffers()) if buffers else [])
    with torch.no_grad():
        for name, p in tensors:
            if name.endswith("alpha"):
                p.fill_(0.75)
            elif name.endswith("beta"):
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            elif name.endswith("running_var"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif name.endswith("num_batches_tracked"):
                continue
            else:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))


# ----------------------------------------------------------------------------- primitives / sign


def test_sign_pm1_and_ste_map_zero_to_plus_one():
    v = torch.tensor([-2.0, -1e-7, 0.0, -0.0, 1e-7, 3.0])
    expected = torch.tensor([-1.0, -1.0, 1.0, 1.0, 1.0, 1.0])
    assert torch.equal(sign_pm1(v), expected)
    v_grad = v.clone().requires_grad_(True)
    assert torch.equal(sign_ste(v_grad), expected)
    # torch.sign would give 0 there: the convention must not be torch.sign's
    assert not torch.equal(sign_pm1(v), torch.sign(v))


def test_scales_conv_input_equal_to_beta_binarizes_to_plus_one():
    torch.manual_seed(0)
    layer = ScalesConv2d(3, 5, 3, spatial=False, channel=False, skip=False).eval()
    randomize_(layer)
    x = layer.beta.detach().view(1, 3, 1, 1).expand(2, 3, 5, 6).clone()  # x - beta == 0 everywhere
    assert torch.equal(x - layer.beta.view(1, -1, 1, 1), torch.zeros_like(x))
    w, b = layer.weight.detach(), layer.bias.detach()
    scale = (0.75 * w.abs().mean(dim=(1, 2, 3))).view(1, -1, 1, 1)
    plus = F.conv2d(torch.ones_like(x), ref_sign(w), None, 1, 1) * scale + b.view(1, -1, 1, 1)
    with_torch_sign = F.conv2d(torch.sign(x - layer.beta.view(1, -1, 1, 1).detach()), ref_sign(w), None, 1, 1)
    with_torch_sign = with_torch_sign * scale + b.view(1, -1, 1, 1)
    with torch.no_grad():
        out = layer(x)
    torch.testing.assert_close(out, plus, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out, with_torch_sign, atol=1e-3)
    # the same in train mode with gradients enabled (the STE path)
    layer.train()
    out_train = layer(x.clone().requires_grad_(True))
    torch.testing.assert_close(out_train.detach(), plus, rtol=1e-5, atol=1e-5)


def test_scales_conv_zero_input_with_lsf_off_binarizes_to_plus_one():
    torch.manual_seed(1)
    layer = ScalesConv2d(4, 4, 3, lsf=False, spatial=False, channel=False, skip=False).eval()
    x = torch.zeros(1, 4, 5, 5)
    w, b = layer.weight.detach(), layer.bias.detach()
    expected = F.conv2d(torch.ones_like(x), ref_sign(w), None, 1, 1)
    expected = expected * w.abs().mean(dim=(1, 2, 3)).view(1, -1, 1, 1) + b.view(1, -1, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)
        # with torch.sign every input tap would be 0 and the output would be the bias alone
        assert not torch.allclose(layer(x), b.view(1, -1, 1, 1).expand_as(expected), atol=1e-3)


def test_e2fif_zero_input_binarizes_to_plus_one():
    torch.manual_seed(2)
    layer = E2FIFConv2d(3, 3, 3).eval()
    randomize_(layer)
    x = torch.zeros(2, 3, 4, 5)
    w = layer.weight.detach()
    bn = layer.bn
    inv = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    z = F.conv2d(torch.ones_like(x), ref_sign(w), None, 1, 1) * w.abs().mean(dim=(1, 2, 3)).view(1, -1, 1, 1)
    expected = (z - bn.running_mean.view(1, -1, 1, 1)) * inv.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
    expected = expected + x
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected.detach(), rtol=1e-5, atol=1e-5)
        zeros_ref = (0 - bn.running_mean.view(1, -1, 1, 1)) * inv.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
        assert not torch.allclose(layer(x), zeros_ref.expand_as(expected), atol=1e-3)


def test_scales_linear_input_equal_to_beta_binarizes_to_plus_one():
    torch.manual_seed(3)
    layer = ScalesLinear(6, 4, spatial=False).eval()
    randomize_(layer)
    x = layer.beta.detach().expand(2, 3, 6).clone()
    w, b = layer.weight.detach(), layer.bias.detach()
    expected = torch.ones(2, 3, 6) @ (ref_sign(w) * (0.75 * w.abs().mean(dim=1, keepdim=True))).T + b
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(layer(x), b.expand_as(expected), atol=1e-3)


def test_bibert_zero_input_binarizes_to_plus_one():
    torch.manual_seed(4)
    layer = BiBERTLinear(5, 3).eval()
    x = torch.zeros(2, 4, 5)
    w, b = layer.weight.detach(), layer.bias.detach()
    expected = torch.ones(2, 4, 5) @ (ref_sign(w) * w.abs().mean(dim=1, keepdim=True)).T + b
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(layer(x), b.expand_as(expected), atol=1e-3)


# ----------------------------------------------------------------------------- ScalesConv2d formula

CONV_SETTINGS = [
    # cin, cout, k, stride, dilation, bias, H, W
    (4, 4, 3, 1, 1, True, 7, 9),
    (4, 4, 3, 2, 1, True, 9, 7),
    (4, 4, 3, 1, 2, True, 7, 11),
    (4, 4, 3, 2, 2, False, 11, 9),
    (4, 4, 1, 1, 1, True, 5, 7),
    (3, 6, 3, 1, 1, True, 7, 5),
    (6, 3, 1, 2, 1, False, 9, 9),
    (5, 2, 3, 1, 2, True, 9, 7),
]


@pytest.mark.parametrize("cin,cout,k,stride,dil,bias,h,w", CONV_SETTINGS)
def test_scales_conv_eval_matches_inference_formula(cin, cout, k, stride, dil, bias, h, w):
    torch.manual_seed(10 + cin * cout + k + stride + dil)
    layer = ScalesConv2d(cin, cout, k, stride, dilation=dil, bias=bias).eval()
    randomize_(layer, seed=cin + 7 * cout)
    x = torch.randn(2, cin, h, w)
    with torch.no_grad():
        out = layer(x)
    expected = ref_scales_conv(layer, x)
    h_out = (h - 1) // stride + 1
    w_out = (w - 1) // stride + 1
    assert out.shape == (2, cout, h_out, w_out)
    assert layer.skip == (cin == cout and stride == 1)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_scales_conv_channel_scale_pools_the_output_when_widths_differ():
    """Cin != Cout: the channel scale comes from the spatially re-scaled core output, not from X."""
    torch.manual_seed(11)
    layer = ScalesConv2d(3, 6, 3).eval()
    randomize_(layer, seed=11)
    x = torch.randn(2, 3, 7, 5)
    with torch.no_grad():
        y = ref_conv_core(x, layer.weight, layer.bias, layer.alpha, layer.beta, 1, 1, 1)
        y = y * ref_spatial(x, layer.spatial.weight.flatten(), layer.spatial.bias, 1)
        expected = y * ref_channel(y, layer.channel.weight.flatten())
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)
    assert layer.skip is False


# ----------------------------------------------------------------------------- component ablations


def _variant(full: ScalesConv2d, **switches) -> ScalesConv2d:
    other = ScalesConv2d(
        full.in_channels, full.out_channels, full.kernel_size, full.stride, dilation=full.dilation, **switches
    ).eval()
    missing, unexpected = other.load_state_dict(full.state_dict(), strict=False)
    assert not missing, missing  # every tensor of the ablated layer comes from the full one
    return other


@pytest.fixture()
def full_layer():
    torch.manual_seed(20)
    layer = ScalesConv2d(5, 5, 3).eval()
    randomize_(layer, seed=20)
    return layer


def test_spatial_branch_multiplies_by_sigmoid_of_1x1_conv(full_layer):
    x = torch.randn(2, 5, 6, 7)
    no_spatial = _variant(full_layer, spatial=False)
    sig = ref_spatial(x, full_layer.spatial.weight.detach().flatten(), full_layer.spatial.bias.detach(), 1)
    assert sig.shape == (2, 1, 6, 7)
    with torch.no_grad():
        full, ablated = full_layer(x) - x, no_spatial(x) - x
    torch.testing.assert_close(full, ablated * sig, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(full, ablated, atol=1e-3)


def test_channel_branch_multiplies_by_channel_scale(full_layer):
    x = torch.randn(2, 5, 6, 7)
    no_channel = _variant(full_layer, channel=False)
    cs = ref_channel(x, full_layer.channel.weight.detach().flatten())
    assert cs.shape == (2, 5, 1, 1)
    with torch.no_grad():
        full, ablated = full_layer(x) - x, no_channel(x) - x
    torch.testing.assert_close(full, ablated * cs, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(full, ablated, atol=1e-3)


def test_skip_adds_the_input(full_layer):
    x = torch.randn(2, 5, 6, 7)
    no_skip = _variant(full_layer, skip=False)
    assert full_layer.skip and not no_skip.skip
    with torch.no_grad():
        torch.testing.assert_close(full_layer(x) - no_skip(x), x, rtol=0, atol=1e-5)


def test_lsf_off_uses_fixed_buffers_and_threshold_zero():
    torch.manual_seed(21)
    layer = ScalesConv2d(4, 4, 3, lsf=False, spatial=False, channel=False, skip=False).eval()
    params = dict(layer.named_parameters())
    buffers = dict(layer.named_buffers())
    assert "alpha" not in params and "beta" not in params
    assert torch.equal(buffers["alpha"], torch.tensor(1.0))
    assert torch.equal(buffers["beta"], torch.zeros(4))
    assert {"alpha", "beta"} <= set(layer.state_dict())  # exported graphs keep the same shape
    x = torch.randn(2, 4, 5, 6)
    x[0, :, 0, :] = 0.0  # exact zeros binarize to +1
    w, b = layer.weight.detach(), layer.bias.detach()
    expected = F.conv2d(ref_sign(x), ref_sign(w), None, 1, 1)
    expected = expected * w.abs().mean(dim=(1, 2, 3)).view(1, -1, 1, 1) + b.view(1, -1, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)
    # LSF on has one alpha + Cin betas more parameters
    with_lsf = ScalesConv2d(4, 4, 3, spatial=False, channel=False, skip=False)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(with_lsf) - n(layer) == 1 + 4


# ----------------------------------------------------------------------------- gradients


def test_train_mode_gradients_reach_every_parameter():
    torch.manual_seed(30)
    layer = ScalesConv2d(4, 4, 3).train()
    randomize_(layer, seed=30)
    with torch.no_grad():
        layer.weight.mul_(0.5)  # keep latent weights inside the STE clip
    x = torch.randn(2, 4, 6, 6)
    g = torch.randn(2, 4, 6, 6)
    (layer(x) * g).sum().backward()
    for name in ("alpha", "beta", "weight", "bias", "spatial.weight", "spatial.bias", "channel.weight"):
        grad = layer.get_parameter(name).grad
        assert grad is not None, name
        assert torch.isfinite(grad).all(), name
        assert grad.abs().sum() > 0, name


def test_sign_ste_gradient_is_clipped_hardtanh():
    torch.manual_seed(31)
    layer = ScalesConv2d(3, 4, 3, spatial=False, channel=False, skip=False).train()
    randomize_(layer, seed=31)
    with torch.no_grad():
        layer.bias.zero_()
        layer.weight.mul_(0.3)
    x = (2.0 * torch.randn(2, 3, 6, 5)).requires_grad_(True)
    g = torch.randn(2, 4, 6, 5)
    (layer(x) * g).sum().backward()

    beta = layer.beta.detach().view(1, -1, 1, 1)
    w = layer.weight.detach()
    scale = (layer.alpha.detach() * w.abs().mean(dim=(1, 2, 3))).view(1, -1, 1, 1)
    # d/dX of sum(G * scale * conv(sign(X - beta), sign W)) with d sign(v)/dv = 1[|v| <= 1]:
    through_conv = F.conv_transpose2d(g * scale, ref_sign(w), None, 1, 1)
    v = x.detach() - beta
    inside = (v.abs() <= 1.0).to(x.dtype)
    expected_dx = through_conv * inside
    assert (inside == 0).any() and (inside == 1).any()
    torch.testing.assert_close(x.grad, expected_dx, rtol=1e-5, atol=1e-5)
    assert torch.all(x.grad[v.abs() > 1.0] == 0)
    # beta sits on the other side of the subtraction
    torch.testing.assert_close(layer.beta.grad, -expected_dx.sum(dim=(0, 2, 3)), rtol=1e-4, atol=1e-4)
    # alpha: d/d alpha of sum(G * alpha * mean|W_c| * conv(...))
    conv = F.conv2d(ref_sign(x.detach() - beta), ref_sign(w), None, 1, 1)
    expected_dalpha = (g * conv * w.abs().mean(dim=(1, 2, 3)).view(1, -1, 1, 1)).sum()
    torch.testing.assert_close(layer.alpha.grad, expected_dalpha, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- E2FIF


def _e2fif_ref_eval(layer: E2FIFConv2d, x: torch.Tensor) -> torch.Tensor:
    bn = layer.bn
    w = layer.weight.detach()
    z = F.conv2d(ref_sign(x), ref_sign(w), None, layer.stride, layer.padding, layer.dilation)
    z = z * w.abs().mean(dim=(1, 2, 3)).view(1, -1, 1, 1)
    y = (z - bn.running_mean.view(1, -1, 1, 1)) / torch.sqrt(bn.running_var.view(1, -1, 1, 1) + bn.eps)
    return y * bn.weight.detach().view(1, -1, 1, 1) + bn.bias.detach().view(1, -1, 1, 1)


def test_e2fif_eval_equals_folded_batch_norm():
    torch.manual_seed(40)
    layer = E2FIFConv2d(4, 4, 3).eval()
    randomize_(layer, seed=40)
    x = torch.randn(2, 4, 7, 5)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), _e2fif_ref_eval(layer, x) + x, rtol=1e-5, atol=1e-5)
        no_skip = E2FIFConv2d(4, 6, 3).eval()
        randomize_(no_skip, seed=41)
        assert not no_skip.skip
        torch.testing.assert_close(no_skip(x), _e2fif_ref_eval(no_skip, x), rtol=1e-5, atol=1e-5)


def test_e2fif_core_params_are_the_folded_scale_and_bias():
    torch.manual_seed(42)
    layer = E2FIFConv2d(3, 5, 3).eval()
    randomize_(layer, seed=42)
    p = layer.core_params()
    bn = layer.bn
    inv = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    torch.testing.assert_close(p.scale, layer.weight.detach().abs().mean(dim=(1, 2, 3)) * inv)
    torch.testing.assert_close(p.bias, bn.bias.detach() - bn.running_mean * inv)
    assert torch.equal(p.beta, torch.zeros(3))
    assert torch.equal(p.weight_sign, ref_sign(layer.weight.detach()))
    x = torch.randn(2, 3, 6, 6)
    applied = F.conv2d(ref_sign(x - p.beta.view(1, -1, 1, 1)), p.weight_sign, None, 1, 1)
    applied = applied * p.scale.view(1, -1, 1, 1) + p.bias.view(1, -1, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(layer.core(x), applied, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(layer.core(x), _e2fif_ref_eval(layer, x), rtol=1e-5, atol=1e-5)


def test_e2fif_train_mode_uses_batch_statistics():
    torch.manual_seed(43)
    layer = E2FIFConv2d(4, 4, 3).train()
    randomize_(layer, seed=43)
    old_mean = layer.bn.running_mean.clone()
    old_var = layer.bn.running_var.clone()
    x = torch.randn(3, 4, 6, 5)
    w = layer.weight.detach()
    z = F.conv2d(ref_sign(x), ref_sign(w), None, 1, 1) * w.abs().mean(dim=(1, 2, 3)).view(1, -1, 1, 1)
    mean = z.mean(dim=(0, 2, 3))
    var = z.var(dim=(0, 2, 3), unbiased=False)
    expected = (z - mean.view(1, -1, 1, 1)) / torch.sqrt(var.view(1, -1, 1, 1) + layer.bn.eps)
    expected = expected * layer.bn.weight.detach().view(1, -1, 1, 1) + layer.bn.bias.detach().view(1, -1, 1, 1)
    out = layer(x)
    torch.testing.assert_close(out.detach(), expected + x, rtol=1e-4, atol=1e-4)
    # and it is not the running-stat formula
    assert not torch.allclose(out.detach(), _e2fif_ref_eval(layer, x) + x, atol=1e-2)
    torch.testing.assert_close(layer.bn.running_mean, 0.9 * old_mean + 0.1 * mean, rtol=1e-4, atol=1e-5)
    unbiased = z.var(dim=(0, 2, 3), unbiased=True)
    torch.testing.assert_close(layer.bn.running_var, 0.9 * old_var + 0.1 * unbiased, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- linear layers


def test_scales_linear_formula_on_tokens():
    torch.manual_seed(50)
    layer = ScalesLinear(6, 5).eval()
    randomize_(layer, seed=50)
    x = torch.randn(2, 7, 6)
    w, b = layer.weight.detach(), layer.bias.detach()
    beta = layer.beta.detach()
    core = ref_sign(x - beta) @ ref_sign(w).T * (0.75 * w.abs().mean(dim=1)) + b
    token_scale = torch.sigmoid(x @ layer.spatial.weight.detach().flatten() + layer.spatial.bias.detach())
    assert token_scale.shape == (2, 7)
    with torch.no_grad():
        out = layer(x)
    torch.testing.assert_close(out, core * token_scale[..., None], rtol=1e-5, atol=1e-5)
    # the spatial scale is per token: changing token 3 leaves every other token's output alone
    x2 = x.clone()
    x2[:, 3] += torch.randn(2, 6)
    with torch.no_grad():
        out2 = layer(x2)
    keep = [t for t in range(7) if t != 3]
    assert torch.equal(out2[:, keep], out[:, keep])
    assert not torch.allclose(out2[:, 3], out[:, 3])


def test_scales_linear_skip_and_ablations():
    torch.manual_seed(51)
    skip = ScalesLinear(4, 4, skip=True, spatial=False).eval()
    randomize_(skip, seed=51)
    plain = ScalesLinear(4, 4, skip=False, spatial=False).eval()
    plain.load_state_dict(skip.state_dict())
    x = torch.randn(3, 2, 4)
    with torch.no_grad():
        torch.testing.assert_close(skip(x) - plain(x), x, rtol=0, atol=1e-5)
    assert ScalesLinear(4, 6, skip=True).skip is False
    nolsf = ScalesLinear(4, 3, lsf=False)
    assert "alpha" not in dict(nolsf.named_parameters()) and "beta" in dict(nolsf.named_buffers())


def test_bibert_linear_formula():
    torch.manual_seed(52)
    layer = BiBERTLinear(6, 4).eval()
    randomize_(layer, seed=52, buffers=False)  # its zero threshold is a fixed buffer
    x = torch.randn(2, 5, 6)
    w, b = layer.weight.detach(), layer.bias.detach()
    expected = ref_sign(x) @ (w.abs().mean(dim=1, keepdim=True) * ref_sign(w)).T + b
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)
    # no learnable threshold / scale, and the zero threshold is not saved
    assert set(dict(layer.named_parameters())) == {"weight", "bias"}
    assert set(layer.state_dict()) == {"weight", "bias"}


# ----------------------------------------------------------------------------- core_params


@pytest.mark.parametrize("cin,cout,k,stride,dil,bias,h,w", CONV_SETTINGS[:6])
def test_scales_conv_core_params_reproduce_core(cin, cout, k, stride, dil, bias, h, w):
    torch.manual_seed(60 + k + stride)
    layer = ScalesConv2d(cin, cout, k, stride, dilation=dil, bias=bias).eval()
    randomize_(layer, seed=60 + cin)
    p = layer.core_params()
    w_ = layer.weight.detach()
    torch.testing.assert_close(p.scale, 0.75 * w_.abs().mean(dim=(1, 2, 3)))
    torch.testing.assert_close(p.beta, layer.beta.detach())
    assert torch.equal(p.weight_sign, ref_sign(w_))
    assert set(p.weight_sign.unique().tolist()) <= {-1.0, 1.0}
    assert (p.bias is None) == (not bias)
    x = torch.randn(2, cin, h, w)
    pad = dil * (k - 1) // 2
    applied = F.conv2d(ref_sign(x - p.beta.view(1, -1, 1, 1)), p.weight_sign, None, stride, pad, dil)
    applied = applied * p.scale.view(1, -1, 1, 1)
    if p.bias is not None:
        applied = applied + p.bias.view(1, -1, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(layer.core(x), applied, rtol=1e-5, atol=1e-5)
    # the params are detached copies: editing them does not touch the layer
    p.scale.mul_(2)
    torch.testing.assert_close(layer.core_params().scale, 0.75 * w_.abs().mean(dim=(1, 2, 3)))


def test_linear_core_params_reproduce_core():
    torch.manual_seed(61)
    for layer in (ScalesLinear(5, 3), BiBERTLinear(5, 3)):
        randomize_(layer.eval(), seed=61, buffers=isinstance(layer, ScalesLinear))
        p = layer.core_params()
        x = torch.randn(4, 5)
        applied = ref_sign(x - p.beta) @ p.weight_sign.T * p.scale + p.bias
        with torch.no_grad():
            torch.testing.assert_close(layer.core(x), applied, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- BinarySpec


def test_binary_spec_rejects_unknown_kind():
    with pytest.raises(ValueError, match="nope"):
        BinarySpec("nope")


def test_binary_spec_builds_the_right_modules():
    fp = BinarySpec("fp").conv(4, 6, 3, stride=1, dilation=2, bias=False)
    assert type(fp) is nn.Conv2d
    assert fp.padding == (2, 2) and fp.dilation == (2, 2) and fp.bias is None
    assert type(BinarySpec("fp").linear(4, 3)) is nn.Linear
    assert type(BinarySpec("e2fif").conv(4, 4)) is E2FIFConv2d
    assert type(BinarySpec("bibert").conv(4, 4)) is E2FIFConv2d
    assert type(BinarySpec("e2fif").linear(4, 3)) is BiBERTLinear
    conv = BinarySpec("scales", lsf=False, spatial=False, channel=True, skip=False).conv(4, 4)
    assert type(conv) is ScalesConv2d
    assert conv.lsf is False and conv.spatial is None and conv.channel is not None and conv.skip is False
    lin = BinarySpec("scales", spatial=False).linear(4, 3)
    assert type(lin) is ScalesLinear and lin.spatial is None


def test_scales_conv_rejects_even_channel_kernel():
    with pytest.raises(ValueError):
        ScalesConv2d(4, 4, channel_kernel=4)


def test_scales_conv_valid_padding_is_rejected_or_works():
    try:
        layer = ScalesConv2d(4, 4, 3, padding=0).eval()
    except ValueError:
        return
    with torch.no_grad():
        out = layer(torch.randn(1, 4, 7, 9))
    assert out.shape == (1, 4, 5, 7)


# ----------------------------------------------------------------------------- upsampling layers


def ref_pixel_shuffle(z: torch.Tensor, r: int) -> torch.Tensor:
    """Y[n, f, h*r + i, w*r + j] = Z[n, f*r*r + i*r + j, h, w], written with explicit indexing."""
    n, m, h, w = z.shape
    f = m // (r * r)
    y = torch.empty(n, f, h * r, w * r, dtype=z.dtype)
    for c in range(f):
        for i in range(r):
            for j in range(r):
                y[:, c, i::r, j::r] = z[:, c * r * r + i * r + j]
    return y


def ref_scales_upsampler(layer: ScalesConv2d, x: torch.Tensor) -> torch.Tensor:
    """The upsampling SCALES conv as the issue describes it, before the shuffle: the conv's r²F
    channels scaled, the channel scale of feature f on its r² channels, the input repeated r² times
    along the channels (channel f*r² + k gets X[f]) as the skip, then the pixel shuffle."""
    r = layer.upscale
    with torch.no_grad():
        z = ref_conv_core(x, layer.weight, layer.bias, layer.alpha, layer.beta, 1, 1, 1)
        if layer.spatial is not None:
            z = z * ref_spatial(x, layer.spatial.weight.flatten(), layer.spatial.bias, 1)
        f = layer.out_channels // (r * r)
        if layer.channel is not None:
            if layer.in_channels == f:
                cs = ref_channel(x, layer.channel.weight.flatten())  # [N, F, 1, 1]
            else:  # pool the shuffled output, per output feature
                cs = ref_channel(ref_pixel_shuffle(z, r), layer.channel.weight.flatten())
            z = z * cs.repeat_interleave(r * r, dim=1)
        if layer.in_channels == f:
            z = z + x.repeat_interleave(r * r, dim=1)
        return ref_pixel_shuffle(z, r)


@pytest.mark.parametrize("r", [2, 3, 4])
@pytest.mark.parametrize("cin,feat", [(4, 4), (5, 3)])
@pytest.mark.parametrize("switches", [{}, {"spatial": False}, {"channel": False}, {"lsf": False}])
def test_scales_upsampler_matches_the_repeat_skip_formula(r, cin, feat, switches):
    torch.manual_seed(60 + r)
    layer = ScalesConv2d(cin, feat * r * r, 3, upscale=r, **switches).eval()
    randomize_(layer, seed=60 + r)
    assert layer.shuffled_channels == feat and layer.skip == (cin == feat)
    assert layer.channel_from_input == (cin == feat)
    x = torch.randn(2, cin, 5, 7)
    with torch.no_grad():
        y = layer(x)
    assert y.shape == (2, feat, 5 * r, 7 * r)
    torch.testing.assert_close(y, ref_scales_upsampler(layer, x), rtol=1e-5, atol=1e-5)


def test_upsampler_skip_copies_each_feature_to_its_r_by_r_pixels():
    layer = ScalesConv2d(3, 3 * 9, 3, upscale=3, spatial=False, channel=False).eval()
    with torch.no_grad():
        layer.weight.zero_()  # core = 0 * conv + bias
        layer.bias.zero_()
    x = torch.randn(1, 3, 4, 5)
    with torch.no_grad():
        y = layer(x)
    for i in range(3):
        for j in range(3):
            assert torch.equal(y[:, :, i::3, j::3], x)


@pytest.mark.parametrize("r", [2, 3])
def test_e2fif_upsampler_is_folded_batch_norm_plus_repeated_input(r):
    torch.manual_seed(70)
    layer = E2FIFConv2d(4, 4 * r * r, 3, upscale=r).eval()
    randomize_(layer, seed=70)
    x = torch.randn(2, 4, 6, 5)
    z = _e2fif_ref_eval(layer, x) + x.repeat_interleave(r * r, dim=1)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), ref_pixel_shuffle(z, r), rtol=1e-5, atol=1e-5)


def test_upsampler_geometry_is_checked():
    with pytest.raises(ValueError, match="upscale"):
        ScalesConv2d(4, 10, 3, upscale=2)  # 10 is not a multiple of 4
    with pytest.raises(ValueError, match="upscale"):
        ScalesConv2d(4, 16, 3, stride=2, upscale=2)
    with pytest.raises(ValueError):
        E2FIFConv2d(4, 16, 3, upscale=0)


def test_binary_spec_upsampler():
    up = BinarySpec("scales", spatial=False).upsampler(4, 4, 3)
    assert type(up) is ScalesConv2d and up.upscale == 3 and up.out_channels == 36 and up.spatial is None
    assert type(BinarySpec("e2fif").upsampler(4, 4, 2)) is E2FIFConv2d
    fp = BinarySpec("fp").upsampler(4, 4, 2)
    assert [type(m) for m in fp] == [nn.Conv2d, nn.PixelShuffle] and fp[0].out_channels == 16


def test_upsampler_gradients_reach_every_parameter():
    layer = ScalesConv2d(4, 16, 3, upscale=2).train()
    randomize_(layer, seed=71)
    layer(torch.randn(2, 4, 6, 6)).square().mean().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name

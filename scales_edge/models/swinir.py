"""SwinIR (Liang et al. 2021) with a binarizable body, in the official/BasicSR layout.

Input reflect-padded to a window multiple → mean shift → ``conv_first`` (FP) → ``patch_embed``
(LayerNorm) → residual Swin Transformer blocks (RSTB: ``depth`` Swin blocks, windows shifted by half a
window in every second block, then a 3×3 ``conv`` and the group's identity) → ``norm`` →
``conv_after_body`` + long skip → upsampler (FP) → mean shift back → crop to ``scale ×`` the input.

Binarized per ``binary``: the ``qkv``, ``proj``, ``fc1`` and ``fc2`` linears of every Swin block
(:class:`~scales_edge.nn.ScalesLinear` / :class:`~scales_edge.nn.BiBERTLinear`) and the conv closing
each RSTB (:class:`~scales_edge.nn.ScalesConv2d` / E2FIF-style, without a skip of its own since the
RSTB adds its identity). Head, ``conv_after_body``, LayerNorms, attention arithmetic, relative
position bias and the upsampler stay FP.

Registered as ``swinir_light`` (SwinIR-S for lightweight SR: 60 channels, 4×6 blocks, 6 heads,
window 8, MLP ratio 2, ``pixelshuffledirect``) and ``swinir`` (the classical-SR SwinIR-M: 180 channels,
6×6 blocks, ``pixelshuffle`` through 64 channels). With ``binary="fp"`` the parameter names are the
official ones, so the released ``params``/``params_ema`` weights load.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from ..errors import ConfigError
from ..nn import BinaryLinearBase, BinarySpec
from .common import MeanShift, Upsample, binary_spec, check_scale
from .registry import register
from .transformer_common import (
    SWIN_RGB_MEAN,
    window_layout,
    Mlp,
    PatchEmbed,
    WindowAttention,
    frame_radius,
    image_to_tokens,
    pad_to_multiple,
    relative_position_index,
    shifted_window_mask,
    tokens_to_image,
    transformer_sizes,
    window_block_radius,
)

UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect")


class SwinTransformerBlock(nn.Module):
    """LayerNorm → (shifted) window attention → residual; LayerNorm → MLP → residual."""

    def __init__(
        self,
        spec: BinarySpec,
        dim: int,
        num_heads: int,
        window_size: int,
        shift_size: int,
        mlp_ratio: float,
        qkv_bias: bool,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.shift_size = shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(spec, dim, window_size, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(spec, dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, h, w, mask: Tensor | None) -> Tensor:
        x = self.attn(x, h, w, self.shift_size, mask, residual=x, norm=self.norm1)
        return self.mlp(x, residual=x, norm=self.norm2)


class BasicLayer(nn.Module):
    def __init__(
        self, spec: BinarySpec, dim: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float, qkv_bias: bool
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                spec, dim, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2, mlp_ratio, qkv_bias
            )
            for i in range(depth)
        )

    def forward(self, x: Tensor, h, w, mask: Tensor | None) -> Tensor:
        for blk in self.blocks:
            x = blk(x, h, w, mask)
        return x


class RSTB(nn.Module):
    """Residual Swin Transformer block: ``x + tokens(conv(image(blocks(x))))``."""

    def __init__(
        self, spec: BinarySpec, dim: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float, qkv_bias: bool
    ) -> None:
        super().__init__()
        self.residual_group = BasicLayer(spec, dim, depth, num_heads, window_size, mlp_ratio, qkv_bias)
        self.conv = spec.conv(dim, dim, 3, ends_residual=True)

    def forward(self, x: Tensor, h, w, mask: Tensor | None) -> Tensor:
        y = tokens_to_image(self.residual_group(x, h, w, mask), h, w)
        return image_to_tokens(self.conv(y)) + x


class UpsampleOneStep(nn.Sequential):
    """``pixelshuffledirect``: one 3×3 conv to ``scale² × out`` channels and a pixel shuffle."""

    def __init__(self, scale: int, num_feat: int, num_out_ch: int) -> None:
        super().__init__(nn.Conv2d(num_feat, scale * scale * num_out_ch, 3, 1, 1), nn.PixelShuffle(scale))


class SwinIR(nn.Module):
    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        embed_dim: int = 60,
        depths: Sequence[int] = (6, 6, 6, 6),
        num_heads: int | Sequence[int] = 6,
        window_size: int = 8,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = True,
        upsampler: str = "pixelshuffledirect",
        upsample_feat: int = 64,
        img_range: float = 1.0,
        scale: int = 4,
        binary: str = "scales",
        lsf: bool = True,
        spatial: bool = True,
        channel: bool = True,
        skip: bool = True,
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        spec = binary_spec(binary, lsf, spatial, channel, skip)
        depths, heads = window_layout(depths, num_heads, window_size)
        if upsampler not in UPSAMPLERS:
            raise ConfigError(f"upsampler must be one of {', '.join(UPSAMPLERS)}, not {upsampler!r}")
        self.window_size = int(window_size)
        self.shift_size = self.window_size // 2
        self.upsampler = upsampler
        self.shift = MeanShift(img_range, SWIN_RGB_MEAN, num_in_ch)

        self.conv_first = nn.Conv2d(num_in_ch, embed_dim, 3, 1, 1)
        self.patch_embed = PatchEmbed(embed_dim)
        self.layers = nn.ModuleList(
            RSTB(spec, embed_dim, d, nh, self.window_size, mlp_ratio, qkv_bias) for d, nh in zip(depths, heads)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, 1, 1)
        if upsampler == "pixelshuffle":
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, upsample_feat, 3, 1, 1), nn.LeakyReLU(0.01))
            self.upsample = Upsample(self.scale, upsample_feat)
            self.conv_last = nn.Conv2d(upsample_feat, num_out_ch, 3, 1, 1)
        else:
            self.upsample = UpsampleOneStep(self.scale, embed_dim, num_out_ch)
        self._shifted = any(d > 1 for d in depths)
        # One index tensor for every block (they are equal): one initializer in an exported graph.
        shared = relative_position_index(self.window_size)
        for m in self.modules():
            if isinstance(m, WindowAttention):
                m.relative_position_index = shared
        self.apply(_init_weights)

    def forward_features(self, x: Tensor) -> Tensor:
        h, w = x.shape[2], x.shape[3]
        mask = shifted_window_mask(h, w, self.window_size, self.shift_size, x.device) if self._shifted else None
        t = self.patch_embed(x)
        for layer in self.layers:
            t = layer(t, h, w, mask)
        return tokens_to_image(self.norm(t), h, w)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[2], x.shape[3]
        x = pad_to_multiple(x, self.window_size)
        x = self.shift.normalize(x)
        x = self.conv_first(x)
        x = self.conv_after_body(self.forward_features(x)) + x
        if self.upsampler == "pixelshuffle":
            x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
        else:
            x = self.upsample(x)
        x = self.shift.denormalize(x)
        return x[:, :, : h * self.scale, : w * self.scale]


def _init_weights(m: nn.Module) -> None:
    """The official initialisation: linears (the binary ones' latent weights too, as drop-in
    replacements) truncated normal with std 0.02 and zero bias; LayerNorms 1 and 0.

    For the binary linears it also makes a randomly initialised SwinIR-light far less sensitive to
    float rounding: with the layers' own Kaiming-uniform init, one activation whose sign flips
    between two runtimes sends a perturbation through the window attention to every token of the
    window, and the flips multiply block after block (full-depth HAT-S stays sensitive either way;
    see tests/test_transformers.py and docs/benchmarks-transformers.md)."""
    if type(m) is nn.Linear or isinstance(m, BinaryLinearBase):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def receptive_radius(cfg: dict) -> float:
    """LR pixels an output pixel depends on, on each side (windows aligned with the image's grid):
    per RSTB its blocks' windows and its closing 3×3 conv, plus the FP frame."""
    reach = window_block_radius(int(cfg["window_size"]))
    body = sum(int(d) * reach + 1 for d in cfg["depths"])
    return body + frame_radius(cfg["upsampler"], int(cfg["scale"]))


_BINARIES = ("scales", "bibert", "fp")
_STATE = dict(sizes=transformer_sizes, repeats=("depths",), choices={"upsampler": UPSAMPLERS})

register(
    "swinir_light",
    family="transformer",
    description="SwinIR-S lightweight SR: 60 ch, 4x6 Swin blocks, 6 heads, window 8, pixelshuffledirect",
    binaries=_BINARIES,
    receptive_radius=receptive_radius,
    **_STATE,
    defaults=dict(embed_dim=60, depths=[6, 6, 6, 6], num_heads=6, window_size=8, mlp_ratio=2.0, upsampler="pixelshuffledirect"),
)(SwinIR)

register(
    "swinir",
    family="transformer",
    description="SwinIR-M classical SR: 180 ch, 6x6 Swin blocks, 6 heads, window 8, pixelshuffle",
    binaries=_BINARIES,
    receptive_radius=receptive_radius,
    **_STATE,
    defaults=dict(embed_dim=180, depths=[6, 6, 6, 6, 6, 6], num_heads=6, window_size=8, mlp_ratio=2.0, upsampler="pixelshuffle"),
)(SwinIR)

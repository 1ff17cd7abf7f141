"""HAT, the Hybrid Attention Transformer (Chen et al. 2023), with a binarizable body.

Same frame as SwinIR (reflect pad to a window multiple, mean shift, ``conv_first``, LayerNorm'd tokens,
residual groups, ``norm``, ``conv_after_body`` + long skip, pixel-shuffle tail, crop). Each residual
hybrid attention group (RHAG) holds ``depth`` hybrid attention blocks (HAB: shifted window attention
plus a channel-attention conv branch ``conv_block`` scaled by ``conv_scale``, then an MLP), one
overlapping cross-attention block (OCAB: queries from ``ws × ws`` windows attend to keys/values of
the enlarged ``ws·(1 + overlap_ratio)`` windows around them) and a closing 3×3 ``conv``.

Binarized per ``binary``: ``qkv``, ``proj``, ``fc1``, ``fc2`` of every HAB and OCAB, and the conv
closing each RHAG (no skip of its own: the group adds its identity). The CAB conv branch (a
``dim/compress_ratio`` bottleneck weighted by ``conv_scale = 0.01``), LayerNorms, attention arithmetic,
relative position biases, head and tail stay FP.

Registered as ``hat_s`` (144 channels, compress ratio 24, squeeze factor 24) and ``hat`` (180
channels, compress ratio 3, squeeze factor 30); both 6 groups × 6 blocks, 6 heads, window 16, overlap
ratio 0.5, MLP ratio 2, ``pixelshuffle``: the published configurations. Parameter names follow the
official code; its ``relative_position_index_SA`` / ``relative_position_index_OCA`` buffers are
regenerated here (non-persistent) and dropped from official checkpoints on load.
"""

from __future__ import annotations

import math
from typing import Sequence

from torch import Tensor, nn

from ..errors import ConfigError
from ..nn import BinarySpec
from .common import ChannelAttention, MeanShift, Upsample, binary_spec, check_scale
from .infer import ratio
from .registry import register
from .swinir import _init_weights
from .transformer_common import (
    SWIN_RGB_MEAN,
    window_layout,
    Mlp,
    PatchEmbed,
    WindowAttention,
    frame_radius,
    image_to_tokens,
    overlap_position_index,
    pad_to_multiple,
    relative_position_index,
    shifted_window_mask,
    tokens_to_image,
    transformer_sizes,
    window_block_radius,
)


class CAB(nn.Module):
    """Channel attention block: 3×3 conv (÷ compress_ratio) → GELU → 3×3 conv → channel attention."""

    def __init__(self, num_feat: int, compress_ratio: int, squeeze_factor: int) -> None:
        super().__init__()
        mid = max(1, num_feat // compress_ratio)
        self.cab = nn.Sequential(
            nn.Conv2d(num_feat, mid, 3, 1, 1),
            nn.GELU(),
            nn.Conv2d(mid, num_feat, 3, 1, 1),
            ChannelAttention(num_feat, squeeze_factor),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.cab(x)


class HAB(nn.Module):
    """Hybrid attention block: ``x + W-MSA(LN(x)) + conv_scale·CAB(LN(x))``, then ``+ MLP(LN(·))``."""

    def __init__(
        self,
        spec: BinarySpec,
        dim: int,
        num_heads: int,
        window_size: int,
        shift_size: int,
        compress_ratio: int,
        squeeze_factor: int,
        conv_scale: float,
        mlp_ratio: float,
        qkv_bias: bool,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.shift_size = shift_size
        self.conv_scale = conv_scale
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(spec, dim, window_size, num_heads, qkv_bias, own_index=False)
        self.conv_block = CAB(dim, compress_ratio, squeeze_factor)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(spec, dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, h, w, index: Tensor, mask: Tensor | None) -> Tensor:
        y = self.norm1(x)
        conv = image_to_tokens(self.conv_block(tokens_to_image(y, h, w)))
        # (norm1's output also feeds the conv branch: computed once, here)
        x = self.attn(y, h, w, self.shift_size, mask, index, residual=x) + conv * self.conv_scale
        return self.mlp(x, residual=x, norm=self.norm2)


class OCAB(WindowAttention):
    """Overlapping cross-attention block: queries from ``ws × ws`` windows attend to the keys and
    values of the ``ows × ows`` windows centred on them (no shift, no mask: the enlarged windows
    are zero-padded at the borders, as ``nn.Unfold`` does in the official code), then an MLP.
    The attention part (``qkv``, the bias table, ``proj``) is a :class:`WindowAttention` with
    ``key_window_size = ows``; its parameter names are the official ones."""

    def __init__(
        self,
        spec: BinarySpec,
        dim: int,
        window_size: int,
        overlap_ratio: float,
        num_heads: int,
        qkv_bias: bool,
        mlp_ratio: float,
    ) -> None:
        ows = int(window_size * overlap_ratio) + window_size
        if (ows - window_size) % 2:
            raise ConfigError(
                f"overlap_ratio {overlap_ratio} with window {window_size} gives an odd overlap "
                f"({ows - window_size} pixels); it must split evenly on both sides"
            )
        super().__init__(spec, dim, window_size, num_heads, qkv_bias, own_index=False, key_window_size=ows)
        self.overlap_win_size = ows
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(spec, dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, h, w, index: Tensor) -> Tensor:  # type: ignore[override]
        x = super().forward(x, h, w, index=index, residual=x, norm=self.norm1)
        return self.mlp(x, residual=x, norm=self.norm2)


class AttenBlocks(nn.Module):
    def __init__(
        self,
        spec: BinarySpec,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        compress_ratio: int,
        squeeze_factor: int,
        conv_scale: float,
        overlap_ratio: float,
        mlp_ratio: float,
        qkv_bias: bool,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            HAB(
                spec, dim, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2,
                compress_ratio, squeeze_factor, conv_scale, mlp_ratio, qkv_bias,
            )
            for i in range(depth)
        )  # fmt: skip
        self.overlap_attn = OCAB(spec, dim, window_size, overlap_ratio, num_heads, qkv_bias, mlp_ratio)

    def forward(self, x: Tensor, h, w, rpi_sa: Tensor, rpi_oca: Tensor, mask: Tensor | None) -> Tensor:
        for blk in self.blocks:
            x = blk(x, h, w, rpi_sa, mask)
        return self.overlap_attn(x, h, w, rpi_oca)


class RHAG(nn.Module):
    """Residual hybrid attention group: ``x + tokens(conv(image(blocks(x))))``."""

    def __init__(self, spec: BinarySpec, dim: int, depth: int, **kw) -> None:
        super().__init__()
        self.residual_group = AttenBlocks(spec, dim, depth, **kw)
        self.conv = spec.conv(dim, dim, 3, ends_residual=True)

    def forward(self, x: Tensor, h, w, rpi_sa: Tensor, rpi_oca: Tensor, mask: Tensor | None) -> Tensor:
        y = tokens_to_image(self.residual_group(x, h, w, rpi_sa, rpi_oca, mask), h, w)
        return image_to_tokens(self.conv(y)) + x


class HAT(nn.Module):
    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        embed_dim: int = 180,
        depths: Sequence[int] = (6, 6, 6, 6, 6, 6),
        num_heads: int | Sequence[int] = 6,
        window_size: int = 16,
        compress_ratio: int = 3,
        squeeze_factor: int = 30,
        conv_scale: float = 0.01,
        overlap_ratio: float = 0.5,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = True,
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
        self.window_size = int(window_size)
        self.shift_size = self.window_size // 2
        self.shift = MeanShift(img_range, SWIN_RGB_MEAN, num_in_ch)
        ows = int(window_size * overlap_ratio) + window_size
        self.register_buffer("relative_position_index_SA", relative_position_index(self.window_size), persistent=False)
        self.register_buffer("relative_position_index_OCA", overlap_position_index(self.window_size, ows), persistent=False)

        self.conv_first = nn.Conv2d(num_in_ch, embed_dim, 3, 1, 1)
        self.patch_embed = PatchEmbed(embed_dim)
        self.layers = nn.ModuleList(
            RHAG(
                spec, embed_dim, d, num_heads=nh, window_size=self.window_size, compress_ratio=compress_ratio,
                squeeze_factor=squeeze_factor, conv_scale=conv_scale, overlap_ratio=overlap_ratio,
                mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
            )
            for d, nh in zip(depths, heads)
        )  # fmt: skip
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, 1, 1)
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, upsample_feat, 3, 1, 1), nn.LeakyReLU(0.01))
        self.upsample = Upsample(self.scale, upsample_feat)
        self.conv_last = nn.Conv2d(upsample_feat, num_out_ch, 3, 1, 1)
        self._shifted = any(d > 1 for d in depths)
        self.apply(_init_weights)

    def forward_features(self, x: Tensor) -> Tensor:
        h, w = x.shape[2], x.shape[3]
        mask = shifted_window_mask(h, w, self.window_size, self.shift_size, x.device) if self._shifted else None
        t = self.patch_embed(x)
        for layer in self.layers:
            t = layer(t, h, w, self.relative_position_index_SA, self.relative_position_index_OCA, mask)
        return tokens_to_image(self.norm(t), h, w)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[2], x.shape[3]
        x = pad_to_multiple(x, self.window_size)
        x = self.shift.normalize(x)
        x = self.conv_first(x)
        x = self.conv_after_body(self.forward_features(x)) + x
        x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
        x = self.shift.denormalize(x)
        return x[:, :, : h * self.scale, : w * self.scale]


def receptive_radius(cfg: dict) -> float:
    """LR pixels an output pixel depends on, on each side (windows aligned with the image's grid):
    per RHAG its HABs (window attention beside the CAB's two 3×3 convs), the OCAB (a query window
    reads keys ``(ows - ws) / 2`` px beyond it) and the closing 3×3 conv, plus the FP frame."""
    ws = int(cfg["window_size"])
    ows = int(ws * float(cfg["overlap_ratio"])) + ws
    hab = max(window_block_radius(ws), 2)
    ocab = window_block_radius(ws) + (ows - ws) // 2
    body = sum(int(d) * hab + ocab + 1 for d in cfg["depths"])
    return body + frame_radius("pixelshuffle", int(cfg["scale"]))


_BINARIES = ("scales", "bibert", "fp")


def _sizes(s) -> dict:
    """SwinIR's sizes, plus the overlap ratio (the OCAB table has ``(ws + ows - 1)^2`` rows) and the
    CAB's compress and squeeze factors (its bottleneck widths)."""
    out = transformer_sizes(s)
    embed, ws = out["embed_dim"], out["window_size"]
    block, group = "layers.0.residual_group.blocks.0.", "layers.0.residual_group."
    rows = s.dim(group + "overlap_attn.relative_position_bias_table", 0)
    if ws and rows and math.isqrt(rows) ** 2 == rows:
        out["overlap_ratio"] = (math.isqrt(rows) + 1 - 2 * ws) / ws
    out["compress_ratio"] = ratio(embed, s.dim(block + "conv_block.cab.0.weight", 0))
    out["squeeze_factor"] = ratio(embed, s.dim(block + "conv_block.cab.3.attention.1.weight", 0))
    return out


_STATE = dict(sizes=_sizes, repeats=("depths",))
_COMMON = dict(depths=[6, 6, 6, 6, 6, 6], num_heads=6, window_size=16, conv_scale=0.01, overlap_ratio=0.5, mlp_ratio=2.0)

register(
    "hat_s",
    family="transformer",
    description="HAT-S: 144 ch, 6x6 hybrid attention blocks + OCAB, window 16, compress 24, squeeze 24",
    binaries=_BINARIES,
    receptive_radius=receptive_radius,
    **_STATE,
    defaults=dict(_COMMON, embed_dim=144, compress_ratio=24, squeeze_factor=24),
)(HAT)

register(
    "hat",
    family="transformer",
    description="HAT: 180 ch, 6x6 hybrid attention blocks + OCAB, window 16, compress 3, squeeze 30",
    binaries=_BINARIES,
    receptive_radius=receptive_radius,
    **_STATE,
    defaults=dict(_COMMON, embed_dim=180, compress_ratio=3, squeeze_factor=30),
)(HAT)

"""SRResNet in BasicSR's MSRResNet layout, with a binarizable body.

``conv_first`` (FP) → LeakyReLU → ``num_block`` residual blocks (binary per ``binary``) →
upsampler (``upconv1`` [+ ``upconv2`` at ×4], pixel shuffle, LeakyReLU) → ``conv_hr`` → LeakyReLU →
``conv_last`` (FP), plus the bilinear upsampled input. ``binary_scope="body"`` keeps the upsampler
and ``conv_hr`` FP; ``"body+upsampler"`` (the paper's scope, the default) makes ``upconv1``/``upconv2``
binary upsampling layers (conv and shuffle in one, with the repeated-input skip) and ``conv_hr`` a
binary conv with its skip, so only ``conv_first`` and ``conv_last`` stay FP. Parameter names follow
BasicSR, so FP MSRResNet weights from BasicSR load into ``binary="fp"``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .common import BINARY_SCOPES, ResidualBlock, binary_spec, check_scale, frame_sizes, resolve_scope
from .registry import register


@register(
    "srresnet",
    family="cnn",
    description="SRResNet (BasicSR MSRResNet layout), 16 blocks x 64 channels by default",
    binaries=("scales", "e2fif", "fp"),
    sizes=frame_sizes,
    repeats=("num_block",),
    choices={"binary_scope": BINARY_SCOPES},
)
class SRResNet(nn.Module):
    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 16,
        scale: int = 4,
        binary: str = "scales",
        lsf: bool = True,
        spatial: bool = True,
        channel: bool = True,
        skip: bool = True,
        binary_scope: str | None = None,
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        spec = binary_spec(binary, lsf, spatial, channel, skip)
        self.binary_scope = resolve_scope(binary, binary_scope)
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[ResidualBlock(spec, num_feat) for _ in range(num_block)])
        r = self.scale if self.scale in (2, 3) else 2
        # a binary upsampling layer holds its pixel shuffle; the FP ones are followed by it
        self.shuffled = self.binary_scope == "body+upsampler"
        if self.shuffled:
            self.upconv1 = spec.upsampler(num_feat, num_feat, r)
            if self.scale == 4:
                self.upconv2 = spec.upsampler(num_feat, num_feat, r)
            self.conv_hr = spec.conv(num_feat, num_feat)
        else:
            self.upconv1 = nn.Conv2d(num_feat, num_feat * r * r, 3, 1, 1)
            if self.scale == 4:
                self.upconv2 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(r)
            self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.1)

    def _up(self, conv: nn.Module, x: Tensor) -> Tensor:
        return self.lrelu(conv(x) if self.shuffled else self.pixel_shuffle(conv(x)))

    def forward(self, x: Tensor) -> Tensor:
        feat = self.lrelu(self.conv_first(x))
        out = self.body(feat)
        out = self._up(self.upconv1, out)
        if self.scale == 4:
            out = self._up(self.upconv2, out)
        out = self.conv_last(self.lrelu(self.conv_hr(out)))
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return out + base


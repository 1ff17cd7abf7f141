"""SRResNet in BasicSR's MSRResNet layout, with a binarizable body.

``conv_first`` (FP) → LeakyReLU → ``num_block`` residual blocks (binary per ``binary``) →
upsampler (FP: ``upconv1`` [+ ``upconv2`` at ×4], pixel shuffle, LeakyReLU) → ``conv_hr`` → LeakyReLU →
``conv_last``, plus the bilinear upsampled input. Parameter names follow BasicSR, so FP MSRResNet
weights from BasicSR load into ``binary="fp"``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .common import ResidualBlock, binary_spec, check_scale, frame_sizes
from .registry import register


@register(
    "srresnet",
    family="cnn",
    description="SRResNet (BasicSR MSRResNet layout), 16 blocks x 64 channels by default",
    binaries=("scales", "e2fif", "fp"),
    sizes=frame_sizes,
    repeats=("num_block",),
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
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        spec = binary_spec(binary, lsf, spatial, channel, skip)
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[ResidualBlock(spec, num_feat) for _ in range(num_block)])
        if self.scale in (2, 3):
            self.upconv1 = nn.Conv2d(num_feat, num_feat * self.scale * self.scale, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(self.scale)
        else:
            self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.upconv2 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(2)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.1)

    def forward(self, x: Tensor) -> Tensor:
        feat = self.lrelu(self.conv_first(x))
        out = self.body(feat)
        out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
        if self.scale == 4:
            out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = self.conv_last(self.lrelu(self.conv_hr(out)))
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return out + base


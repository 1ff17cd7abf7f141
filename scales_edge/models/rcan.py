"""RCAN (residual channel attention network, BasicSR layout) with a binarizable body.

Mean shift → ``conv_first`` (FP) → ``num_group`` residual groups (each ``num_block`` RCABs: conv →
ReLU → conv → channel attention, plus identity; then a conv and the group's identity) →
``conv_after_body`` + long skip → upsampler (FP, or binary with ``binary_scope="body+upsampler"``,
the default) → ``conv_last`` (FP) → mean shift back. The 3×3 convs of the
body are binarized per ``binary`` (the last conv of each residual branch has no skip of its own,
see :meth:`scales_edge.nn.BinarySpec.conv`); the channel-attention squeeze/excite 1×1 convs act on pooled
1×1 maps, cost nothing, and stay FP. Parameter names follow BasicSR.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..nn import BinarySpec
from .common import BINARY_SCOPES, ChannelAttention, MeanShift, Upsample, binary_spec, check_scale, frame_sizes, resolve_scope
from .edsr import DIV2K_RGB_MEAN
from .infer import ratio
from .registry import register


class RCAB(nn.Module):
    def __init__(self, spec: BinarySpec, num_feat: int, squeeze_factor: int, res_scale: float) -> None:
        super().__init__()
        self.rcab = nn.Sequential(
            spec.conv(num_feat, num_feat),
            nn.ReLU(),
            spec.conv(num_feat, num_feat, ends_residual=True),
            ChannelAttention(num_feat, squeeze_factor),
        )
        self.res_scale = res_scale

    def forward(self, x: Tensor) -> Tensor:
        return self.rcab(x) * self.res_scale + x


class ResidualGroup(nn.Module):
    def __init__(
        self, spec: BinarySpec, num_feat: int, num_block: int, squeeze_factor: int, res_scale: float
    ) -> None:
        super().__init__()
        self.residual_group = nn.Sequential(
            *[RCAB(spec, num_feat, squeeze_factor, res_scale) for _ in range(num_block)]
        )
        self.conv = spec.conv(num_feat, num_feat, ends_residual=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.residual_group(x)) + x


@register(
    "rcan",
    family="cnn",
    description="RCAN, 10 groups x 20 blocks, 64 channels",
    binaries=("scales", "e2fif", "fp"),
    sizes=lambda s: {
        **frame_sizes(s, body=None),
        "num_group": s.count("body."),
        "num_block": s.count("body.0.residual_group."),
        "squeeze_factor": ratio(s.dim("conv_first.weight", 0), s.dim("body.0.residual_group.0.rcab.3.attention.1.weight", 0)),
    },
    repeats=("num_group", "num_block"),
    choices={"binary_scope": BINARY_SCOPES},
)
class RCAN(nn.Module):
    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_group: int = 10,
        num_block: int = 20,
        squeeze_factor: int = 16,
        res_scale: float = 1.0,
        scale: int = 4,
        img_range: float = 255.0,
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
        self.shift = MeanShift(img_range, DIV2K_RGB_MEAN, num_in_ch)
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(
            *[ResidualGroup(spec, num_feat, num_block, squeeze_factor, res_scale) for _ in range(num_group)]
        )
        self.conv_after_body = spec.conv(num_feat, num_feat, ends_residual=True)
        self.upsample = Upsample(self.scale, num_feat, spec=spec if self.binary_scope == "body+upsampler" else None)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv_first(self.shift.normalize(x))
        res = self.conv_after_body(self.body(x)) + x
        return self.shift.denormalize(self.conv_last(self.upsample(res)))

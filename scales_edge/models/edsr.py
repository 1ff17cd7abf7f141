"""EDSR (BasicSR layout) with a binarizable body.

Mean shift → ``conv_first`` (FP) → ``num_block`` residual blocks (×``res_scale``) →
``conv_after_body`` (binary) + long skip → upsampler → ``conv_last`` (FP) → mean shift back. The
upsampler is FP with ``binary_scope="body"`` and binary (one layer per shuffle step, see
:class:`scales_edge.models.common.Upsample`) with ``"body+upsampler"``, the default.
``edsr`` is the 16×64 baseline; ``edsr_l`` the 32×256 model with ``res_scale=0.1``. Parameter names
follow BasicSR, so FP EDSR weights from BasicSR load into ``binary="fp"`` (keep ``img_range=255``).
"""

from __future__ import annotations

from torch import Tensor, nn

from .common import BINARY_SCOPES, MeanShift, ResidualBlock, Upsample, binary_spec, check_scale, frame_sizes, resolve_scope
from .registry import register

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class EDSR(nn.Module):
    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 16,
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
        self.body = nn.Sequential(*[ResidualBlock(spec, num_feat, res_scale) for _ in range(num_block)])
        self.conv_after_body = spec.conv(num_feat, num_feat, ends_residual=True)
        self.upsample = Upsample(self.scale, num_feat, spec=spec if self.binary_scope == "body+upsampler" else None)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv_first(self.shift.normalize(x))
        res = self.conv_after_body(self.body(x)) + x
        return self.shift.denormalize(self.conv_last(self.upsample(res)))


_DOC = dict(family="cnn", binaries=("scales", "e2fif", "fp"), sizes=frame_sizes, repeats=("num_block",), choices={"binary_scope": BINARY_SCOPES})
register("edsr", description="EDSR baseline, 16 blocks x 64 channels", **_DOC)(EDSR)
register(
    "edsr_l",
    description="EDSR, 32 blocks x 256 channels, res_scale 0.1",
    defaults={"num_feat": 256, "num_block": 32, "res_scale": 0.1},
    **_DOC,
)(EDSR)

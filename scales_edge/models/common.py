"""Building blocks shared by the CNN super-resolution models of the zoo."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..nn import BinarySpec

SUPPORTED_SCALES = (2, 3, 4)

#: Which convs of a CNN are binary (config key ``binary_scope``). ``body``: the residual body only
#: (head, upsampler and the convs after it stay FP). ``body+upsampler``: every conv except the first
#: (reads the image) and the last (writes it): also the upsampler convs (each with its pixel shuffle
#: as one binary layer, see scales_edge.nn.layers) and SRResNet's ``conv_hr``; the SCALES paper's
#: scope, and the default for binarized models. A binary="fp" model has scope ``body``.
BINARY_SCOPES = ("body", "body+upsampler")
#: What a stored config without ``binary_scope`` means (checkpoints written before the key existed).
LEGACY_SCOPE = "body"


def frame_sizes(s, first: str = "conv_first", last: str = "conv_last", body: str | None = "body") -> dict:
    """Sizes every CNN of the zoo shows the same way (for the registry's ``sizes`` rules): input
    channels and width from the first conv, output channels from the last, blocks under ``body``."""
    out = {
        "num_in_ch": s.dim(f"{first}.weight", 1),
        "num_feat": s.dim(f"{first}.weight", 0),
        "num_out_ch": s.dim(f"{last}.weight", 0),
    }
    if body:
        out["num_block"] = s.count(f"{body}.")
    return out


def check_scale(scale: int) -> int:
    if scale not in SUPPORTED_SCALES:
        raise ConfigError(f"scale must be one of {SUPPORTED_SCALES}, got {scale!r}")
    return int(scale)


def binary_spec(binary: str, lsf: bool, spatial: bool, channel: bool, skip: bool) -> BinarySpec:
    try:
        return BinarySpec(binary, lsf=lsf, spatial=spatial, channel=channel, skip=skip)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def resolve_scope(binary: str, scope: str | None) -> str:
    """The binarization scope of a model: ``scope``, checked, or the default for ``binary``
    (``body+upsampler`` for a binarized model, ``body`` for ``fp``, which binarizes nothing)."""
    if scope is None:
        return "body" if binary == "fp" else "body+upsampler"
    if scope not in BINARY_SCOPES:
        raise ConfigError(f"binary_scope must be one of {', '.join(BINARY_SCOPES)}, got {scope!r}")
    if binary == "fp" and scope != "body":
        raise ConfigError(f"binary_scope={scope!r} needs a binarized model; binary='fp' has binary_scope='body'")
    return scope


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    """A full-precision 3×3 convolution (head, tail)."""
    return nn.Conv2d(cin, cout, 3, 1, 1)


def upsample_steps(scale: int) -> list[int]:
    """The pixel-shuffle factors of a sub-pixel upsampler: ×2 per factor of 2, or one ×3."""
    if scale == 3:
        return [3]
    if scale in (2, 4):
        return [2] * (scale // 2)
    raise ConfigError(f"scale must be one of {SUPPORTED_SCALES}, got {scale!r}")


class Upsample(nn.Sequential):
    """Sub-pixel upsampler: (conv → pixel shuffle ×2) per factor of 2, or one ×3.

    Full precision (``upsample.0`` conv, ``upsample.1`` shuffle, ...: BasicSR's layout), or with a
    ``spec`` one binary upsampling layer per step (``upsample.0``, ``upsample.1``; each holds its
    shuffle, see :meth:`scales_edge.nn.BinarySpec.upsampler`)."""

    def __init__(self, scale: int, num_feat: int, out_feat: int | None = None, spec: BinarySpec | None = None) -> None:
        out_feat = num_feat if out_feat is None else out_feat
        layers: list[nn.Module] = []
        for i, r in enumerate(upsample_steps(scale)):
            cin = num_feat if i == 0 else out_feat
            if spec is not None:
                layers.append(spec.upsampler(cin, out_feat, r))
            else:
                layers += [nn.Conv2d(cin, r * r * out_feat, 3, 1, 1), nn.PixelShuffle(r)]
        super().__init__(*layers)


class MeanShift(nn.Module):
    """``(x - mean) * range`` on the way in (``sign=-1``) or ``x / range + mean`` on the way out."""

    def __init__(self, img_range: float, rgb_mean: tuple[float, float, float], num_ch: int) -> None:
        super().__init__()
        self.img_range = float(img_range)
        mean = torch.tensor(rgb_mean if num_ch == 3 else (0.0,) * num_ch, dtype=torch.float32)
        self.register_buffer("mean", mean.view(1, -1, 1, 1), persistent=False)

    def normalize(self, x: Tensor) -> Tensor:
        return (x - self.mean) * self.img_range

    def denormalize(self, x: Tensor) -> Tensor:
        return x / self.img_range + self.mean


class ChannelAttention(nn.Module):
    """RCAN/HAT channel attention (squeeze-excite on the pooled map, FP: it costs next to nothing)."""

    def __init__(self, num_feat: int, squeeze_factor: int) -> None:
        super().__init__()
        hidden = max(1, num_feat // squeeze_factor)
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(num_feat, hidden, 1),
            nn.ReLU(),
            nn.Conv2d(hidden, num_feat, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.attention(x)


class ResidualBlock(nn.Module):
    """conv → ReLU → conv, plus the identity (``res_scale`` on the residual): SRResNet/EDSR blocks.

    In a binary body the first conv carries its own skip and the second does not (the block's
    identity add already plays that role): ``x + conv2(relu(x + core1(x)))``.
    """

    def __init__(self, spec: BinarySpec, num_feat: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.conv1 = spec.conv(num_feat, num_feat)
        self.conv2 = spec.conv(num_feat, num_feat, ends_residual=True)
        self.relu = nn.ReLU(inplace=False)
        self.res_scale = res_scale

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.relu(self.conv1(x)))
        return x + out * self.res_scale if self.res_scale != 1.0 else x + out

"""RDN (residual dense network, Zhang et al. 2018) with a binarizable body.

``sfe1``, ``sfe2`` (FP head) → ``num_block`` residual dense blocks (each ``num_layer`` dense
conv+ReLU layers of growth ``growth``, then a 1×1 local fusion, plus the identity) → global fusion
(1×1 then 3×3) + ``sfe1`` output → upsampler → ``conv_last``. Input and output in [0, 1], no mean
shift.

What is binary (``binary_scope``): with ``"body"`` every conv between the shallow feature
extraction and the upsampler (the dense blocks and both global-fusion convs); ``sfe1``, ``sfe2``,
the upsampler and ``conv_last`` stay FP. With ``"body+upsampler"`` (the paper's rule, every conv
but the first and the last; the default) the head is ``sfe1`` alone, the conv that reads the
image: ``sfe2`` (64 -> 64, 3×3, a body conv in all but name, with its skip) and the upsampler
convs become binary too, and ``conv_last`` stays FP. The global-fusion convs are body convs in
both scopes (they act on body features, like EDSR's ``conv_after_body``). The dense and fusion
convs change the channel count, so they have no inner skip and their channel re-scaling pools
their own output (see scales_edge.nn).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..nn import BinarySpec
from .common import BINARY_SCOPES, Upsample, binary_spec, check_scale, frame_sizes, resolve_scope
from .registry import register


class DenseBlock(nn.Module):
    def __init__(self, spec: BinarySpec, num_feat: int, growth: int, num_layer: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            spec.conv(num_feat + i * growth, growth) for i in range(num_layer)
        )
        self.relu = nn.ReLU()
        self.fusion = spec.conv(num_feat + num_layer * growth, num_feat, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        feats = [x]
        for conv in self.convs:
            feats.append(self.relu(conv(torch.cat(feats, 1))))
        return self.fusion(torch.cat(feats, 1)) + x


@register(
    "rdn",
    family="cnn",
    description="RDN, 16 dense blocks x 8 layers, 64 channels, growth 64 (configuration B)",
    binaries=("scales", "e2fif", "fp"),
    sizes=lambda s: {
        **frame_sizes(s, first="sfe1", body="blocks"),
        "num_layer": s.count("blocks.0.convs."),
        "growth": s.dim("blocks.0.convs.0.weight", 0),
    },
    repeats=("num_block", "num_layer"),
    choices={"binary_scope": BINARY_SCOPES},
)
class RDN(nn.Module):
    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 16,
        num_layer: int = 8,
        growth: int = 64,
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
        paper = self.binary_scope == "body+upsampler"
        self.sfe1 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.sfe2 = spec.conv(num_feat, num_feat) if paper else nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.blocks = nn.ModuleList(
            DenseBlock(spec, num_feat, growth, num_layer) for _ in range(num_block)
        )
        self.gff = nn.Sequential(
            spec.conv(num_block * num_feat, num_feat, kernel_size=1), spec.conv(num_feat, num_feat)
        )
        self.upsample = Upsample(self.scale, num_feat, growth, spec=spec if paper else None)
        self.conv_last = nn.Conv2d(growth, num_out_ch, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        f1 = self.sfe1(x)
        out = self.sfe2(f1)
        outs = []
        for block in self.blocks:
            out = block(out)
            outs.append(out)
        out = self.gff(torch.cat(outs, 1)) + f1
        return self.conv_last(self.upsample(out))

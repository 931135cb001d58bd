"""The emotion CNN: a VGG-style net sized for 44x44 grayscale faces."""

from __future__ import annotations

import torch
from torch import nn

from moodlens.spec import NUM_CLASSES, PIXEL_MEAN, PIXEL_STD


def conv_stage(in_ch: int, out_ch: int, convs: int, dropout: float) -> nn.Sequential:
    """``convs`` x (3x3 conv, BatchNorm, ReLU), then 2x2 max-pool and spatial dropout."""
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(in_ch if i == 0 else out_ch, out_ch, 3, padding=1, bias=False),
                   nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)]
    layers += [nn.MaxPool2d(2), nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()]
    return nn.Sequential(*layers)


class EmotionNet(nn.Module):
    """Raw pixel values (N, 1, H, W) in 0..255 -> class logits (N, 7).

    Normalisation lives inside the network, so exported models take raw pixels
    and no runtime can normalise differently from training.
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), convs_per_stage: int = 2,
                 hidden: int = 256, dropout: float = 0.4, stage_dropout: float = 0.05) -> None:
        super().__init__()
        stages, in_ch = [], 1
        for w in widths:
            stages.append(conv_stage(in_ch, w, convs_per_stage, stage_dropout))
            in_ch = w
        self.features = nn.Sequential(*stages)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
            nn.Linear(in_ch, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, NUM_CLASSES),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x * (1.0 / 255.0) - PIXEL_MEAN) * (1.0 / PIXEL_STD)
        return self.head(self.features(x))


class ProbabilityModel(nn.Module):
    """What ships: softmax probabilities, averaged over the nets of an ensemble and,
    with ``flip_tta``, over the face and its mirror image.

    The test-time augmentation and ensembling that produced the published numbers are
    part of the exported graph, so the runtime does exactly what was measured.
    """

    def __init__(self, net: nn.Module | list[nn.Module], flip_tta: bool = True) -> None:
        super().__init__()
        self.nets = nn.ModuleList(net if isinstance(net, list) else [net])
        self.flip_tta = flip_tta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views = [x, torch.flip(x, dims=[3])] if self.flip_tta else [x]
        probs = [torch.softmax(net(v), dim=1) for net in self.nets for v in views]
        return torch.stack(probs).mean(dim=0)

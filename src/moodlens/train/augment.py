"""Batched augmentation on uint8 faces, done with one affine warp per batch.

Random crop (as translation), scale, rotation and horizontal flip are one
``grid_sample`` call, then brightness/contrast jitter and random erasing.
Only ever applied to the training split.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from moodlens.spec import CROP_SIZE, IMAGE_SIZE
from moodlens.train.config import AugmentConfig

__all__ = ["AugmentConfig", "augment", "center_crop"]


def center_crop(faces: torch.Tensor) -> torch.Tensor:
    """(N, 1, 48, 48) -> (N, 1, 44, 44): the crop every model input uses."""
    off = (IMAGE_SIZE - CROP_SIZE) // 2
    return faces[..., off:off + CROP_SIZE, off:off + CROP_SIZE]


def augment(faces: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Augment a float batch (N, 1, 48, 48) of 0..255 pixels into (N, 1, 44, 44)."""
    n, dev = faces.shape[0], faces.device

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, generator=generator, device=dev) * (hi - lo) + lo

    angle = uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg) * (math.pi / 180)
    scale = (CROP_SIZE / IMAGE_SIZE) / uniform(*cfg.scale_range)
    shift = cfg.max_shift_px * 2 / IMAGE_SIZE
    tx, ty = uniform(-shift, shift), uniform(-shift, shift)
    flip = torch.where(torch.rand(n, generator=generator, device=dev) < 0.5, -1.0, 1.0) if cfg.flip \
        else torch.ones(n, device=dev)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, [n, 1, CROP_SIZE, CROP_SIZE], align_corners=False)
    out = F.grid_sample(faces, grid, mode="bilinear", padding_mode="border", align_corners=False)

    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    contrast = uniform(1 - cfg.contrast, 1 + cfg.contrast).view(n, 1, 1, 1)
    brightness = uniform(-cfg.brightness, cfg.brightness).view(n, 1, 1, 1) * 255
    out = ((out - mean) * contrast + mean + brightness).clamp_(0, 255)

    if cfg.erase_prob > 0:
        side = (uniform(0.1, cfg.erase_max_frac) * CROP_SIZE).long()
        x0 = (torch.rand(n, generator=generator, device=dev) * (CROP_SIZE - side)).long()
        y0 = (torch.rand(n, generator=generator, device=dev) * (CROP_SIZE - side)).long()
        r = torch.arange(CROP_SIZE, device=dev)
        in_x = (r[None] >= x0[:, None]) & (r[None] < (x0 + side)[:, None])
        in_y = (r[None] >= y0[:, None]) & (r[None] < (y0 + side)[:, None])
        mask = in_y[:, :, None] & in_x[:, None, :]
        mask &= (torch.rand(n, generator=generator, device=dev) < cfg.erase_prob)[:, None, None]
        fill = torch.rand(n, 1, 1, generator=generator, device=dev) * 255
        out = torch.where(mask[:, None], fill[:, None], out)
    return out

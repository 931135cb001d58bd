"""The training recipe, readable top to bottom.

``train(TrainConfig(...), data, out_dir)`` writes into ``out_dir``:
``last.pt`` (every epoch; ``resume=True`` continues from it exactly),
``final.pt`` (the EMA weights after the last epoch), ``metrics.csv``,
``curves.png`` and ``config.json``.
"""

from __future__ import annotations

import csv
import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from moodlens.data import FaceDataset
from moodlens.spec import NUM_CLASSES
from moodlens.train.augment import AugmentConfig, augment, center_crop
from moodlens.train.model import EmotionNet

BALANCING = ("none", "weighted-loss", "sqrt-weighted-loss", "oversample")


@dataclass
class TrainConfig:
    """The default recipe (see MODEL_CARD.md)."""

    epochs: int = 60
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup_frac: float = 0.15
    ema_decay: float = 0.998
    balance: str = "sqrt-weighted-loss"
    widths: tuple[int, ...] = (32, 64, 128, 256)
    convs_per_stage: int = 2
    dropout: float = 0.4
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train_split: str = "Training"
    val_split: str = "PublicTest"
    seed: int = 0
    device: str = "cpu"
    threads: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["augment"] = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d["augment"].items()})
        d["widths"] = tuple(d["widths"])
        return cls(**d)


def class_weights(labels: np.ndarray, mode: str) -> torch.Tensor | None:
    """Loss weights from training-split class counts (mean weight 1)."""
    if mode not in ("weighted-loss", "sqrt-weighted-loss"):
        return None
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64)
    w = 1.0 / np.maximum(counts, 1)
    if mode == "sqrt-weighted-loss":
        w = np.sqrt(w)
    w = w / (w * counts).sum() * counts.sum()
    return torch.tensor(w, dtype=torch.float32)


def epoch_order(labels: np.ndarray, mode: str, gen: torch.Generator) -> torch.Tensor:
    """Indices for one epoch; ``oversample`` draws classes equally, with replacement."""
    n = len(labels)
    if mode != "oversample":
        return torch.randperm(n, generator=gen)
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    weights = torch.tensor(1.0 / counts[labels], dtype=torch.float64)
    return torch.multinomial(weights, n, replacement=True, generator=gen)


@torch.no_grad()
def predict_probs(model: torch.nn.Module, faces: np.ndarray, device: str, batch_size: int = 512,
                  flip_tta: bool = True) -> np.ndarray:
    """Class probabilities for uint8 faces (N, 48, 48), centre crop and optional flip averaging."""
    model.eval()
    out = []
    for i in range(0, len(faces), batch_size):
        x = center_crop(torch.from_numpy(faces[i:i + batch_size]).float().unsqueeze(1)).to(device)
        x = x.contiguous(memory_format=torch.channels_last)
        p = torch.softmax(model(x), 1)
        if flip_tta:
            p = 0.5 * (p + torch.softmax(model(torch.flip(x, dims=[3])), 1))
        out.append(p.float().cpu())
    return torch.cat(out).numpy()


def build_model(cfg: TrainConfig) -> EmotionNet:
    return EmotionNet(widths=cfg.widths, convs_per_stage=cfg.convs_per_stage, dropout=cfg.dropout)


def train(cfg: TrainConfig, data: FaceDataset, out_dir: str | Path, resume: bool = False) -> Path:
    """Train on ``cfg.train_split``, report on ``cfg.val_split``; return the final checkpoint path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.balance not in BALANCING:
        raise ValueError(f"balance must be one of {BALANCING}, got {cfg.balance!r}")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but PyTorch sees no CUDA device")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dev = torch.device(cfg.device)

    train_set = data.split(cfg.train_split)
    val_set = data.split(cfg.val_split) if cfg.val_split in data.split_names() else None
    x_train = torch.from_numpy(train_set.images).float().unsqueeze(1).to(dev)
    y_train = torch.from_numpy(train_set.labels).to(dev)

    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(dev, memory_format=torch.channels_last)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                          weight_decay=cfg.weight_decay)
    steps_per_epoch = len(train_set) // cfg.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch,
                                                pct_start=cfg.warmup_frac, anneal_strategy="cos",
                                                div_factor=20, final_div_factor=200)
    weights = class_weights(train_set.labels, cfg.balance)
    weights = weights.to(dev) if weights is not None else None
    gen = torch.Generator().manual_seed(cfg.seed)
    start_epoch, elapsed = 0, 0.0

    last = out / "last.pt"
    if resume and last.exists():
        ck = torch.load(last, map_location=dev, weights_only=False)
        if TrainConfig.from_dict(ck["config"]) != cfg:
            raise ValueError(f"{last} was trained with a different config; start a new run directory")
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        gen.set_state(ck["generator"])
        start_epoch, elapsed = ck["epoch"], ck["elapsed_s"]
        print(f"resumed from {last} after epoch {start_epoch}")
    elif not resume and (out / "metrics.csv").exists():
        (out / "metrics.csv").unlink()
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))

    use_amp = dev.type == "cuda"
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.time()
        model.train()
        order = epoch_order(train_set.labels, cfg.balance, gen).to(dev)
        loss_sum = correct = seen = 0.0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False)
        for step in bar:
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            x = augment(x_train[idx], cfg.augment, gen if dev.type == "cpu" else None)
            x = x.contiguous(memory_format=torch.channels_last)
            y = y_train[idx]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
                logits = model(x)
                loss = F.cross_entropy(logits.float(), y, weight=weights, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            ema.update_parameters(model)
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        elapsed += time.time() - t0
        row = {"epoch": epoch + 1, "lr": sched.get_last_lr()[0], "train_loss": loss_sum / seen,
               "train_acc": correct / seen, "elapsed_s": round(elapsed, 1)}
        if val_set is not None:
            for name, m in (("val", model), ("val_ema", ema.module)):
                p = predict_probs(m, val_set.images, cfg.device)
                row[f"{name}_acc"] = float((p.argmax(1) == val_set.labels).mean())
        _log(out, row)
        print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
        state = {"model": model.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(), "generator": gen.get_state(), "epoch": epoch + 1,
                 "elapsed_s": elapsed, "config": asdict(cfg)}
        torch.save(state, out / "last.tmp")
        (out / "last.tmp").replace(last)  # atomic: a kill mid-save never corrupts last.pt

    final = out / "final.pt"
    torch.save({"model": ema.module.state_dict(), "config": asdict(cfg), "epochs": cfg.epochs,
                "elapsed_s": elapsed, "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
                "torch_threads": torch.get_num_threads(), "device": cfg.device}, final)
    return final


def _log(out: Path, row: dict) -> None:
    path = out / "metrics.csv"
    new = not path.exists()
    with path.open("a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)
    plot_curves(path, out / "curves.png")


def plot_curves(metrics_csv: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with metrics_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    ep = [int(r["epoch"]) for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ep, [float(r["train_loss"]) for r in rows], label="train loss")
    a.set_xlabel("epoch")
    a.legend()
    b.plot(ep, [float(r["train_acc"]) for r in rows], label="train acc (augmented)")
    for key, label in (("val_acc", "val acc"), ("val_ema_acc", "val acc (EMA)")):
        if key in rows[0]:
            b.plot(ep, [float(r[key]) for r in rows], label=label)
    b.set_xlabel("epoch")
    b.legend()
    b.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)

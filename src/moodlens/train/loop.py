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
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from moodlens.data import FaceDataset
from moodlens.spec import NUM_CLASSES
from moodlens.train.augment import augment, center_crop
from moodlens.train.config import BALANCING, AugmentConfig, TrainConfig
from moodlens.train.model import EmotionNet

__all__ = ["BALANCING", "AugmentConfig", "TrainConfig", "build_model", "predict_probs", "train"]


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


def checkpoint_weights(ck: dict) -> dict[str, torch.Tensor]:
    """The weights that ship from a checkpoint: ``final.pt``'s, or the EMA copy inside a ``last.pt``."""
    if "ema" in ck:  # AveragedModel state: ``module.`` prefix plus an update counter
        return {k.removeprefix("module."): v for k, v in ck["ema"].items() if k.startswith("module.")}
    return ck["model"]


def build_model(cfg: TrainConfig) -> EmotionNet:
    return EmotionNet(widths=cfg.widths, convs_per_stage=cfg.convs_per_stage, dropout=cfg.dropout)


def train(cfg: TrainConfig, data: FaceDataset, out_dir: str | Path, resume: bool = False,
          stop_after_epoch: int | None = None) -> Path:
    """Train on ``cfg.train_split``, report on ``cfg.val_split``; return the final checkpoint path.

    ``stop_after_epoch``: leave after that epoch's checkpoint (the schedule still spans
    ``cfg.epochs``), so a long run can be done in sessions with ``resume=True``; returns ``last.pt`` then.
    """
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
    has_val = cfg.val_split.lower() in (s.lower() for s in data.split_names())
    val_set = data.split(cfg.val_split) if has_val else None
    x_train = torch.from_numpy(train_set.images).float().unsqueeze(1).to(dev)
    y_train = torch.from_numpy(train_set.labels).to(dev)

    torch.manual_seed(cfg.seed)
    model = build_model(cfg)
    if cfg.init_from:
        model.load_state_dict(checkpoint_weights(torch.load(cfg.init_from, map_location="cpu", weights_only=False)))
    model = model.to(dev, memory_format=torch.channels_last)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                          weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(train_set) // cfg.batch_size)
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
        # Device and thread count may change between sessions (e.g. continue on a GPU); the recipe may not.
        if _recipe(TrainConfig.from_dict(ck["config"])) != _recipe(cfg):
            raise ValueError(f"{last} was trained with a different config; start a new run directory")
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        gen.set_state(ck["generator"].cpu())
        if "torch_rng" in ck:  # dropout's random stream; older checkpoints lack it
            torch.set_rng_state(ck["torch_rng"].cpu())
        start_epoch, elapsed = ck["epoch"], ck["elapsed_s"]
        _truncate_log(out / "metrics.csv", start_epoch)
        print(f"resumed from {last} after epoch {start_epoch}")
    elif not resume and (out / "metrics.csv").exists():
        (out / "metrics.csv").unlink()
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    # What the run was trained on, including any bad rows skipped by the reader (never dropped silently).
    (out / "data.json").write_text(json.dumps({
        "source": data.source, "train_split": cfg.train_split, "n_train": len(train_set),
        "train_class_counts": train_set.class_counts(), "val_split": cfg.val_split if val_set else None,
        "n_val": len(val_set) if val_set else 0,
        "skipped_bad": {"count": len(data.skipped), "first": data.skipped[:20]}}, indent=2))

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
                 "elapsed_s": elapsed, "config": asdict(cfg), "torch_rng": torch.get_rng_state()}
        torch.save(state, out / "last.tmp")
        (out / "last.tmp").replace(last)  # atomic: a kill mid-save never corrupts last.pt
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch and epoch + 1 < cfg.epochs:
            print(f"stopped after epoch {epoch + 1}; continue with resume")
            return last

    final = out / "final.pt"
    torch.save({"model": ema.module.state_dict(), "config": asdict(cfg), "epochs": cfg.epochs,
                "elapsed_s": elapsed, "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
                "torch_threads": torch.get_num_threads(), "device": cfg.device}, final)
    return final


def _recipe(cfg: TrainConfig) -> dict:
    return {k: v for k, v in asdict(cfg).items() if k not in ("device", "threads")}


def _truncate_log(path: Path, epochs_done: int) -> None:
    """Drop log rows of an epoch that was logged but never checkpointed (killed in between)."""
    if not path.exists():
        return
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and int(rows[-1]["epoch"]) > epochs_done:
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(r for r in rows if int(r["epoch"]) <= epochs_done)


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

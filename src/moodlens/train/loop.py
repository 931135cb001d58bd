"""The training recipe, readable top to bottom.

``train(TrainConfig(...), data, out_dir)`` writes into ``out_dir``:
``last.pt`` (every epoch; ``resume=True`` continues from it exactly),
``final.pt`` (the EMA weights after the last epoch), ``metrics.csv``,
``curves.png`` and ``config.json``.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from moodlens.dataset.readers import FaceDataset
from moodlens.spec import NUM_CLASSES
from moodlens.textsafe import csv_row, csv_rows
from moodlens.train.augment import augment, center_crop
from moodlens.train.config import BALANCING, AugmentConfig, TrainConfig
from moodlens.train.model import EmotionNet

__all__ = ["BALANCING", "AugmentConfig", "TrainConfig", "build_model", "load_checkpoint", "predict_probs", "train"]


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


def load_checkpoint(path: str | Path) -> tuple[EmotionNet, dict]:
    """Load ``final.pt`` (EMA weights) or ``last.pt`` (its EMA copy) as an eval-mode net, with the checkpoint."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    net = build_model(TrainConfig.from_dict(ck["config"]))
    net.load_state_dict(checkpoint_weights(ck))
    return net.eval(), ck


def is_onnx_teacher(teacher: str) -> bool:
    """A teacher given as an ONNX model (a shipped name such as ``accurate``, or an ``.onnx`` path)."""
    from moodlens.recognition.classifier import shipped_models

    return teacher.endswith(".onnx") or teacher in shipped_models()


def onnx_teacher_probs(teachers: list[str], faces: np.ndarray, cache: Path) -> np.ndarray | None:
    """Averaged probabilities of ONNX teachers on the (unaugmented) training faces, computed once
    with the runtime classifier (its own test-time augmentation included) and cached in ``cache``."""
    if not teachers:
        return None
    if cache.exists():  # reused only for the same teachers and faces (e.g. when resuming)
        with np.load(cache) as saved:
            if list(saved["teachers"]) == teachers and saved["probs"].shape == (len(faces), NUM_CLASSES):
                return saved["probs"]
    from moodlens.recognition.classifier import EmotionClassifier

    probs = np.zeros((len(faces), NUM_CLASSES), np.float32)
    for teacher in teachers:
        clf = EmotionClassifier(teacher)
        chunks = range(0, len(faces), 1024)
        for i in tqdm(chunks, desc=f"teacher {Path(teacher).name} on the training faces", unit="chunk", leave=False):
            probs[i:i + 1024] += clf.predict(faces[i:i + 1024]) / len(teachers)
    np.savez(cache, probs=probs, teachers=np.array(teachers))
    return probs


def soften(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Probabilities softened as their logits divided by ``temperature`` would be: p^(1/T), renormalised."""
    return torch.softmax(torch.log(probs.clamp_min(1e-8)) / temperature, 1)


def distill_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton et al.'s soft-target loss: T^2 * KL(teacher || student), both softened by T."""
    log_p = F.log_softmax(student_logits / temperature, dim=1)
    return F.kl_div(log_p, teacher_probs, reduction="batchmean") * temperature**2


class _Stepper:
    """One optimisation step: augment, forward (bf16 autocast on GPU), loss, backward, update, EMA."""

    def __init__(self, cfg: TrainConfig, model: torch.nn.Module, ema: AveragedModel, opt: torch.optim.Optimizer,
                 sched: torch.optim.lr_scheduler.LRScheduler, weights: torch.Tensor | None,
                 teachers: list[torch.nn.Module], dev: torch.device, gen: torch.Generator) -> None:
        self.cfg, self.model, self.ema, self.opt, self.sched = cfg, model, ema, opt, sched
        self.weights, self.teachers, self.dev, self.gen = weights, teachers, dev, gen

    def __call__(self, faces: torch.Tensor, y: torch.Tensor,
                 fixed_soft: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``fixed_soft``: ONNX teachers' softened probabilities for these faces (see :func:`soften`)."""
        cfg = self.cfg
        x = augment(faces, cfg.augment, self.gen if self.dev.type == "cpu" else None)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.dev.type == "cuda"):
            logits = self.model(x).float()
            loss = F.cross_entropy(logits, y, weight=self.weights, label_smoothing=cfg.label_smoothing)
            if self.teachers or fixed_soft is not None:
                with torch.no_grad():
                    t = cfg.distill_temperature
                    softs = [torch.softmax(net(x).float() / t, 1) for net in self.teachers]
                    if fixed_soft is not None:
                        softs.append(fixed_soft)
                    soft = torch.stack(softs).mean(0)
                loss = (1 - cfg.distill_weight) * loss + cfg.distill_weight * distill_loss(logits, soft, t)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        self.ema.update_parameters(self.model)
        return loss.detach(), logits.detach()


def initial_weights(cfg: TrainConfig, train_faces: np.ndarray) -> dict[str, torch.Tensor]:
    """Weights to start a further cycle from (``cfg.init_from``): an earlier run's ``final.pt``/``last.pt``,
    or a single-net ONNX model (a shipped name or a path; see :mod:`moodlens.train.from_onnx`), whose
    restored BatchNorm statistics are measured on 4,096 of ``train_faces``."""
    if not is_onnx_teacher(cfg.init_from):
        return checkpoint_weights(torch.load(cfg.init_from, map_location="cpu", weights_only=False))
    from moodlens.train.from_onnx import net_from_onnx

    pick = np.random.default_rng(cfg.seed).permutation(len(train_faces))[:4096]
    crops = center_crop(torch.from_numpy(train_faces[np.sort(pick)]).float().unsqueeze(1))
    net, card = net_from_onnx(cfg.init_from, crops.numpy())
    theirs = TrainConfig.from_dict(card["config"])
    if (theirs.widths, theirs.convs_per_stage) != (cfg.widths, cfg.convs_per_stage):
        raise ValueError(f"--init-from {cfg.init_from} is a net with widths {theirs.widths} and "
                         f"{theirs.convs_per_stage} convs per stage; this run asks for {cfg.widths} and "
                         f"{cfg.convs_per_stage} (set --widths/--convs-per-stage to match)")
    return net.state_dict()


def _parts(cfg: TrainConfig, dev: torch.device, steps_per_epoch: int, weights: torch.Tensor | None,
           teachers: list[torch.nn.Module], gen: torch.Generator,
           init: dict[str, torch.Tensor] | None = None) -> _Stepper:
    """Fresh model (``init`` weights if given), EMA, optimiser and one-cycle schedule for ``cfg``."""
    model = build_model(cfg)
    if init is not None:
        model.load_state_dict(init)
    model = model.to(dev, memory_format=torch.channels_last)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                          weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch,
                                                pct_start=cfg.warmup_frac, anneal_strategy="cos",
                                                div_factor=20, final_div_factor=200)
    return _Stepper(cfg, model, ema, opt, sched, weights, teachers, dev, gen)


def epochs_for_budget(cfg: TrainConfig, x_train: torch.Tensor, y_train: torch.Tensor, steps_per_epoch: int,
                      weights: torch.Tensor | None, teachers: list[torch.nn.Module],
                      val_faces: np.ndarray | None, budget_s: float, steps: int = 20,
                      fixed_soft: torch.Tensor | None = None) -> tuple[int, dict]:
    """How many epochs (at most ``cfg.epochs``) fit in ``budget_s`` seconds, from timing ``steps``
    real training steps (after warm-up), one validation pass and one checkpoint save on a throwaway model."""
    dev = torch.device(cfg.device)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    step = _parts(replace(cfg, epochs=steps + 10), dev, steps_per_epoch, weights, teachers, gen)
    bs = cfg.batch_size

    def run(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            idx = torch.randint(0, len(y_train), (bs,), device=dev)
            loss, _ = step(x_train[idx], y_train[idx], None if fixed_soft is None else fixed_soft[idx])
        loss.item()  # wait for the device
        return time.perf_counter() - t0

    run(5)
    step_s = run(steps) / steps
    t0 = time.perf_counter()
    if val_faces is not None:
        for m in (step.model, step.ema.module):
            predict_probs(m, val_faces, cfg.device)
    torch.save({"model": step.model.state_dict(), "ema": step.ema.state_dict(), "opt": step.opt.state_dict()},
               io.BytesIO())
    extra_s = time.perf_counter() - t0
    epoch_s = step_s * steps_per_epoch + extra_s
    fit = int(budget_s // epoch_s)
    epochs = max(1, min(cfg.epochs, fit - fit % 5 if fit >= 20 else fit))
    return epochs, {"step_s": step_s, "epoch_s_estimate": epoch_s, "budget_s": budget_s, "epochs": epochs}


def train(cfg: TrainConfig, data: FaceDataset, out_dir: str | Path, resume: bool = False,
          stop_after_epoch: int | None = None, time_budget_s: float | None = None) -> Path:
    """Train on ``cfg.train_split``, report on ``cfg.val_split``; return the final checkpoint path.

    ``stop_after_epoch``: leave after that epoch's checkpoint (the schedule still spans
    ``cfg.epochs``), so a long run can be done in sessions with ``resume=True``; returns ``last.pt`` then.
    ``time_budget_s``: lower ``cfg.epochs`` to what fits in that many seconds, timed on this machine
    before training starts (recorded in ``config.json`` and ``budget.json``, so the run can be repeated
    with ``epochs`` set); ignored when resuming, which keeps the checkpoint's epoch count.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.balance not in BALANCING:
        raise ValueError(f"balance must be one of {BALANCING}, got {cfg.balance!r}")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but PyTorch sees no CUDA device")
    if not 0.0 <= cfg.distill_weight <= 1.0 or cfg.distill_temperature <= 0:
        raise ValueError("distill_weight must be in [0, 1] and distill_temperature > 0")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dev = torch.device(cfg.device)
    torch.backends.cudnn.benchmark = dev.type == "cuda"

    train_set = data.split(cfg.train_split)
    # A split that is part of the training data is never scored as validation.
    trained_on = {part.lower() for part in cfg.train_split.split("+")}
    has_val = (cfg.val_split.lower() in (s.lower() for s in data.split_names())
               and cfg.val_split.lower() not in trained_on)
    val_set = data.split(cfg.val_split) if has_val else None
    x_train = torch.from_numpy(train_set.images).float().unsqueeze(1).to(dev)
    y_train = torch.from_numpy(train_set.labels).to(dev)
    steps_per_epoch = max(1, len(train_set) // cfg.batch_size)
    weights = class_weights(train_set.labels, cfg.balance)
    weights = weights.to(dev) if weights is not None else None
    teachers = [load_checkpoint(t)[0].to(dev, memory_format=torch.channels_last).requires_grad_(False)
                for t in cfg.teachers if not is_onnx_teacher(t)]
    fixed = onnx_teacher_probs([t for t in cfg.teachers if is_onnx_teacher(t)], train_set.images,
                               out / "teacher_probs.npz")
    fixed_soft = soften(torch.from_numpy(fixed), cfg.distill_temperature).to(dev) if fixed is not None else None

    last = out / "last.pt"
    ck = torch.load(last, map_location=dev, weights_only=False) if resume and last.exists() else None
    if ck is not None and time_budget_s:
        cfg = replace(cfg, epochs=ck["config"]["epochs"])
    elif time_budget_s:
        epochs, report = epochs_for_budget(cfg, x_train, y_train, steps_per_epoch, weights, teachers,
                                           val_set.images if val_set else None, time_budget_s,
                                           fixed_soft=fixed_soft)
        print(f"time budget {time_budget_s:.0f} s: {report['epoch_s_estimate']:.1f} s/epoch -> {epochs} epochs",
              flush=True)
        (out / "budget.json").write_text(json.dumps(report, indent=2))
        cfg = replace(cfg, epochs=epochs)

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    init = initial_weights(cfg, train_set.images) if cfg.init_from and ck is None else None
    step = _parts(cfg, dev, steps_per_epoch, weights, teachers, gen, init)
    model, ema, opt, sched = step.model, step.ema, step.opt, step.sched
    start_epoch, elapsed = 0, 0.0

    if ck is not None:
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
        del ck
    elif (out / "metrics.csv").exists():
        (out / "metrics.csv").unlink()
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    # What the run was trained on, including any bad rows skipped by the reader (never dropped silently).
    (out / "data.json").write_text(json.dumps({
        "source": data.source, "train_split": cfg.train_split, "n_train": len(train_set),
        "train_class_counts": train_set.class_counts(), "val_split": cfg.val_split if val_set else None,
        "n_val": len(val_set) if val_set else 0,
        "skipped_bad": {"count": len(data.skipped), "first": data.skipped[:20]}}, indent=2))

    last_plot = last_save = 0.0
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.time()
        model.train()
        order = epoch_order(train_set.labels, cfg.balance, gen).to(dev)
        # Sums stay on the device; reading them (a sync) only every 10 steps keeps a GPU busy.
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.long)
        seen = 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False)
        for i in bar:
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            y = y_train[idx]
            loss, logits = step(x_train[idx], y, None if fixed_soft is None else fixed_soft[idx])
            loss_sum += loss * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            if i % 10 == 0:
                bar.set_postfix(loss=f"{loss_sum.item() / seen:.3f}", acc=f"{correct.item() / seen:.3f}")
        elapsed += time.time() - t0
        row = {"epoch": epoch + 1, "lr": sched.get_last_lr()[0], "train_loss": loss_sum.item() / seen,
               "train_acc": correct.item() / seen, "elapsed_s": round(elapsed, 1)}
        if val_set is not None:
            for name, m in (("val", model), ("val_ema", ema.module)):
                p = predict_probs(m, val_set.images, cfg.device)
                row[f"{name}_acc"] = float((p.argmax(1) == val_set.labels).mean())
        # The curves are redrawn every epoch, at most every 30 s when epochs are short (GPU).
        plot = time.time() - last_plot > 30 or epoch + 1 == cfg.epochs
        _log(out, row, plot=plot)
        last_plot = time.time() if plot else last_plot
        print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
        stopping = stop_after_epoch is not None and epoch + 1 >= stop_after_epoch and epoch + 1 < cfg.epochs
        # Every epoch; at most every 10 s when epochs are that short (GPU), and always before leaving.
        if time.time() - last_save > 10 or stopping or epoch + 1 == cfg.epochs:
            state = {"model": model.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
                     "scheduler": sched.state_dict(), "generator": gen.get_state(), "epoch": epoch + 1,
                     "elapsed_s": elapsed, "config": asdict(cfg), "torch_rng": torch.get_rng_state()}
            torch.save(state, out / "last.tmp")
            (out / "last.tmp").replace(last)  # atomic: a kill mid-save never corrupts last.pt
            last_save = time.time()
        if stopping:
            print(f"stopped after epoch {epoch + 1}; continue with resume")
            return last

    final = out / "final.pt"
    torch.save({"model": ema.module.state_dict(), "config": asdict(cfg), "epochs": cfg.epochs,
                "elapsed_s": elapsed, "machine": _machine(dev),
                "torch_threads": torch.get_num_threads(), "device": cfg.device}, final)
    return final


def _machine(dev: torch.device) -> str:
    host = f"{platform.node()} {platform.processor() or platform.machine()}"
    return f"{host} + {torch.cuda.get_device_name(dev)}" if dev.type == "cuda" else host


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
            w.writerows(csv_rows(r for r in rows if int(r["epoch"]) <= epochs_done))


def _log(out: Path, row: dict, plot: bool = True) -> None:
    path = out / "metrics.csv"
    new = not path.exists()
    with path.open("a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(csv_row(row))
    if plot:
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

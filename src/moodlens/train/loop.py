"""The training recipe, readable top to bottom.

``train(TrainConfig(...), data, out_dir)`` writes into ``out_dir``:
``last.pt`` (every epoch; ``resume=True`` continues from it exactly),
``final.pt`` (the EMA weights after the last epoch), ``metrics.csv``,
``curves.png``, ``config.json`` and ``data.json``.

:func:`train` is a sequence of named steps, each a function of its own below it: check the
recipe, load the data and the teachers, pick up ``last.pt``, fit the time budget, start (or
restore) the model, then per epoch: train, validate, log, checkpoint.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import asdict, dataclass, replace
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
from moodlens.train.checkpoints import build_model, checkpoint_weights, load_checkpoint, save_atomically
from moodlens.train.config import BALANCING, AugmentConfig, TrainConfig
from moodlens.train.distill import Teachers, distill_loss, is_onnx_teacher, load_teachers
from moodlens.train.speed import cpu_model

__all__ = ["BALANCING", "AugmentConfig", "TrainConfig", "build_model", "load_checkpoint", "predict_probs", "train"]

#: Redraw ``curves.png`` at most this often (seconds) when epochs are short (GPU); always after the last epoch.
PLOT_EVERY_S = 30
#: Write ``last.pt`` at most this often (seconds) when epochs are short; always before leaving.
SAVE_EVERY_S = 10


def train(cfg: TrainConfig, data: FaceDataset, out_dir: str | Path, resume: bool = False,
          stop_after_epoch: int | None = None, time_budget_s: float | None = None) -> Path:
    """Train on ``cfg.train_split``, report on ``cfg.val_split``; return the final checkpoint path.

    ``stop_after_epoch``: leave after that epoch's checkpoint (the schedule still spans
    ``cfg.epochs``), so a long run can be done in parts with ``resume=True``; returns ``last.pt`` then.
    ``time_budget_s``: lower ``cfg.epochs`` to what fits in that many seconds, timed on this machine
    before training starts (recorded in ``config.json`` and ``budget.json``, so the run can be repeated
    with ``epochs`` set); ignored when resuming, which keeps the checkpoint's epoch count.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = prepare_device(cfg)
    batches = TrainingData.load(cfg, data, dev)
    teachers = load_teachers(cfg, batches.train.images, out, dev)
    last = out / "last.pt"
    saved = torch.load(last, map_location=dev, weights_only=False) if resume and last.exists() else None
    cfg = fit_time_budget(cfg, saved, time_budget_s, batches, teachers, out)
    check_resumable(cfg, saved, last)
    run = start_run(cfg, batches, teachers, dev, saved)
    if saved is not None:
        print(f"resumed from {last} after epoch {run.epoch}")
    prepare_log(out / "metrics.csv", run.epoch if saved is not None else None)
    del saved
    write_run_info(out, cfg, data, batches)

    log = EpochLog(out)
    for epoch in range(run.epoch, cfg.epochs):
        row = train_one_epoch(run, batches, teachers, epoch)
        row |= validate(run, batches)
        final_epoch = epoch + 1 == cfg.epochs
        log.record(row, final_epoch)
        stopping = stop_after_epoch is not None and epoch + 1 >= stop_after_epoch and not final_epoch
        if log.save_due(stopping or final_epoch):
            save_atomically(run.state(), last)
        if stopping:
            print(f"stopped after epoch {epoch + 1}; continue with resume")
            return last
    return save_final(run, out / "final.pt")


# --- check the recipe, load the data ---------------------------------------------------------------------------
def prepare_device(cfg: TrainConfig) -> torch.device:
    """Refuse an impossible recipe early; set the thread count and the device."""
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
    return dev


@dataclass
class TrainingData:
    """The training split as tensors on the device, its loss weights, and the validation split (if any)."""

    train: FaceDataset
    val: FaceDataset | None
    x: torch.Tensor
    y: torch.Tensor
    weights: torch.Tensor | None
    steps_per_epoch: int

    @classmethod
    def load(cls, cfg: TrainConfig, data: FaceDataset, dev: torch.device) -> TrainingData:
        train_set = data.split(cfg.train_split)
        # A split that is part of the training data is never scored as validation.
        trained_on = {part.lower() for part in cfg.train_split.split("+")}
        has_val = (cfg.val_split.lower() in (s.lower() for s in data.split_names())
                   and cfg.val_split.lower() not in trained_on)
        weights = class_weights(train_set.labels, cfg.balance)
        return cls(train=train_set, val=data.split(cfg.val_split) if has_val else None,
                   x=torch.from_numpy(train_set.images).float().unsqueeze(1).to(dev),
                   y=torch.from_numpy(train_set.labels).to(dev),
                   weights=weights.to(dev) if weights is not None else None,
                   steps_per_epoch=max(1, len(train_set) // cfg.batch_size))


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


# --- one optimisation step -------------------------------------------------------------------------------------
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


# --- the time budget -------------------------------------------------------------------------------------------
def fit_time_budget(cfg: TrainConfig, saved: dict | None, budget_s: float | None, batches: TrainingData,
                    teachers: Teachers, out: Path) -> TrainConfig:
    """``cfg`` with the epochs that fit in ``budget_s`` (recorded in ``budget.json``); a resumed run keeps
    its checkpoint's epoch count; no budget, no change."""
    if not budget_s:
        return cfg
    if saved is not None:
        return replace(cfg, epochs=saved["config"]["epochs"])
    epochs, report = epochs_for_budget(cfg, batches.x, batches.y, batches.steps_per_epoch, batches.weights,
                                       teachers.nets, batches.val.images if batches.val else None, budget_s,
                                       fixed_soft=teachers.fixed_soft)
    print(f"time budget {budget_s:.0f} s: {report['epoch_s_estimate']:.1f} s/epoch -> {epochs} epochs", flush=True)
    (out / "budget.json").write_text(json.dumps(report, indent=2))
    return replace(cfg, epochs=epochs)


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


# --- start or resume -------------------------------------------------------------------------------------------
@dataclass
class Run:
    """What changes while training: the step (model, EMA, optimiser, schedule, random stream), the epochs
    done and the seconds spent in training steps."""

    cfg: TrainConfig
    step: _Stepper
    epoch: int = 0
    elapsed: float = 0.0

    def state(self) -> dict:
        """Everything ``--resume`` needs to continue exactly."""
        s = self.step
        return {"model": s.model.state_dict(), "ema": s.ema.state_dict(), "optimizer": s.opt.state_dict(),
                "scheduler": s.sched.state_dict(), "generator": s.gen.get_state(), "epoch": self.epoch,
                "elapsed_s": self.elapsed, "config": asdict(self.cfg), "torch_rng": torch.get_rng_state()}


def start_run(cfg: TrainConfig, batches: TrainingData, teachers: Teachers, dev: torch.device,
              saved: dict | None) -> Run:
    """Seed everything, build model, EMA, optimiser and schedule (from ``cfg.init_from`` for a further cycle),
    and restore them from ``saved`` (``last.pt``) when resuming."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    init = initial_weights(cfg, batches.train.images) if cfg.init_from and saved is None else None
    run = Run(cfg, _parts(cfg, dev, batches.steps_per_epoch, batches.weights, teachers.nets, gen, init))
    if saved is not None:
        restore(run, saved)
    return run


def check_resumable(cfg: TrainConfig, saved: dict | None, path: Path) -> None:
    """Device and thread count may change between parts of a run (e.g. continue on a GPU); the recipe may not."""
    if saved is not None and _recipe(TrainConfig.from_dict(saved["config"])) != _recipe(cfg):
        raise ValueError(f"{path} was trained with a different config; start a new run directory")


def restore(run: Run, saved: dict) -> None:
    """Continue ``run`` from a ``last.pt``: same weights, optimiser, schedule and random streams."""
    s = run.step
    s.model.load_state_dict(saved["model"])
    s.ema.load_state_dict(saved["ema"])
    s.opt.load_state_dict(saved["optimizer"])
    s.sched.load_state_dict(saved["scheduler"])
    s.gen.set_state(saved["generator"].cpu())
    if "torch_rng" in saved:  # dropout's random stream; older checkpoints lack it
        torch.set_rng_state(saved["torch_rng"].cpu())
    run.epoch, run.elapsed = saved["epoch"], saved["elapsed_s"]


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
    theirs = card.training.nets[0].config
    if (theirs.widths, theirs.convs_per_stage) != (cfg.widths, cfg.convs_per_stage):
        raise ValueError(f"--init-from {cfg.init_from} is a net with widths {theirs.widths} and "
                         f"{theirs.convs_per_stage} convs per stage; this run asks for {cfg.widths} and "
                         f"{cfg.convs_per_stage} (set --widths/--convs-per-stage to match)")
    return net.state_dict()


def _recipe(cfg: TrainConfig) -> dict:
    return {k: v for k, v in asdict(cfg).items() if k not in ("device", "threads")}


def write_run_info(out: Path, cfg: TrainConfig, data: FaceDataset, batches: TrainingData) -> None:
    """``config.json`` (the recipe as run) and ``data.json``: what the run was trained on, including any bad
    rows the reader skipped (never dropped silently)."""
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    (out / "data.json").write_text(json.dumps({
        "source": data.source, "train_split": cfg.train_split, "n_train": len(batches.train),
        "train_class_counts": batches.train.class_counts(), "val_split": cfg.val_split if batches.val else None,
        "n_val": len(batches.val) if batches.val else 0,
        "skipped_bad": {"count": len(data.skipped), "first": data.skipped[:20]}}, indent=2))


# --- one epoch -------------------------------------------------------------------------------------------------
def train_one_epoch(run: Run, batches: TrainingData, teachers: Teachers, epoch: int) -> dict:
    """One pass over the training split in a fresh random order; the epoch's log row."""
    cfg, step, dev = run.cfg, run.step, run.step.dev
    t0 = time.time()
    step.model.train()
    order = epoch_order(batches.train.labels, cfg.balance, step.gen).to(dev)
    # Sums stay on the device; reading them (a sync) only every 10 steps keeps a GPU busy.
    loss_sum = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev, dtype=torch.long)
    seen = 0
    bar = tqdm(range(batches.steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False)
    for i in bar:
        idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
        y = batches.y[idx]
        loss, logits = step(batches.x[idx], y, teachers.fixed_for(idx))
        loss_sum += loss * len(y)
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        if i % 10 == 0:
            bar.set_postfix(loss=f"{loss_sum.item() / seen:.3f}", acc=f"{correct.item() / seen:.3f}")
    run.elapsed += time.time() - t0
    run.epoch = epoch + 1
    return {"epoch": epoch + 1, "lr": step.sched.get_last_lr()[0], "train_loss": loss_sum.item() / seen,
            "train_acc": correct.item() / seen, "elapsed_s": round(run.elapsed, 1)}


def validate(run: Run, batches: TrainingData) -> dict:
    """Validation accuracy of the raw and the EMA weights (nothing without a validation split)."""
    if batches.val is None:
        return {}
    row = {}
    for name, m in (("val", run.step.model), ("val_ema", run.step.ema.module)):
        p = predict_probs(m, batches.val.images, run.cfg.device)
        row[f"{name}_acc"] = float((p.argmax(1) == batches.val.labels).mean())
    return row


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


# --- log and checkpoints ---------------------------------------------------------------------------------------
def prepare_log(path: Path, epochs_done: int | None) -> None:
    """A fresh run starts a new ``metrics.csv``; a resumed one drops rows of an epoch that was logged but never
    checkpointed (killed in between)."""
    if not path.exists():
        return
    if epochs_done is None:
        path.unlink()
        return
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and int(rows[-1]["epoch"]) > epochs_done:
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(csv_rows(r for r in rows if int(r["epoch"]) <= epochs_done))


class EpochLog:
    """Appends each epoch's row to ``metrics.csv``, prints it, redraws ``curves.png`` and says when
    ``last.pt`` is due (every epoch, throttled when epochs take seconds)."""

    def __init__(self, out: Path) -> None:
        self.out, self.last_plot, self.last_save = out, 0.0, 0.0

    def record(self, row: dict, final_epoch: bool) -> None:
        path = self.out / "metrics.csv"
        new = not path.exists()
        with path.open("a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(csv_row(row))
        if time.time() - self.last_plot > PLOT_EVERY_S or final_epoch:
            plot_curves(path, self.out / "curves.png")
            self.last_plot = time.time()
        print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)

    def save_due(self, must: bool) -> bool:
        if must or time.time() - self.last_save > SAVE_EVERY_S:
            self.last_save = time.time()
            return True
        return False


def save_final(run: Run, path: Path) -> Path:
    """``final.pt``: the EMA weights that ship, with the recipe and what training cost where."""
    dev = run.step.dev
    torch.save({"model": run.step.ema.module.state_dict(), "config": asdict(run.cfg), "epochs": run.cfg.epochs,
                "elapsed_s": run.elapsed, "machine": _machine(dev), "torch_threads": torch.get_num_threads(),
                "device": run.cfg.device}, path)
    return path


def _machine(dev: torch.device) -> str:
    """The machine in words, without its host name: the CPU (and thread count), or the GPU."""
    if dev.type == "cuda":
        return f"{cpu_model()} + {torch.cuda.get_device_name(dev)}"
    return f"{cpu_model()}, {torch.get_num_threads()} threads"


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

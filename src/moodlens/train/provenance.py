"""What a model card records about a trained network: its recipe, and what it cost to make.

A network may continue an earlier run (``init_from``: a checkpoint, or an exported model read back) and
learn from teachers (checkpoints, or exported models whose cards list their own networks). Its card
counts the epochs of every earlier cycle and the training minutes of every cycle and teacher, each run
once, so "what did this model cost" has one honest answer.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from moodlens.card import ModelCard, NetProvenance
from moodlens.recognition.classifier import resolve_model
from moodlens.train.checkpoints import checkpoint_weights
from moodlens.train.distill import is_onnx_teacher
from moodlens.train.speed import cpu_model


@functools.cache
def read_checkpoint(path: Path) -> dict:
    """A training checkpoint, loaded once however many cards and chains refer to it."""
    return torch.load(path, map_location="cpu", weights_only=False)


def local_checkpoint(ref: str, referrer: Path) -> Path:
    """A checkpoint named in ``referrer``'s config. A run trained on another machine names the path it had
    there, so look for the same run folder beside the referrer's run folder."""
    path = Path(ref)
    return path if path.is_file() else referrer.parent.parent / path.parent.name / path.name


def machine_words(ck: dict) -> str:
    """Where a checkpoint was trained, in words (no host names)."""
    machine = ck.get("machine") or ""
    if ck.get("device") == "cuda":
        return f"one {machine.split(' + ')[-1] or 'unknown'} GPU"
    return machine if machine.endswith(" threads") else cpu_model()


def _card_of(model: str) -> ModelCard | None:
    return ModelCard.of_model(resolve_model(model))


def onnx_start(model: str) -> NetProvenance | None:
    """The single network inside an exported model a run started from (``--init-from X.onnx``), if known."""
    card = _card_of(model)
    return card.training.nets[0] if card and card.ensemble_size == 1 else None


def _dependencies(path: Path, ck: dict) -> list[Path]:
    """Checkpoints this one built on: the earlier cycle it continued and its teachers (an ONNX teacher's
    networks, from its card)."""
    cfg = ck["config"]
    init = cfg.get("init_from")
    deps = [local_checkpoint(init, path)] if init and not is_onnx_teacher(init) else []
    for teacher in cfg.get("teachers") or []:
        if not is_onnx_teacher(teacher):
            deps.append(local_checkpoint(teacher, path))
        elif card := _card_of(teacher):
            deps += [Path(net.checkpoint) for net in card.training.nets]
    return deps


def lineage(path: Path, seen: set[Path]) -> tuple[float, set[tuple[str, str]]]:
    """Training minutes and (device, machine in words) of a checkpoint together with its earlier cycles and
    its teachers, each run counted once (``seen`` holds those already counted)."""
    if path.resolve() in seen or not path.is_file():
        return 0.0, set()
    seen.add(path.resolve())
    ck = read_checkpoint(path.resolve())
    minutes, machines = ck["elapsed_s"] / 60, {(ck.get("device", "cpu"), machine_words(ck))}
    init = ck["config"].get("init_from")
    if init and is_onnx_teacher(init) and (start := onnx_start(init)) and resolve_model(init).resolve() not in seen:
        seen.add(resolve_model(init).resolve())  # a cycle started from an exported model: its card has the cost
        minutes += start.train_minutes_total
        machines |= {(d, w) for d in start.devices for w in start.machines}
    for dep in _dependencies(path, ck):
        more, where = lineage(dep, seen)
        minutes, machines = minutes + more, machines | where
    return minutes, machines


def epochs_total(path: Path) -> int:
    """Epochs of a checkpoint and of every earlier cycle it continued (checkpoints, or an exported model's card)."""
    ck = read_checkpoint(path.resolve())
    epochs, parent = _epochs(ck), ck["config"].get("init_from")
    while parent:
        if is_onnx_teacher(parent):
            start = onnx_start(parent)
            return epochs + (start.epochs_total if start else 0)
        if not (parent_path := local_checkpoint(parent, path)).is_file():
            break
        pk = read_checkpoint(parent_path.resolve())
        epochs, path, parent = epochs + _epochs(pk), parent_path, pk["config"].get("init_from")
    return epochs


def _epochs(ck: dict) -> int:
    return int(ck["epochs"] if "epochs" in ck else ck["epoch"])  # final.pt, or a last.pt stopped early


def _teacher_words(teacher: str, checkpoint: Path) -> str:
    if is_onnx_teacher(teacher):
        card = _card_of(teacher)
        return f"{teacher} ({card.name if card else 'ONNX'}, scored once on the unaugmented training faces)"
    return str(local_checkpoint(teacher, checkpoint))


def net_provenance(checkpoint: str | Path) -> NetProvenance:
    """What a card says about one trained network: its recipe, and the cost of everything it built on."""
    path = Path(checkpoint)
    ck = read_checkpoint(path.resolve())
    cfg = ck["config"]
    minutes, machines = lineage(path, set())
    init = cfg.get("init_from")
    start = None
    if init and is_onnx_teacher(init):
        card = _card_of(init)
        start = f"the exported {card.name if card else 'model'}, weights read back from its graph"
    return NetProvenance(
        checkpoint=str(path), config=cfg, params=_params(ck),
        train_minutes=round(ck["elapsed_s"] / 60, 1), epochs_total=epochs_total(path),
        train_minutes_total=round(minutes, 1), device=ck.get("device", "cpu"), machine=ck.get("machine") or cpu_model(),
        torch_threads=ck.get("torch_threads"), machines=tuple(sorted({w for _, w in machines})),
        devices=tuple(sorted({d for d, _ in machines})),
        teachers=tuple(_teacher_words(t, path) for t in cfg.get("teachers") or ()), start=start)


def _params(ck: dict) -> int:
    """Trainable parameters (weights and biases; BatchNorm statistics are not parameters)."""
    return int(sum(v.numel() for k, v in checkpoint_weights(ck).items() if k.endswith(("weight", "bias"))))

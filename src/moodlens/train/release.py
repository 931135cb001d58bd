"""Ship finished training runs as a named model of the package (``moodlens release``).

Exports ``RUN/final.pt`` (several runs: an ensemble averaged inside the graph) to ``MODELS/TARGET.onnx``
(parity-checked on real PublicTest faces; ``int8``: quantised with Training faces and checked against the
float graph), evaluates it on PublicTest with the runtime classifier, times it with ONNX Runtime, and writes
its cards: ``TARGET.json`` (the :class:`~moodlens.card.ModelCard` the package reads) and the Markdown card
people read (``MODEL_CARD.md`` for ``default``, ``docs/model/TARGET.md`` otherwise). Earlier releases of the
same target stay in the card's history. Never touches PrivateTest.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from moodlens.card import HistoryEntry, ModelCard, Speed, SplitMetrics, card_path
from moodlens.dataset.evaluate import evaluate
from moodlens.dataset.readers import FaceDataset, load_dataset
from moodlens.recognition.classifier import EmotionClassifier, models_dir
from moodlens.train.card_markdown import render_markdown
from moodlens.train.export import calibration_sample, export_onnx
from moodlens.train.flip_free import write_flip_free_graph
from moodlens.train.speed import cpu_model, faces_per_second

#: Real PublicTest faces in the export's parity check.
PARITY_FACES = 256


def figures_dir(docs: Path, target: str) -> Path:
    """Where a target's PublicTest figures go (confusion matrix, reliability, example grids)."""
    return docs / "docs" / "model" / ("publictest" if target == "default" else f"{target}-publictest")


def markdown_path(docs: Path, target: str) -> Path:
    """The Markdown card of a target: ``MODEL_CARD.md`` for ``default``, ``docs/model/TARGET.md`` otherwise."""
    return docs / "MODEL_CARD.md" if target == "default" else docs / "docs" / "model" / f"{target}.md"


def measure_speed(model: Path, seconds: float = 3.0) -> Speed:
    """Faces/second of the runtime classifier at batch 1 and 64, on this machine."""
    clf = EmotionClassifier(model)
    fps = {batch: round(faces_per_second(clf.predict, batch, seconds)) for batch in (1, 64)}
    return Speed(onnxruntime_faces_per_s_batch1=fps[1], onnxruntime_faces_per_s_batch64=fps[64],
                 machine=f"{cpu_model()}, {clf.threads} threads")


def release(runs: list[Path], data: str | Path | FaceDataset, commands: list[str], *, name: str,
            target: str = "default", int8: bool = False, flip_tta: bool = True, notes: str = "",
            models: Path | None = None, docs: Path = Path("."), speed_seconds: float = 3.0) -> ModelCard:
    """Export, check, evaluate and time ``runs`` as ``target``; write and return its card (see module doc)."""
    dataset = data if isinstance(data, FaceDataset) else load_dataset(data, progress=True)
    onnx = (models or models_dir()) / f"{target}.onnx"
    previous = ModelCard.of_model(onnx) if onnx.is_file() else None
    calib = calibration_sample(dataset.split("Training").images) if int8 else None
    exported = export_onnx([Path(run) / "final.pt" for run in runs], onnx, flip_tta=flip_tta, name=name,
                           parity_faces=dataset.split("PublicTest").images[:PARITY_FACES], calibration_faces=calib)
    figures = figures_dir(docs, target)
    report = evaluate(dataset, model=onnx, split="PublicTest", out=figures)
    metrics = SplitMetrics.model_validate({k: report[k] for k in SplitMetrics.model_fields})
    speed = measure_speed(onnx, speed_seconds)
    today = dt.date.today()
    entry = history_entry(exported, metrics, speed, today)
    history = tuple(h for h in (previous.history if previous else ()) if (h.date, h.name) != (today, name))
    card = ModelCard.model_validate(exported.model_dump() | {
        "version": today.isoformat(), "target": target, "metrics": {"publictest": metrics}, "speed": speed,
        "history": (*history, entry), "notes": notes,
        "training": exported.training.model_dump() | {"commands": tuple(commands)},
        # an evaluation by others stays only if it measured this very file
        "independent_evaluations": tuple(e for e in (previous.independent_evaluations if previous else ())
                                         if e.model_sha256 == exported.sha256)})
    if flip_tta and len(runs) == 1:  # the video path runs the network without the flip average (half the work)
        card = card.model_copy(update={"flip_free_graph": write_flip_free_graph(onnx).name})
    write_cards(card, onnx, docs)
    return card


def history_entry(card: ModelCard, metrics: SplitMetrics, speed: Speed, date: dt.date) -> HistoryEntry:
    nets = card.training.nets
    return HistoryEntry(date=date, name=card.name, accuracy=round(metrics.accuracy, 4),
                        macro_f1=round(metrics.macro_f1, 4), params=card.params,
                        epochs="+".join(str(n.epochs_total) for n in nets), train_minutes=card.training.minutes,
                        # every device the nets, their earlier cycles and their teachers trained on
                        device=",".join(sorted({d for n in nets for d in n.devices})), precision=card.precision,
                        faces_per_s_batch64=speed.onnxruntime_faces_per_s_batch64)


def retime(target: str, models: Path | None = None, docs: Path = Path("."), speed_seconds: float = 3.0) -> ModelCard:
    """Measure a shipped model's speed again on this machine (e.g. a quiet one) and rewrite its cards."""
    onnx = (models or models_dir()) / f"{target}.onnx"
    card = ModelCard.of_model(onnx)
    if card is None:
        raise FileNotFoundError(f"no model card beside {onnx}")
    speed = measure_speed(onnx, speed_seconds)
    history = tuple(h.model_copy(update={"faces_per_s_batch64": speed.onnxruntime_faces_per_s_batch64})
                    if h.name == card.name else h for h in card.history)
    card = ModelCard.model_validate(card.model_dump() | {"speed": speed, "history": history})
    write_cards(card, onnx, docs)
    return card


def write_cards(card: ModelCard, onnx: Path, docs: Path) -> None:
    """The JSON card beside the model and, for a shipped target, its Markdown card."""
    card.save(card_path(onnx))
    if card.target:
        md = markdown_path(docs, card.target)
        md.parent.mkdir(parents=True, exist_ok=True)
        md.write_text(render_markdown(card, onnx, figures_dir(Path("."), card.target)))

"""``ModelCard``: what a model is, how it was made and how well it measured.

Every ONNX model the package runs may have a card beside it (``NAME.json`` next to ``NAME.onnx``). This
module is the only place that reads or writes one: :meth:`ModelCard.load` validates a card (classes equal
``spec.EMOTIONS``, shares in [0, 1], the SHA-256 of the model file it describes) and :meth:`ModelCard.save`
writes it. Cards are frozen: a release builds a new one with :meth:`pydantic.BaseModel.model_copy`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from moodlens.spec import CROP_SIZE, EMOTIONS, FACE_MARGIN, IMAGE_SIZE, NUM_CLASSES
from moodlens.train.config import TrainConfig

#: A share: accuracy, F1, precision, recall, calibration error, agreement.
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Count = Annotated[int, Field(ge=0)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]

FLIP_TTA = "horizontal flip average"
CAVEATS = ("Fear and disgust are the least reliable classes (see per-class F1). Apparent facial expression on "
           "48x48 grayscale crops, not inner emotion.")


class CardError(ValueError):
    """A model card that cannot be read or does not describe its model; the message names the file."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (the identity of a model file)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class InputSpec(_Frozen):
    """What the graph takes: raw pixels of the centre crop of a 48x48 face (normalisation is inside)."""

    shape: tuple[None, int, int, int] = (None, 1, CROP_SIZE, CROP_SIZE)
    pixels: str = "raw grayscale 0..255, float32"
    crop: str = f"centre {CROP_SIZE}x{CROP_SIZE} of a {IMAGE_SIZE}x{IMAGE_SIZE} face"
    face_margin: Share = FACE_MARGIN

    @field_validator("shape")
    @classmethod
    def _runtime_shape(cls, shape: tuple[None, int, int, int]) -> tuple[None, int, int, int]:
        if shape[1:] != (1, CROP_SIZE, CROP_SIZE):
            raise ValueError(f"input shape must be (N, 1, {CROP_SIZE}, {CROP_SIZE}), got {shape}")
        return shape


class ClassMetrics(_Frozen):
    precision: Share
    recall: Share
    f1: Share
    support: Count


class TemperatureFit(_Frozen):
    """What temperature scaling fitted on the same split would give (optimistic; never applied)."""

    temperature: float = Field(gt=0)
    ece: Share
    nll: float = Field(ge=0)


class SplitMetrics(_Frozen):
    """Scores on one labelled split, measured with the runtime classifier on exactly the shipped file."""

    n: int = Field(gt=0)
    accuracy: Share
    macro_f1: Share
    weighted_f1: Share
    ece: Share
    nll: float = Field(ge=0)
    temperature_fit: TemperatureFit | None = None
    per_class: dict[str, ClassMetrics]

    @model_validator(mode="after")
    def _every_class_once(self) -> SplitMetrics:
        if tuple(self.per_class) != EMOTIONS:
            raise ValueError(f"per_class must list {', '.join(EMOTIONS)} in that order, "
                             f"got {', '.join(self.per_class)}")
        if sum(c.support for c in self.per_class.values()) != self.n:
            raise ValueError(f"per-class support adds up to {sum(c.support for c in self.per_class.values())}, "
                             f"not n = {self.n}")
        return self


class IndependentEvaluation(_Frozen):
    """A measurement made by someone other than the model's authors, on data the authors never had.

    Recorded as reported; nothing was chosen or tuned on it. ``model_sha256`` ties it to the file measured,
    so it cannot outlive that file.
    """

    data: str
    classes: tuple[str, ...] = EMOTIONS
    n: int | None = Field(default=None, gt=0)
    accuracy: Share
    macro_f1: Share | None = None
    measured_by: str
    date: dt.date
    method: str
    model_sha256: Sha256

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, classes: tuple[str, ...]) -> tuple[str, ...]:
        if not classes or tuple(c for c in EMOTIONS if c in classes) != classes:
            raise ValueError(f"classes must be a subset of {', '.join(EMOTIONS)}, in that order")
        return classes


class Int8Check(_Frozen):
    """int8 graph against the float graph it was quantised from, on the parity faces."""

    top1_agreement: Share
    max_abs_diff: float = Field(ge=0)
    n: int = Field(gt=0)
    calibration_n: int = Field(gt=0)
    min_agreement: Share

    @model_validator(mode="after")
    def _passed(self) -> Int8Check:
        if self.top1_agreement < self.min_agreement:
            raise ValueError(f"int8 top-1 agreement {self.top1_agreement} is below its floor {self.min_agreement}")
        return self


class ExportCheck(_Frozen):
    """ONNX Runtime against PyTorch on the same faces when the graph was exported."""

    parity_max_abs_diff: float = Field(ge=0)
    parity_n: int = Field(gt=0)
    tolerance: float = Field(gt=0)
    int8: Int8Check | None = None

    @model_validator(mode="after")
    def _passed(self) -> ExportCheck:
        if self.parity_max_abs_diff > self.tolerance:
            raise ValueError(f"parity {self.parity_max_abs_diff} exceeds its tolerance {self.tolerance}")
        return self


class NetProvenance(_Frozen):
    """One trained network inside the graph: its recipe and what it cost, earlier cycles and teachers included.

    ``checkpoint``, ``machine``, ``teachers`` and ``start`` may name paths and hosts of the training setup;
    :meth:`ModelCard.public` leaves them out.
    """

    checkpoint: str
    config: TrainConfig
    params: int = Field(gt=0)
    train_minutes: float = Field(ge=0, description="this checkpoint's own training steps")
    epochs_total: int = Field(gt=0, description="epochs of this run and every earlier cycle it continued")
    train_minutes_total: float = Field(ge=0, description="training steps of this run, its cycles and teachers")
    device: str
    machine: str | None = None
    torch_threads: int | None = None
    machines: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    teachers: tuple[str, ...] = ()
    start: str | None = None


class Provenance(_Frozen):
    """How the shipped networks were trained: one entry per network, and the commands that made them."""

    nets: tuple[NetProvenance, ...] = Field(min_length=1)
    commands: tuple[str, ...] = ()
    data: str = "FER2013 Training split"
    selection: str = "PublicTest; PrivateTest never used"

    @property
    def minutes(self) -> float:
        """Training steps of every network, earlier cycle and teacher, each counted once per network."""
        return round(sum(n.train_minutes_total for n in self.nets), 1)

    @property
    def machines(self) -> str:
        """Where the networks, their earlier cycles and their teachers were trained, in words."""
        return "; ".join(sorted({m for n in self.nets for m in n.machines}))


class Speed(_Frozen):
    """Faces per second through ONNX Runtime, preprocessing included (``moodlens.train.speed.faces_per_second``)."""

    onnxruntime_faces_per_s_batch1: int = Field(gt=0)
    onnxruntime_faces_per_s_batch64: int = Field(gt=0)
    machine: str


class HistoryEntry(_Frozen):
    """An earlier model shipped under the same name, as its card measured it."""

    date: dt.date
    name: str
    accuracy: Share
    macro_f1: Share
    params: int | None = None
    epochs: int | str
    train_minutes: float = Field(ge=0)
    device: str
    precision: Literal["int8", "float32"] = "float32"
    faces_per_s_batch64: int | None = None


class ModelCard(_Frozen):
    """The typed, validated description of one ONNX model (see the module docstring)."""

    name: str = Field(min_length=1)
    version: str | None = Field(default=None, description="release date of a shipped model")
    target: str | None = Field(default=None, description="the shipped name it was released as")
    sha256: Sha256 = Field(description="SHA-256 of the ONNX file this card describes")
    classes: tuple[str, ...] = EMOTIONS
    input: InputSpec = InputSpec()
    output: str = f"softmax probabilities (N, {NUM_CLASSES})"
    tta: Literal["horizontal flip average", "none"] = FLIP_TTA
    flip_free_graph: str | None = Field(default=None, description="file name, beside the model, of the same "
                                        "network without flip averaging (run by the video path's alternating flip)")
    precision: Literal["int8", "float32"]
    params: int = Field(gt=0)
    parity: ExportCheck
    training: Provenance
    metrics: dict[str, SplitMetrics] = {}
    independent_evaluations: tuple[IndependentEvaluation, ...] = ()
    speed: Speed | None = None
    history: tuple[HistoryEntry, ...] = ()
    caveats: str = CAVEATS
    notes: str = ""

    @field_validator("classes")
    @classmethod
    def _classes_are_spec(cls, classes: tuple[str, ...]) -> tuple[str, ...]:
        if classes != EMOTIONS:
            raise ValueError(f"classes {list(classes)} differ from {list(EMOTIONS)}")
        return classes

    @field_validator("metrics")
    @classmethod
    def _split_names_lowercase(cls, metrics: dict[str, SplitMetrics]) -> dict[str, SplitMetrics]:
        if any(name != name.lower() for name in metrics):
            raise ValueError(f"metrics are keyed by lower-case split names (publictest), got {', '.join(metrics)}")
        return metrics

    @model_validator(mode="after")
    def _consistent(self) -> ModelCard:
        if self.params != sum(n.params for n in self.training.nets):
            raise ValueError(f"params {self.params} is not the sum of its networks' parameters")
        if (self.precision == "int8") != (self.parity.int8 is not None):
            raise ValueError(f"precision {self.precision} does not match the export check")
        stale = [e.data for e in self.independent_evaluations if e.model_sha256 != self.sha256]
        if stale:
            raise ValueError(f"independent evaluations of another model file: {', '.join(stale)}")
        return self

    # --- reading --------------------------------------------------------------------------------------------
    @property
    def ensemble_size(self) -> int:
        return len(self.training.nets)

    def split(self, name: str = "PublicTest") -> SplitMetrics | None:
        """Metrics on a split (case-insensitive), if measured."""
        return self.metrics.get(name.lower())

    def public(self) -> dict[str, Any]:
        """The card as JSON-ready data without file-system paths, host names or training commands
        (what the web API shows)."""
        private_net: dict[str, Any] = dict.fromkeys(("checkpoint", "machine", "teachers", "start"), True)
        exclude = {"flip_free_graph": True, "training": {"commands": True,
                                "nets": {"__all__": private_net | {"config": {"init_from", "teachers"}}}}}
        data = self.model_dump(mode="json", exclude=exclude)
        for net, source in zip(data["training"]["nets"], self.training.nets, strict=True):
            net["distilled"] = bool(source.config.teachers)
            net["continued_from_earlier_weights"] = source.config.init_from is not None
        return data

    @classmethod
    def load(cls, path: str | Path) -> ModelCard:
        """Read and validate a card; if its model file (``.onnx`` beside it) exists, check it is that file.

        Raises :class:`CardError` naming the file for anything unreadable, invalid or mismatched.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CardError(f"{path}: cannot read the model card ({exc.strerror or exc})") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CardError(f"{path}: the model card is not valid JSON ({exc})") from None
        try:
            card = cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'card'}: {e['msg']}" for e in exc.errors()[:5])
            raise CardError(f"{path}: invalid model card: {problems}") from None
        model = path.with_suffix(".onnx")
        if model.is_file() and (digest := file_sha256(model)) != card.sha256:
            raise CardError(f"{path}: the card describes another model file (its sha256 {card.sha256[:16]}..., "
                            f"{model.name} has {digest[:16]}...)")
        return card

    @classmethod
    def of_model(cls, model_path: str | Path) -> ModelCard | None:
        """The card beside an ONNX model, or ``None`` when it has none."""
        path = card_path(model_path)
        return cls.load(path) if path.is_file() else None

    # --- writing --------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the card as JSON (atomically: a crash never leaves half a card)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.model_dump_json(indent=2, exclude_defaults=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path


def card_path(model_path: str | Path) -> Path:
    """Where the card of an ONNX model lives: beside it, ``NAME.json``."""
    return Path(model_path).with_suffix(".json")

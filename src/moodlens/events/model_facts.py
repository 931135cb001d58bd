"""What an event source was analysed with: model name, version, ONNX content hash and measured metrics.

Recorded per source at ingest (``EventStore.record_model(source_id, model_facts(analyzer))``), so a
report on an old event states the facts of the model that produced its numbers, not those of whatever
model ships today. The caveats of a report are derived from these metrics: a class is flagged when its
F1 or recall on FER2013 PublicTest is below :data:`RELIABLE_SCORE`, and a class measured on fewer than
:data:`MIN_TEST_SUPPORT` test faces is named as uncertain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moodlens.spec import EMOTIONS

if TYPE_CHECKING:  # the card module loads pydantic: only when a card is read (keeps `moodlens --help` light)
    from moodlens.card import ModelCard

#: A class whose PublicTest F1 or recall is below this is flagged as unreliable on every report.
RELIABLE_SCORE = 0.60
#: A class measured on fewer PublicTest faces than this is named as uncertain (its scores move a lot).
MIN_TEST_SUPPORT = 100
#: The split whose metrics are snapshotted (the model cards' ``metrics.publictest``).
METRICS_SPLIT = "publictest"
_PER_CLASS_KEYS = ("precision", "recall", "f1", "support")


def read_card(card: ModelCard | None) -> tuple[str | None, str | None, dict[str, Any] | None]:
    """(name, version, PublicTest metrics snapshot) of a model card: the one place moodlens.events reads a card.

    The snapshot holds numbers only: accuracy, macro F1, test faces and per-class precision/recall/F1/support.
    """
    if card is None:
        return None, None, None
    test = card.split(METRICS_SPLIT)
    if test is None:
        return card.name, card.version, None
    per_class = {cls: m.model_dump(include=set(_PER_CLASS_KEYS)) for cls, m in test.per_class.items()}
    return card.name, card.version, {"split": METRICS_SPLIT, "n": test.n, "accuracy": test.accuracy,
                                      "macro_f1": test.macro_f1, "per_class": per_class}


@dataclass(frozen=True)
class ModelFacts:
    """A model's identity and measured metrics, as stored with each source."""

    name: str
    version: str | None = None
    sha256: str | None = None
    metrics: dict[str, Any] | None = field(default=None, compare=False)
    #: False when the facts were not recorded at ingest but taken from a card at report time.
    recorded: bool = True

    @classmethod
    def from_card(cls, card: ModelCard | None, path: str | Path | None = None, recorded: bool = True) -> ModelFacts:
        """Facts of the model whose card is ``card`` (``None``: it has none) and whose ONNX file is ``path``."""
        from moodlens.card import file_sha256

        name, version, metrics = read_card(card)
        sha = card.sha256 if card is not None else (
            file_sha256(path) if path is not None and Path(path).is_file() else None)
        return cls(str(name or (Path(path).name if path else "")), str(version) if version is not None else None,
                   sha, metrics, recorded)

    def to_columns(self) -> dict[str, Any]:
        """The ``sources`` columns these facts are stored in."""
        return {"model": self.name[:200], "model_version": self.version, "model_sha256": self.sha256,
                "model_metrics": json.dumps(self.metrics) if self.metrics else None}

    @classmethod
    def from_columns(cls, name: str | None, version: str | None, sha256: str | None,
                     metrics: str | None) -> ModelFacts | None:
        """Facts stored with a source, or ``None`` when the source predates recording them."""
        if not sha256 and not metrics:
            return None
        try:
            parsed = json.loads(metrics) if metrics else None
        except ValueError:
            parsed = None
        return cls(name or "", version, sha256, parsed if isinstance(parsed, dict) else None)

    @property
    def key(self) -> str:
        """Identity used to group sources by model: the content hash, else the name."""
        return self.sha256 or f"name:{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256, "recorded": self.recorded,
                "metrics": self.metrics}


def model_facts(analyzer: Any) -> ModelFacts:
    """Facts of the model an ``Analyzer`` (or anything with ``.classifier``) classifies with."""
    classifier = getattr(analyzer, "classifier", None)
    return ModelFacts.from_card(getattr(classifier, "card", None), getattr(classifier, "model_path", None))


def fallback_facts(model: str | Path | None) -> ModelFacts:
    """Facts from the card of ``model`` at report time, for sources stored before facts were recorded."""
    from moodlens.card import ModelCard
    from moodlens.recognition.classifier import resolve_model

    if model is None:
        return ModelFacts("", recorded=False)
    try:
        path = resolve_model(model)
        return ModelFacts.from_card(ModelCard.of_model(path), path, recorded=False)
    except (FileNotFoundError, ValueError):
        return ModelFacts(str(model or ""), recorded=False)


def assess(facts: ModelFacts) -> dict[str, Any]:
    """Per-class scores and the classes flagged by them, with the reason for each flag."""
    metrics = facts.metrics or {}
    per_class = metrics.get("per_class") or {}
    flagged: dict[str, str] = {}
    uncertain: dict[str, int] = {}
    for name in [e for e in EMOTIONS if e in per_class] + [c for c in per_class if c not in EMOTIONS]:
        scores = per_class[name]
        low = [f"{label} {scores[k]:.2f}" for k, label in (("f1", "F1"), ("recall", "recall"))
               if k in scores and scores[k] < RELIABLE_SCORE]
        if low:
            flagged[name] = " and ".join(low)
        support = scores.get("support")
        if support is not None and support < MIN_TEST_SUPPORT:
            uncertain[name] = int(support)
    return {"name": facts.name, "version": facts.version, "sha256": facts.sha256, "recorded": facts.recorded,
            "accuracy": metrics.get("accuracy"), "macro_f1": metrics.get("macro_f1"), "test_faces": metrics.get("n"),
            "per_class": per_class or None, "flagged": flagged, "uncertain": uncertain}


def caveats(models: list[dict[str, Any]]) -> list[str]:
    """The report's model caveats, from the assessments (:func:`assess`) of the models its sources used."""
    out = ["The model sees apparent facial expressions, not inner emotions: a smile is not proof of enjoyment."]
    many = len(models) > 1
    for m in models:
        who = f"{m['name'] or 'unnamed model'}" + (f" ({', '.join(m['sources'])})" if many else "")
        if m["accuracy"] is None:
            out.append(f"{who}: no measured accuracy was recorded, so treat its numbers as uncalibrated.")
            continue
        text = f"{who}: accuracy {100 * m['accuracy']:.1f}% on FER2013 PublicTest"
        if m["macro_f1"] is not None:
            text += f" (macro F1 {m['macro_f1']:.2f})"
        out.append(text + "; faces at an event (angles, light, masks) are usually harder than the test set.")
        if m["flagged"]:
            detail = "; ".join(f"{c} ({why})" for c, why in m["flagged"].items())
            out.append(f"{who}: unreliable classes, with F1 or recall below {RELIABLE_SCORE:.2f}: {detail}. "
                       "Do not read their shares on their own.")
        if m["uncertain"]:
            detail = ", ".join(f"{c} ({n} faces)" for c, n in m["uncertain"].items())
            out.append(f"{who}: measured on fewer than {MIN_TEST_SUPPORT} test faces, so its scores are "
                       f"uncertain: {detail}.")
    out.append("FER2013 and similar data under-represent some ages, skin tones and cultures; "
               "accuracy may differ between groups of people.")
    return out

"""``PhotoOutputs``: where ``moodlens analyze`` puts each photo's result, or the reason it was skipped: a line
on the terminal, the JSON results (:class:`~moodlens.recognition.schema.ImageResults`), the CSV rows and an
annotated copy. Imported when the command runs, so the CLI starts without OpenCV and pydantic."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import typer

from moodlens.csvfile import FACE_FIELDS, CsvWriter
from moodlens.events.model_facts import model_facts
from moodlens.recognition.analyzer import Analyzer
from moodlens.recognition.annotate import annotate
from moodlens.recognition.faces import Faces
from moodlens.recognition.schema import FileError, ImageResult, ImageResults, ModelRef
from moodlens.textsafe import terminal_text
from moodlens.wording import plural


class PhotoOutputs:
    """The results of one ``analyze`` run as they come. ``out``: folder for annotated copies (drawn with score
    bars when ``scores``, faces blurred when ``blur``); ``csv_path``: one row per face."""

    def __init__(self, analyzer: Analyzer, out: Path | None = None, csv_path: Path | None = None,
                 scores: bool = False, blur: bool = False) -> None:
        self.results = ImageResults(model=ModelRef.from_facts(model_facts(analyzer)), images=[])
        self.rows = CsvWriter(csv_path, ["file", *FACE_FIELDS]) if csv_path else None
        self.out, self.scores, self.blur = out, scores, blur
        if out:
            out.mkdir(parents=True, exist_ok=True)

    def skipped(self, index: int, path: Path, kind: str, reason: str) -> None:
        """Input number ``index`` was not analysed: ``kind`` and ``reason`` say why."""
        self.results.errors.append(FileError(index=index, filename=str(path), kind=kind, reason=reason))
        typer.secho(f"skipped {terminal_text(str(path))}: {reason}", fg="yellow", err=True)

    def analysed(self, index: int, path: Path, size: tuple[int, int] | None, faces: Faces,
                 image: np.ndarray | None) -> None:
        """Input number ``index`` (``size``: height, width) holds ``faces``; ``image`` is needed for ``out``."""
        self.results.images.append(ImageResult.from_faces(index, str(path), size, faces))
        if self.rows:
            self.rows.write_rows(faces.to_records(file=str(path)))
        summary = ", ".join(f"{f.emotion} {f.confidence:.0%}" for f in faces) or "no face"
        typer.echo(f"{terminal_text(str(path))}: {plural(len(faces), 'face')}: {summary}")
        if self.out:
            target = self.out / (path.stem + ".annotated.jpg")
            cv2.imwrite(str(target), annotate(image, faces, scores=self.scores, blur=self.blur))

    def close(self, json_path: Path | None = None) -> ImageResults:
        """Close the CSV file, write the JSON results (errors in input order) when asked, and return them."""
        if self.rows:
            self.rows.close()
        self.results.errors.sort(key=lambda e: e.index)
        if json_path:
            json_path.write_text(self.results.to_json(indent=2))
        return self.results

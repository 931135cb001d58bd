"""CSV files of face rows, written as they come (a camera may run for hours); every cell passes through
:func:`moodlens.textsafe.csv_row`."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from moodlens.spec import EMOTIONS
from moodlens.textsafe import csv_rows

#: Columns of :meth:`moodlens.recognition.faces.Faces.to_records` rows.
FACE_FIELDS = ["face", "track_id", "x", "y", "w", "h", "detector_score", "emotion", "confidence", *EMOTIONS]


class CsvWriter:
    """Rows with the columns ``fields`` (others ignored), flushed by :meth:`close`."""

    def __init__(self, path: str | Path, fields: list[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = self.path.open("w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._fh, fieldnames=fields, extrasaction="ignore")
        self._writer.writeheader()

    def write_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self._writer.writerows(csv_rows(rows))

    def close(self) -> None:
        self._fh.close()

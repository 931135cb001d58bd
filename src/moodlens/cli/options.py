"""Options shared by several commands, so they read the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

ModelOpt = Annotated[str, typer.Option(help="Model: a shipped one by name (default, accurate) "
                                            "or a path to an .onnx file.")]

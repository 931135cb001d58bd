"""``moodlens serve``: the web app and JSON API (a thin shell over ``moodlens.web.serve``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from moodlens.cli.options import ConfOpt, DetectorOpt, MaxSideOpt, MinFaceOpt, ModelOpt, analysis_settings
from moodlens.recognition.imageio import MAX_PIXELS
from moodlens.settings import DEFAULTS


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 exposes it to the network).")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    model: ModelOpt = DEFAULTS.model,
    detector: DetectorOpt = DEFAULTS.detector,
    min_confidence: ConfOpt = DEFAULTS.min_confidence,
    min_face: MinFaceOpt = DEFAULTS.min_face,
    max_side: MaxSideOpt = DEFAULTS.max_side,
    max_upload_mb: Annotated[float, typer.Option(help="Largest request body (all files together), in MB.")] = 20.0,
    max_pixels: Annotated[int, typer.Option(help="Largest image in pixels (guards against decompression "
                                                 "bombs).")] = MAX_PIXELS,
    max_files: Annotated[int, typer.Option(help="Most files in one request.")] = 50,
    workers: Annotated[int | None, typer.Option(help="Analyses run at once (default: CPU cores, at most 4).",
                                                show_default=False)] = None,
    max_queue: Annotated[int, typer.Option(help="Requests that may wait for a worker before the server "
                                                "answers 503.")] = 16,
    save_dir: Annotated[Path | None, typer.Option(help="Opt in to keeping uploaded photos and their results in "
                                                       "this folder. Off by default: nothing is written to disk.",
                                                  show_default=False)] = None,
) -> None:
    """Serve the photo upload page, the live camera page and the JSON API (OpenAPI docs at /docs)."""
    from moodlens.web import serve as run_server

    run_server(host=host, port=port, settings=analysis_settings(model, detector, min_confidence, min_face, max_side),
               max_upload_mb=max_upload_mb, max_pixels=max_pixels, max_files=max_files,
               workers=workers, max_queue=max_queue, save_dir=save_dir)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("serve")(serve)

"""``moodlens serve``: the web app and JSON API (a thin shell over ``moodlens.web.serve``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from moodlens.cli.errors import user_errors
from moodlens.cli.options import ConfOpt, DetectorOpt, MaxSideOpt, MinFaceOpt, ModelOpt, analysis_settings
from moodlens.recognition.imageio import MAX_PIXELS
from moodlens.settings import DEFAULTS


def OptionalPath(help: str) -> Any:  # noqa: N802, A002 - reads as a type in the signature below
    """A path option without a default shown."""
    return Annotated[Path | None, typer.Option(help=help, show_default=False)]


@user_errors(ValueError)
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
    save_dir: OptionalPath("Opt in to keeping uploaded photos and their results in this folder. Off by default: "
                           "nothing is written to disk.") = None,
    token_file: OptionalPath("File holding the operator's token (else $MOODLENS_TOKEN, else one is generated "
                             "and printed).") = None,
    viewer_token_file: OptionalPath("File holding the viewers' token (else $MOODLENS_VIEWER_TOKEN, else "
                                    "generated).") = None,
    secret_file: OptionalPath("Key that signs session cookies, created if missing; sessions then survive "
                              "restarts.") = None,
    session_hours: Annotated[float, typer.Option(min=0.01, help="How long a browser stays signed in.")] = 12.0,
    public_analyze: Annotated[bool, typer.Option(help="Let anyone who reaches the server use the Photos and "
                                                      "Live camera pages and /api/v1/analyze (a kiosk). Events "
                                                      "stay behind sign-in.")] = False,
    no_auth: Annotated[bool, typer.Option(help="No sign-in at all; allowed only with a loopback --host.")] = False,
    read_timeout: Annotated[float, typer.Option(min=0.1, help="Seconds an upload may send nothing before it is "
                                                              "refused (408).")] = 10.0,
    body_timeout: Annotated[float, typer.Option(min=1.0, help="Seconds a whole upload may take.")] = 120.0,
) -> None:
    """Serve the photo upload page, the live camera page and the JSON API (OpenAPI docs at /docs).

    Sign-in is on unless --no-auth: the operator's and the viewers' login URLs are printed at start."""
    from moodlens.web import serve as run_server
    from moodlens.web.auth import Access, load_secret, read_token_file

    if no_auth:
        access = Access.without_sign_in(public_analyze=public_analyze)
    else:
        access = Access.create(operator_token=read_token_file(token_file) if token_file else None,
                               viewer_token=read_token_file(viewer_token_file) if viewer_token_file else None,
                               secret=load_secret(secret_file), session_hours=session_hours,
                               public_analyze=public_analyze)
    run_server(host=host, port=port, access=access,
               settings=analysis_settings(model, detector, min_confidence, min_face, max_side),
               max_upload_mb=max_upload_mb, max_pixels=max_pixels, max_files=max_files, workers=workers,
               max_queue=max_queue, save_dir=save_dir, read_timeout_s=read_timeout, body_timeout_s=body_timeout)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("serve")(serve)

"""``moodlens demo``: the shipped model on a sample photo, then (optionally) the web app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    out: Annotated[Path, typer.Option(help="Folder for annotated photos and results.json.")] = Path("moodlens-demo"),
    serve: Annotated[bool, typer.Option(help="Then start the web app (upload page, live camera, API).")] = False,
    host: Annotated[str, typer.Option(help="Web app address (with --serve).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Web app port (with --serve).")] = 8000,
) -> None:
    """Analyse public-domain sample photos with the shipped model and show what it found."""
    from moodlens.demo import run_demo
    from moodlens.wording import plural

    results = run_demo(out)
    typer.echo(f"model: {results['model']['name']}")
    for image in results["images"]:
        typer.echo(f"{image['filename']} ({image['width']}x{image['height']}): {plural(len(image['faces']), 'face')}")
        for face in image["faces"]:
            typer.echo(f"  box {face['box']}  {face['emotion']} {face['confidence']:.0%}")
    typer.echo(f"annotated photos and results.json written to {out}/")
    if serve:
        from moodlens.web.app import serve as run_server

        typer.echo(f"web app on http://{host}:{port}/  (API docs at /docs; Ctrl-C stops)")
        run_server(host=host, port=port)


def register(app: typer.Typer) -> None:
    app.command()(demo)

"""The ``moodlens`` command: a thin shell over the library (each option is a keyword
of the Python call it makes, with the same name and default)."""

from __future__ import annotations

import typer

from moodlens.cli import demo_cmds, event_cmds, model_cmds, recognize_cmds, web_cmds

app = typer.Typer(help="Facial-expression recognition and private, aggregate event feedback.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
for module in (demo_cmds, model_cmds, recognize_cmds, web_cmds, event_cmds):
    module.register(app)

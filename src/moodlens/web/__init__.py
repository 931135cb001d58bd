"""The web app and JSON API (``moodlens serve``): photo upload, live camera, OpenAPI docs."""

from moodlens.web.app import create_app, serve

__all__ = ["create_app", "serve"]

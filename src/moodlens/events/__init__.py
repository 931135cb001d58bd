"""Event feedback: store observations of events, ingest streams and photos, aggregate private reports."""

from moodlens.events.store import EventExists, EventNotFound, EventStore

__all__ = ["EventExists", "EventNotFound", "EventStore"]

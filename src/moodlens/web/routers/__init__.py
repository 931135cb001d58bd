"""One router per resource: analyze, live, model, health, pages (and events, owned by the events area)."""

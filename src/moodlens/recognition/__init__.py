"""The recognition pipeline for one image or frame: load -> detect -> crop -> classify -> ``Faces``,
then draw (``annotate``) and follow faces across frames (``track``)."""

from moodlens.recognition.faces import Face, Faces

__all__ = ["Face", "Faces"]

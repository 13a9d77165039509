"""Activations of an encoder's layers: models (``load_model``), the capture hooks,
``CaptureOptions``, rows (tokens, words, sentences, pairs, answers) aligned to inputs, the
batched stream, and the checksummed resumable activation ``store``."""

from . import store
from .models import load_model
from .options import CaptureOptions

__all__ = ["CaptureOptions", "load_model", "store"]

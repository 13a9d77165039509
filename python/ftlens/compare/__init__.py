"""Layer-by-layer comparisons: ``compare_models`` streams two models' activations over the
same inputs (no storage); ``compare_stores`` reads two activation stores; ``across_seeds``
and ``between_procedures`` combine the comparisons of several seeds (Multi-Bootstrap)."""

from .models import LayerComparison, compare_models
from .options import CompareOptions
from .seeds import across_seeds, between_procedures
from .stores import StoreComparison, compare_stores

__all__ = ["CompareOptions", "LayerComparison", "StoreComparison", "across_seeds", "between_procedures",
           "compare_models", "compare_stores"]

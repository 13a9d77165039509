"""Layer-by-layer comparisons: ``compare_models`` streams two models' activations over the
same inputs (no storage); ``compare_stores`` reads two activation stores."""

from .models import LayerComparison, compare_models
from .options import CompareOptions
from .stores import StoreComparison, compare_stores

__all__ = ["CompareOptions", "LayerComparison", "StoreComparison", "compare_models", "compare_stores"]

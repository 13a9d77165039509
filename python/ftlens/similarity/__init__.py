"""Similarity between two representations X [n, p] and Y [n, q] (rows = samples): the
measure registry (data only), the streaming moments (``Moments``, ``LayerMoments``,
``GroupedMoments`` with its intervals), the pair tiles (``tiles``), ``functional`` (the
one place that routes a measure to the moments or the tiles), the permutation test and
the Multi-Bootstrap over seeds and units (``bootstrap``, ``gram_draws``)."""

from .functional import cca, cka, isotropy, measure, procrustes, rsa
from .moments import LayerMoments, Moments
from .permutation import permutation_test
from .tiles import minibatch_cka

__all__ = ["LayerMoments", "Moments", "cca", "cka", "isotropy", "measure", "minibatch_cka",
           "permutation_test", "procrustes", "rsa"]

"""Measures that need sample-by-sample kernels (RBF CKA, Spearman and Kendall RSA, RDMs of
plain Euclidean distance), computed over tiles of the n x n pair space with O(n + T^2)
memory by the C++ tile engine. ``ftlens.cka`` and ``ftlens.rsa`` route here when the
moments cannot give the answer."""

from .cka import kernel_cka
from .minibatch import minibatch_cka
from .permutation import permutation_test
from .rsa import pairwise_rsa
from .stores import StoreComparison, compare_stores

__all__ = [
    "StoreComparison",
    "compare_stores",
    "kernel_cka",
    "minibatch_cka",
    "pairwise_rsa",
    "permutation_test",
]

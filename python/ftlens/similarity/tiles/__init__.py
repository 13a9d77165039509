"""Measures that need sample-by-sample kernels (RBF CKA, Spearman and Kendall RSA, RDMs of
plain Euclidean distance), computed over tiles of the n x n pair space with O(n + T^2)
memory by the C++ tile engine. ``ftlens.cka`` and ``ftlens.rsa`` route here (through
``similarity.functional``) when the moments cannot give the answer."""

from .cka import kernel_cka
from .minibatch import minibatch_cka
from .rsa import pairwise_rsa

__all__ = ["kernel_cka", "minibatch_cka", "pairwise_rsa"]

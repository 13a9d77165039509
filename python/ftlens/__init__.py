"""ftlens: what fine-tuning does to a transformer encoder, layer by layer.

Similarity between representations (rows = samples), streamed through a C++ core::

    import ftlens
    ftlens.cka(X, Y)                      # linear CKA
    ftlens.rsa(X, Y, rdm="correlation")   # RSA without n x n matrices
    ftlens.cka(X, Y, kernel="rbf")        # kernel CKA over tiles of the pair space
    ftlens.rsa(X, Y, rdm="euclidean", compare="spearman")
    m = ftlens.Moments(p, q); m.update(xb, yb); m.cka()
    lm = ftlens.LayerMoments(13, 768, 768, pairs="all"); lm.update(xs, ys); lm.cka()

Models compared layer by layer, streaming their activations (no storage)::

    result = ftlens.compare_models("minilm", "path/to/finetuned", sentences)
    result.cka, result.rsa                # arrays [layers]

Probes of every layer x task over activation stores (``ftlens.store.write``)::

    result = ftlens.probe("ewt_train_store", "ewt_dev_store", tasks=("upos", "edge:deprel"))
    print(result.table())
"""

from . import data, finetuning, probes
from ._core import build_info
from ._version import __version__ as __version__
from .activations import CaptureOptions, load_model, store
from .compare import CompareOptions, LayerComparison, StoreComparison, compare_models, compare_stores
from .finetuning import AblationResult, FinetuneOptions, FinetuneResult, ablate, finetune
from .probes import ProbeOptions, ProbeResult, probe
from .similarity import (
    LayerMoments,
    Moments,
    cca,
    cka,
    isotropy,
    minibatch_cka,
    permutation_test,
    procrustes,
    registry,
    rsa,
)

__all__ = [
    "AblationResult",
    "CaptureOptions",
    "CompareOptions",
    "FinetuneOptions",
    "FinetuneResult",
    "LayerComparison",
    "LayerMoments",
    "ProbeOptions",
    "ProbeResult",
    "StoreComparison",
    "Moments",
    "ablate",
    "build_info",
    "cca",
    "cka",
    "compare_models",
    "compare_stores",
    "data",
    "finetune",
    "finetuning",
    "isotropy",
    "load_model",
    "minibatch_cka",
    "permutation_test",
    "probe",
    "probes",
    "procrustes",
    "registry",
    "rsa",
    "store",
]

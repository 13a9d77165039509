"""The built-in demo: MiniLM's layers compared with each other on generated sentences.

Runs a few hundred sentences through the packaged all-MiniLM-L6-v2, streams every
token's activations of every layer (captured with hooks) into one
``LayerMoments(pairs="all")``, prints CKA and RSA between each layer and the last one,
and writes a layer x layer CKA heatmap (PNG) and the numbers (JSON).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._io import atomic_write, check_writable, write_json
from .capture import layer_names
from .data import generate_sentences
from .models import MINILM, load_model
from .moments import LayerMoments
from .stream import ActivationStream


def _heatmap(matrix: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    im = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis", origin="lower")
    ticks = range(matrix.shape[0])
    labels = ["emb"] + [str(i) for i in range(1, matrix.shape[0])]
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("layer")
    ax.set_ylabel("layer")
    ax.set_title(title)
    for i in ticks:
        for j in ticks:
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] < 0.6 else "black")
    fig.colorbar(im, ax=ax, label="linear CKA")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


def run_demo(out_dir: str | Path = "demo_out", n_sentences: int = 300, progress: bool = True):
    """Runs the demo; returns the results dict (also written to out_dir/results.json)."""
    out_dir = check_writable(out_dir)
    model, tokenizer = load_model(MINILM, device="cpu")
    sentences = generate_sentences(n_sentences)
    stream = ActivationStream([(model, tokenizer)], ordered=False, progress=progress)
    n_layers, dim = stream.layers[0], stream.dims[0]
    moments = LayerMoments(n_layers, dim, dim, pairs="all", rdms=("correlation",))
    for chunk in stream(sentences):
        moments.update(chunk.states[0], chunk.states[0])
    cka, rsa = moments.cka(), moments.rsa("correlation")
    debiased = moments.cka(debiased=True)
    results = {
        "model": "minilm (sentence-transformers/all-MiniLM-L6-v2)",
        "sentences": n_sentences,
        "tokens": moments.n,
        "layers": layer_names(n_layers),
        "cka": cka.tolist(),
        "cka_debiased": debiased.tolist(),
        "rsa_correlation": rsa.tolist(),
    }
    write_json(out_dir / "results.json", results)
    _heatmap(cka, out_dir / "cka_heatmap.png", f"MiniLM layer x layer CKA ({moments.n} tokens)")

    print(f"\nMiniLM on {n_sentences} generated sentences ({moments.n} tokens): "
          "each layer vs the last layer")
    print(f"{'layer':<12}{'CKA':>8}{'CKA (debiased)':>17}{'RSA (correlation)':>20}")
    for i, name in enumerate(results["layers"]):
        print(f"{name:<12}{cka[i, -1]:>8.3f}{debiased[i, -1]:>17.3f}{rsa[i, -1]:>20.3f}")
    print(f"\nwrote {out_dir / 'cka_heatmap.png'} and {out_dir / 'results.json'}")
    return results

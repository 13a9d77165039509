"""Structural probes (Hewitt & Manning 2019), every layer trained together.

The distance probe learns B [d, k] per layer so that |B(h_i - h_j)|² fits the tree
distance of words i and j (loss |d_tree - d_pred| summed over the sentence's pairs, over
its squared length); the depth probe fits |B h_i|² to the depth of word i (over the
length). Evaluation: UUAS (the minimum spanning tree of the predicted distances against
the gold undirected edges, punctuation excluded), DSpr (Spearman of each word's
distances, averaged per sentence, then per sentence length 5-50, then over lengths), root
accuracy (the shallowest predicted non-punctuation word is the root; every sentence
counts) and NSpr (Spearman of the depths, averaged the same way). The gold edges of UUAS
and the sentences of root accuracy follow Hewitt & Manning's reporter (``gold_edges``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from .features import word_row_lookup
from .ridge import folds_of

PUNCT_UPOS = "PUNCT"
PUNCT_XPOS = {",", ".", ":", "``", "''", "-LRB-", "-RRB-", "HYPH", "NFP", "(", ")", "#", "$"}
LENGTHS = (5, 50)


@dataclass
class Sentences:
    """Whole sentences of a store: store rows [S] arrays, heads (1-based, 0 = root) and a
    punctuation mask per sentence."""

    rows: list[np.ndarray]
    heads: list[np.ndarray]
    punct: list[np.ndarray]

    @classmethod
    def of(cls, store) -> Sentences:
        index = store.rows
        heads, _ = store.labels("head")
        punct = _punctuation(store)
        lookup = word_row_lookup(store)
        lengths = np.bincount(index[:, 0])
        out = cls([], [], [])
        for item in np.flatnonzero(lengths):
            rows = lookup(np.full(lengths[item], item), np.arange(lengths[item]))
            if (rows < 0).any():
                continue
            h = heads[rows]
            if (h < 0).any() or (h > len(rows)).any() or (h == 0).sum() != 1:
                continue  # a sentence cut by truncation (heads beyond its words) or not a tree
            out.rows.append(rows)
            out.heads.append(h)
            out.punct.append(punct[rows])
        if not out.rows:
            raise ValueError("the store holds no whole sentence with a tree; structural probes need "
                             "rows='words' stores of CoNLL-U data")
        return out


def _punctuation(store) -> np.ndarray:
    names = store.label_names()
    if "upos" in names:
        codes, vocab = store.labels("upos")
        return np.array([v == PUNCT_UPOS for v in vocab] + [False])[codes]
    if "xpos" in names:
        codes, vocab = store.labels("xpos")
        return np.array([v in PUNCT_XPOS for v in vocab] + [False])[codes]
    return np.zeros(store.n_rows, dtype=bool)


def tree_distances(heads: np.ndarray) -> np.ndarray:
    """[n, n] path lengths in the tree given by 1-based heads (0 = root)."""
    n = len(heads)
    adjacency = [[] for _ in range(n)]
    for i, h in enumerate(heads):
        if h > 0:
            adjacency[i].append(h - 1)
            adjacency[h - 1].append(i)
    out = np.zeros((n, n), dtype=np.int64)
    for source in range(n):
        seen, frontier, depth = {source}, [source], 0
        while frontier:
            depth += 1
            nxt = [j for i in frontier for j in adjacency[i] if j not in seen]
            seen.update(nxt)
            out[source, nxt] = depth
            frontier = nxt
    return out


def tree_depths(heads: np.ndarray) -> np.ndarray:
    return tree_distances(heads)[int(np.flatnonzero(heads == 0)[0])]


def minimum_spanning_edges(distances: np.ndarray) -> set[tuple[int, int]]:
    """Prim's algorithm on a dense symmetric matrix: the (i, j) edges with i < j."""
    n = len(distances)
    if n < 2:
        return set()
    in_tree = np.zeros(n, dtype=bool)
    in_tree[0] = True
    best, parent = distances[0].astype(np.float64).copy(), np.zeros(n, dtype=np.int64)
    edges = set()
    for _ in range(n - 1):
        candidate = np.where(in_tree, np.inf, best)
        j = int(np.argmin(candidate))
        edges.add((min(j, int(parent[j])), max(j, int(parent[j]))))
        in_tree[j] = True
        closer = distances[j] < best
        best = np.where(closer, distances[j], best)
        parent = np.where(closer, j, parent)
    return edges


def gold_edges(heads: np.ndarray, keep: np.ndarray) -> set[tuple[int, int]]:
    """The gold undirected edges (i, j), i < j, among the kept (non-punctuation) words, as
    indices among them: as Hewitt & Manning's reporter, the minimum spanning tree of the
    gold tree distances between kept words (Kruskal over the pairs in row-major order,
    stably sorted by distance). Where no punctuation word has dependents these are the
    tree's own edges; around one that has, distance-2 edges bridge it."""
    distances = tree_distances(heads)[np.ix_(keep, keep)]
    n = len(distances)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    edges: set[tuple[int, int]] = set()
    for flat in np.argsort(distances, axis=None, kind="stable"):
        if len(edges) == n - 1:
            break
        i, j = divmod(int(flat), n)
        a, b = root(i), root(j)
        if a != b:
            parent[a] = b
            edges.add((min(i, j), max(i, j)))
    return edges


def _spearman_rows(predicted: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row pair (mid-ranks for ties); NaN for a constant row."""
    from scipy.stats import rankdata  # here, not at import: scipy.stats costs `import ftlens` 0.6 s

    a, b = rankdata(predicted, axis=-1), rankdata(gold, axis=-1)
    a -= a.mean(-1, keepdims=True)
    b -= b.mean(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))


def _by_length(values: dict[int, list[float]]) -> float:
    """Averaged per sentence length in LENGTHS (inclusive), then over the lengths."""
    means = [np.nanmean(v) for n, v in values.items() if LENGTHS[0] <= n <= LENGTHS[1] and len(v)]
    return float(np.mean(means)) if means else float("nan")


class StructuralProbe:
    """B [L, d, k] for one structural task ("distance" or "depth") on every layer."""

    def __init__(self, task: str, layers: int, dim: int, rank: int, seed: int):
        if task not in ("distance", "depth"):
            raise ValueError(f"structural task must be 'distance' or 'depth', got {task!r}")
        generator = torch.Generator().manual_seed(seed)
        self.task = task
        self.b = ((torch.rand(layers, dim, rank, generator=generator) - 0.5) * 0.1).requires_grad_()

    def predict(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [L, S, N, d] -> distances [L, S, N, N] or depths [L, S, N]."""
        p = torch.einsum("lsnd,ldk->lsnk", hidden, self.b)
        if self.task == "depth":
            return p.square().sum(-1)
        norms = p.square().sum(-1)
        return (norms.unsqueeze(-1) + norms.unsqueeze(-2) - 2 * p @ p.transpose(-1, -2)).clamp_min(0)

    def loss(self, hidden, gold, mask, lengths) -> torch.Tensor:
        """Summed over layers, averaged over sentences: [L] per-layer losses returned summed."""
        diff = (self.predict(hidden) - gold).abs()
        if self.task == "distance":
            per_sentence = (diff * (mask.unsqueeze(-1) & mask.unsqueeze(-2))).sum((-1, -2)) / lengths.square()
        else:
            per_sentence = (diff * mask).sum(-1) / lengths
        return per_sentence.mean(-1).sum()


def _batches(sentences: Sentences, task: str, max_words: int) -> list[tuple]:
    """(store rows [S, N] (-1 padding), gold [S, N(, N)], mask [S, N], lengths [S])."""
    order = np.argsort([len(r) for r in sentences.rows], kind="stable")
    out, group = [], []
    for i in order:
        group.append(i)
        if len(group) * len(sentences.rows[i]) >= max_words:
            out.append(_batch(sentences, group, task))
            group = []
    if group:
        out.append(_batch(sentences, group, task))
    return out


def _batch(sentences: Sentences, group: list[int], task: str) -> tuple:
    width = max(len(sentences.rows[i]) for i in group)
    rows = np.full((len(group), width), -1, dtype=np.int64)
    gold = np.zeros((len(group), width, width) if task == "distance" else (len(group), width), np.float32)
    for s, i in enumerate(group):
        n = len(sentences.rows[i])
        rows[s, :n] = sentences.rows[i]
        if task == "distance":
            gold[s, :n, :n] = tree_distances(sentences.heads[i])
        else:
            gold[s, :n] = tree_depths(sentences.heads[i])
    mask = rows >= 0
    lengths = torch.from_numpy(mask.sum(1).astype(np.float32))
    return rows, torch.from_numpy(gold), torch.from_numpy(mask), lengths


def _hidden(store, layers: list[int], rows: np.ndarray) -> torch.Tensor:
    """[L, S, N, d] float32 (zeros at padding)."""
    flat = rows.reshape(-1)
    keep = flat >= 0
    picked = np.sort(flat[keep])
    where = np.searchsorted(picked, flat[keep])
    out = np.zeros((len(layers), len(flat), store.dim), dtype=np.float32)
    store.check_intact(layers)
    for i, layer in enumerate(layers):
        out[i, keep] = store.layer(layer)[picked][where]
    return torch.from_numpy(out.reshape(len(layers), *rows.shape, store.dim))


def train_structural(task: str, train, layers: list[int], *, rank: int = 64, epochs: int = 10,
                     lr: float = 1e-3, max_words: int = 2048, seed: int = 0,
                     progress: bool = True) -> StructuralProbe:
    """Trains the probe of every layer with Adam; keeps the epoch with the lowest loss on
    a tenth of the training sentences held out."""
    sentences = Sentences.of(train)
    held = folds_of(np.arange(len(sentences.rows)), 10, seed) == 0
    fit_part = Sentences(*([x for x, h in zip(field, held, strict=True) if not h] for field in
                           (sentences.rows, sentences.heads, sentences.punct)))
    check_part = Sentences(*([x for x, h in zip(field, held, strict=True) if h] for field in
                             (sentences.rows, sentences.heads, sentences.punct)))
    probe = StructuralProbe(task, len(layers), train.dim, rank, seed)
    optimizer = torch.optim.Adam([probe.b], lr=lr)
    batches, checks = _batches(fit_part, task, max_words), _batches(check_part, task, max_words)
    order_rng = np.random.default_rng(seed)
    best, best_loss = probe.b.detach().clone(), float("inf")
    for _ in tqdm(range(epochs), desc=task, unit="epoch", disable=not progress):
        for k in order_rng.permutation(len(batches)):
            rows, gold, mask, lengths = batches[k]
            optimizer.zero_grad()
            probe.loss(_hidden(train, layers, rows), gold, mask, lengths).backward()
            optimizer.step()
        with torch.no_grad():
            held_loss = sum(float(probe.loss(_hidden(train, layers, r), g, m, n)) for r, g, m, n in checks)
        if held_loss < best_loss:
            best, best_loss = probe.b.detach().clone(), held_loss
    probe.b = best
    return probe


def evaluate_structural(probe: StructuralProbe, store, layers: list[int], max_words: int = 2048) -> dict:
    """{metric: [L]}: "uuas" and "dspr" for the distance probe, "root_accuracy" and
    "nspr" for the depth probe."""
    sentences = Sentences.of(store)
    n_layers = len(layers)
    found, total = np.zeros(n_layers), 0
    spearman = [dict() for _ in range(n_layers)]
    roots = np.zeros(n_layers)
    counted = 0
    order = np.argsort([len(r) for r in sentences.rows], kind="stable")
    for start in range(0, len(order), 64):
        group = order[start : start + 64]
        rows, _, _, _ = _batch(sentences, list(group), probe.task)
        with torch.no_grad():
            predicted = probe.predict(_hidden(store, layers, rows)).numpy()
        for s, i in enumerate(group):
            heads, punct = sentences.heads[i], sentences.punct[i]
            n, keep = len(heads), ~punct
            ranked = LENGTHS[0] <= n <= LENGTHS[1]  # only these lengths enter DSpr and NSpr
            if probe.task == "distance":
                gold_d = tree_distances(heads)
                gold_e = gold_edges(heads, keep)
                total += len(gold_e)
                for layer in range(n_layers):
                    pred = predicted[layer, s, :n, :n]
                    if keep.sum() >= 2:
                        found[layer] += len(minimum_spanning_edges(pred[np.ix_(keep, keep)]) & gold_e)
                    if ranked:
                        spearman[layer].setdefault(n, []).append(np.nanmean(_spearman_rows(pred, gold_d)))
            else:
                # every sentence counts (as in Hewitt & Manning's reporter): the shallowest
                # non-punctuation word, or the shallowest word where all are punctuation
                counted += 1
                gold_depth = tree_depths(heads)
                root = int(np.flatnonzero(heads == 0)[0])
                candidates = np.flatnonzero(keep) if keep.any() else np.arange(n)
                for layer in range(n_layers):
                    pred = predicted[layer, s, :n]
                    roots[layer] += int(candidates[np.argmin(pred[candidates])]) == root
                    if ranked:
                        spearman[layer].setdefault(n, []).append(float(_spearman_rows(pred, gold_depth)))
    ordered = np.array([_by_length(v) for v in spearman])
    if probe.task == "distance":
        return {"uuas": found / max(total, 1), "dspr": ordered}
    return {"root_accuracy": roots / max(counted, 1), "nspr": ordered}

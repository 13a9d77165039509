"""Dependency parsing (Dozat & Manning 2017): a biaffine arc scorer and a bilinear label
scorer over each word's first-subword vector, with [CLS] standing for the root. Trees are
decoded with Chu-Liu/Edmonds under a one-root constraint (``decode="mst"``, the default)
or by each word's best head (``"greedy"``, which may not give a tree). UAS and LAS leave
out punctuation, by default the words of UPOS ``PUNCT`` (``punctuation="form"``: the words
whose form is all Unicode punctuation, the CoNLL-X eval.pl rule; ``"none"``: no word left
out, as the CoNLL 2018 script); LAS counts a label right only when the whole relation
(subtype included) matches."""

from __future__ import annotations

import unicodedata
import warnings
from collections import Counter

import numpy as np
import torch
from torch import nn

from ..data.conllu import Sentence, check_tree, read_conllu
from .model import TaskModel
from .task import Encoded, ExampleScores, FinetuneTask, label_index

IGNORE = -100  # padding of word-level labels (the Trainer pads with it too)


def _mlp(size_in: int, size_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(size_in, size_out), nn.LeakyReLU(0.1), nn.Dropout(dropout))


def _with_ones(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, x.new_ones(*x.shape[:-1], 1)], -1)


class Parser(TaskModel):
    """Arc scores [batch, words, words + 1] (candidate head 0 is the root) and relation
    scores at the chosen heads; in eval mode also the decoded trees."""

    kind = "parser"

    def __init__(self, encoder: nn.Module, labels: list[str], decode: str = "mst", arc_size: int = 256,
                 label_size: int = 128, dropout: float = 0.33):
        super().__init__(encoder, labels=list(labels), decode=decode, arc_size=arc_size,
                         label_size=label_size, dropout=dropout)
        hidden = self.hidden_size
        self.decode = decode
        self.arc_dep, self.arc_head = _mlp(hidden, arc_size, dropout), _mlp(hidden, arc_size, dropout)
        self.label_dep, self.label_head = _mlp(hidden, label_size, dropout), _mlp(hidden, label_size, dropout)
        # Biaffine weights start at zero (Dozat & Manning): every head equally likely at first.
        self.arc_weight = nn.Parameter(torch.zeros(arc_size + 1, arc_size))
        self.label_weight = nn.Parameter(torch.zeros(len(labels), label_size + 1, label_size + 1))

    def forward(self, input_ids, attention_mask, word_index, token_type_ids=None, heads=None, deprels=None,
                scored=None) -> dict:
        """``word_index`` [batch, words + 1]: the token position of [CLS] (0) and of each
        word's first subword, padded with 0; ``heads`` / ``deprels`` [batch, words], padded
        with -100. ``scored`` (the punctuation mask) is for the metrics only."""
        hidden = self.encode(input_ids, attention_mask, token_type_ids)
        words = hidden.gather(1, word_index.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        n_words = (word_index[:, 1:] > 0).sum(1)  # [batch]
        positions = torch.arange(word_index.shape[1] - 1, device=words.device)
        is_word = positions < n_words[:, None]  # [batch, words]
        arc = torch.einsum("bia,ac,bjc->bij", _with_ones(self.arc_dep(words[:, 1:])), self.arc_weight,
                           self.arc_head(words))
        candidate = torch.cat([is_word.new_ones(len(words), 1), is_word], 1)  # [batch, words + 1]
        itself = positions[:, None] + 1 == torch.arange(words.shape[1], device=words.device)
        arc = arc.masked_fill(~candidate[:, None, :] | itself, torch.finfo(arc.dtype).min)
        out = {}
        label_dep, label_head = _with_ones(self.label_dep(words[:, 1:])), _with_ones(self.label_head(words))

        def label_scores(at: torch.Tensor) -> torch.Tensor:
            chosen = label_head.gather(1, at.clamp_min(0).unsqueeze(-1).expand(-1, -1, label_head.shape[-1]))
            return torch.einsum("bix,lxy,biy->bil", label_dep, self.label_weight, chosen)

        if heads is not None:
            keep = heads != IGNORE
            loss = nn.functional.cross_entropy(arc[keep], heads[keep])
            if deprels is not None:
                loss = loss + nn.functional.cross_entropy(label_scores(heads)[keep], deprels[keep])
            out["loss"] = loss
        if not self.training:
            predicted = decode_batch(arc.detach(), n_words, self.decode)
            relations = label_scores(predicted).argmax(-1)
            out["pred_heads"] = predicted.masked_fill(~is_word, IGNORE)
            out["pred_deprels"] = relations.masked_fill(~is_word, IGNORE)
        return out


def decode_batch(arc: torch.Tensor, n_words: torch.Tensor, how: str) -> torch.Tensor:
    """Heads [batch, words] from arc scores [batch, words, words + 1]."""
    if how == "greedy":
        return arc.argmax(-1)
    scores = torch.log_softmax(arc.float(), -1).cpu().numpy()
    heads = np.zeros(arc.shape[:2], dtype=np.int64)
    for b, n in enumerate(n_words.tolist()):
        if n:
            heads[b, :n] = mst(scores[b, :n, : n + 1])
    return torch.from_numpy(heads).to(arc.device)


def mst(scores: np.ndarray) -> np.ndarray:
    """The best tree with exactly one word attached to the root: heads [n] (0 = root) from
    scores [n, n + 1] (word i+1 takes head j: scores[i, j]), by Chu-Liu/Edmonds. The
    one-root constraint: every root edge pays a penalty larger than any gain, so the best
    tree among those with one root edge wins (any tree has at least one)."""
    n = len(scores)
    full = np.full((n + 1, n + 1), -np.inf)
    full[1:] = scores
    np.fill_diagonal(full, -np.inf)  # self-loops: their masked scores must not set the penalty
    finite = full[np.isfinite(full)]
    full[1:, 0] -= (finite.max() - finite.min()) * (n + 1) + 1.0
    return _chu_liu_edmonds(full)[1:]


def _cycle(heads: np.ndarray) -> list[int] | None:
    state = np.zeros(len(heads), dtype=np.int8)  # 0 new, 1 on the current path, 2 done
    state[0] = 2
    for start in range(1, len(heads)):
        path, node = [], start
        while state[node] == 0:
            state[node] = 1
            path.append(node)
            node = heads[node]
        if state[node] == 1:
            return path[path.index(node):]
        state[path] = 2
    return None


def _chu_liu_edmonds(score: np.ndarray) -> np.ndarray:
    """Maximum spanning arborescence rooted at node 0 of score[dependent, head] (row 0 and
    the diagonal are -inf): heads [nodes], heads[0] = 0."""
    heads = score.argmax(1)
    heads[0] = 0
    cycle = _cycle(heads)
    if cycle is None:
        return heads
    inside = np.zeros(len(score), dtype=bool)
    inside[cycle] = True
    others = np.flatnonzero(~inside)  # others[0] == 0, the root
    c = len(others)
    kept = score[cycle, heads[cycle]]
    entering = score[np.ix_(cycle, others)] - kept[:, None]  # [cycle, others]: swap one cycle edge
    leaving = score[np.ix_(others, cycle)]  # [others, cycle]
    contracted = np.full((c + 1, c + 1), -np.inf)
    contracted[:c, :c] = score[np.ix_(others, others)]
    contracted[c, :c] = entering.max(0)
    contracted[:c, c] = leaving.max(1)
    contracted[0] = -np.inf
    np.fill_diagonal(contracted, -np.inf)
    sub = _chu_liu_edmonds(contracted)
    result = heads.copy()
    for i in range(1, c):
        result[others[i]] = cycle[leaving[i].argmax()] if sub[i] == c else others[sub[i]]
    from_outside = sub[c]
    result[cycle[entering[:, from_outside].argmax()]] = others[from_outside]
    return result


def scored_words(sentence: Sentence, rule: str) -> list[int]:
    """1 for each word UAS and LAS score, 0 for punctuation under ``rule`` ("upos": UPOS
    PUNCT; "form": a form of Unicode punctuation only, as eval.pl's \\p{Punctuation};
    "none": every word scored)."""
    if rule == "none":
        return [1] * len(sentence.words)
    if rule == "form":
        return [int(not all(unicodedata.category(c).startswith("P") for c in w)) for w in sentence.words]
    return [int(u != "PUNCT") for u in sentence.upos]


def attachment_scores(pred_heads, pred_deprels, heads, deprels, scored) -> dict:
    """UAS and LAS (percent) over the words with scored = 1; arrays [sentences, words]
    padded with -100."""
    keep = (np.asarray(scored) == 1) & (np.asarray(heads) != IGNORE)
    if not keep.any():
        raise ValueError("no scored words: every eval word is punctuation or padding")
    right_head = np.asarray(pred_heads)[keep] == np.asarray(heads)[keep]
    right_label = np.asarray(pred_deprels)[keep] == np.asarray(deprels)[keep]
    return {"uas": 100.0 * float(right_head.mean()), "las": 100.0 * float((right_head & right_label).mean())}


class Parsing(FinetuneTask):
    name = "parsing"
    metric = "las"
    percent = True
    label_names = ("heads", "deprels", "scored")
    own_options = ("decode", "punctuation")
    data = "ftlens.data.read_conllu: sentences with heads and relations"

    def check(self, train, evaluation, opts) -> dict:
        self.check_options(opts)
        for role, data in (("train", train), ("eval", evaluation)):
            self.check_list(role, data, Sentence)
            for number, sentence in enumerate(data, 1):
                where = sentence.sent_id or f"number {number}"
                if len(sentence.heads) != len(sentence.words) or len(sentence.deprels) != len(sentence.words):
                    raise ValueError(f"{role} sentence {where} has {len(sentence.words)} words but "
                                     f"{len(sentence.heads)} heads and {len(sentence.deprels)} relations: "
                                     "parsing needs a head and a relation for every word")
                problem = check_tree(sentence.heads)
                if problem:
                    raise ValueError(f"{role} sentence {where}: its heads are not a tree ({problem})")
        return {"labels": sorted({rel for s in train for rel in s.deprels}), "decode": opts.decode}

    def model(self, encoder, head: dict) -> Parser:
        return Parser(encoder, **head)

    def dataset(self, data, tokenizer, opts, head: dict, train: bool) -> Encoded:
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("parsing needs a fast tokenizer (word_ids); this model's tokenizer is slow")
        if train:
            index = label_index(head["labels"], {rel for s in data for rel in s.deprels}, "relations")
        else:
            index = _eval_relations(head["labels"], data)
        features = tokenizer([s.words for s in data], is_split_into_words=True, truncation=True,
                             max_length=opts.max_length)
        items, dropped = [], []
        for i, sentence in enumerate(data):
            first: dict[int, int] = {}
            for position, word in enumerate(features.word_ids(i)):
                if word is not None:
                    first.setdefault(word, position)
            if len(first) < len(sentence.words):
                dropped.append(sentence.sent_id or str(i + 1))
                continue
            items.append({**{k: v[i] for k, v in features.items()},
                          "word_index": [0] + [first[w] for w in range(len(sentence.words))],
                          "heads": list(sentence.heads), "deprels": [index[r] for r in sentence.deprels],
                          "scored": scored_words(sentence, opts.punctuation)})
        if dropped and not train:
            raise ValueError(f"{len(dropped)} eval sentences (e.g. {dropped[:3]}) are longer than max_length="
                             f"{opts.max_length} tokens, so some words would go unscored: raise max_length")
        if dropped:
            warnings.warn(f"{len(dropped)} of {len(data)} training sentences are longer than max_length="
                          f"{opts.max_length} tokens and are left out", stacklevel=3)
        encoded = Encoded(items)
        encoded.labels = head["labels"]
        return encoded

    def collator(self, tokenizer):
        return WordCollator(tokenizer)

    def scores(self, prediction, eval_set, opts) -> ExampleScores:
        """Per sentence: its right heads (UAS) and right heads and relations (LAS) over its
        scored words."""
        pred_heads, pred_deprels = (np.asarray(a) for a in prediction.predictions)
        heads, deprels, scored = (np.asarray(a) for a in prediction.label_ids)
        keep = (scored == 1) & (heads != IGNORE)
        right_head = (pred_heads == heads) & keep
        right = {"uas": right_head, "las": right_head & (pred_deprels == deprels)}
        words = keep.sum(1).astype(np.float64)
        predictions = []
        for sentence_heads, sentence_deprels in zip(pred_heads, pred_deprels, strict=True):
            words_here = sentence_heads != IGNORE
            relations = sentence_deprels[words_here].tolist()
            predictions.append({"heads": sentence_heads[words_here].tolist(),
                                "deprels": [eval_set.labels[r] for r in relations]})
        return ExampleScores(attachment_scores(pred_heads, pred_deprels, heads, deprels, scored), 100.0,
                             {k: v.sum(1).astype(np.float64) for k, v in right.items()},
                             {k: words for k in right}, predictions)

    def read(self, path) -> list[Sentence]:
        return read_conllu(path)

    def baseline(self, evaluation, opts) -> dict:
        """The better of two parsers that read no word: each word's head is the word before
        it (the first word's the root), or the word after it (the last word's the root),
        every relation the most frequent one."""
        label = Counter(rel for s in evaluation for rel in s.deprels).most_common(1)[0][0]
        width = max(len(s.words) for s in evaluation)

        def padded(rows):
            return [list(r) + [IGNORE] * (width - len(r)) for r in rows]

        gold = padded([s.heads for s in evaluation]), padded([s.deprels for s in evaluation])
        scored = padded([scored_words(s, opts.punctuation) for s in evaluation])
        guesses = {"the word before": [[i for i in range(len(s.words))] for s in evaluation],
                   "the word after": [[i + 2 if i + 1 < len(s.words) else 0 for i in range(len(s.words))]
                                      for s in evaluation]}
        best = max((attachment_scores(padded(heads), padded([[label] * len(s.words) for s in evaluation]),
                                      *gold, scored)["las"], rule) for rule, heads in guesses.items())
        n = int(((np.asarray(scored) == 1) & (np.asarray(gold[0]) != IGNORE)).sum())
        return {"value": best[0], "rule": f"each word's head {best[1]}, every relation {label!r}", "n": n}


def _eval_relations(labels: list[str], data) -> dict[str, int]:
    """Each relation -> the parser's label index; one the parser lacks (e.g. a rare relation
    missing from a small training sample) -> IGNORE, with a warning: it stays out of the
    label loss and counts as wrong in LAS, as in the official evaluation (its head still
    counts for UAS)."""
    index = {name: i for i, name in enumerate(labels)}
    missing = Counter(rel for s in data for rel in s.deprels if rel not in index)
    if missing:
        warnings.warn(f"eval relations {sorted(missing)} ({sum(missing.values())} words) are not among the "
                      "parser's labels (they never occur in its training sentences): it cannot predict them, "
                      "so they count as wrong in LAS; UAS is unaffected", stacklevel=4)
    return {**{rel: IGNORE for rel in missing}, **index}


class WordCollator:
    """Pads the subword inputs with the tokenizer and the word-level lists with -100
    (``word_index`` with 0)."""

    WORD_KEYS = {"word_index": 0, "heads": IGNORE, "deprels": IGNORE, "scored": 0}

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, items: list[dict]) -> dict:
        tokens = self.tokenizer.pad([{k: v for k, v in item.items() if k not in self.WORD_KEYS}
                                     for item in items], return_tensors="pt")
        width = max(len(item["word_index"]) for item in items)
        for key, fill in self.WORD_KEYS.items():
            size = width if key == "word_index" else width - 1
            tokens[key] = torch.tensor([item[key] + [fill] * (size - len(item[key])) for item in items])
        return tokens


PARSING = Parsing()

"""A built-in corpus, so that everything runs with no download: a small probabilistic
grammar writes English sentences with gold UPOS/XPOS tags and dependency trees, and
sentence pairs labelled entailment / contradiction / neutral by construction.

Seeded and deterministic; sizes are chosen by the caller.

    S  -> NP_subj VP .            VP -> VERB NP_obj [PP_obl] [ADV]
    NP -> DET ADJ* NOUN [PP] | PROPN           PP -> ADP NP

Entailment drops modifiers (adjectives, prepositional phrases and adverbs are
intersective here), neutral adds one the premise lacks, contradiction negates the verb.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .conllu import Sentence
from .pairs import PairData, SentencePair

NOUNS = ["dog", "cat", "student", "teacher", "farmer", "river", "house", "letter", "garden",
         "pilot", "doctor", "window", "book", "city", "bicycle", "painter", "child", "storm"]
PROPER = ["Anna", "Boris", "Paris", "Maria", "Kofi", "Lena", "Tokyo"]
ADJECTIVES = ["old", "small", "red", "quiet", "tall", "young", "busy", "famous", "green", "cold"]
VERBS = [("saw", "see"), ("liked", "like"), ("followed", "follow"), ("painted", "paint"),
         ("visited", "visit"), ("helped", "help"), ("found", "find"), ("watched", "watch"),
         ("called", "call"), ("carried", "carry")]
ADVERBS = ["yesterday", "quickly", "twice", "again", "slowly"]
PREPOSITIONS = ["near", "in", "behind", "with", "under"]
DETERMINERS = ["the", "a"]
LABELS = ("contradiction", "entailment", "neutral")


@dataclass
class Node:
    """A word and its dependents (left ones before it, right ones after it)."""

    form: str
    upos: str
    xpos: str
    deprel: str
    left: list[Node] = field(default_factory=list)
    right: list[Node] = field(default_factory=list)


@dataclass
class Clause:
    """The parts a sentence is built from, so that pairs can edit them."""

    subject: Node
    verb: tuple[str, str]
    obj: Node
    obl: Node | None
    adverb: str | None


# nouns that are also verbs of the grammar ("did not watch" / "the old watch"): their tags
# depend on the context, not on the word
AMBIGUOUS_NOUNS = ["watch", "call", "visit", "paint", "help", "saw", "find"]
AMBIGUOUS_SHARE = 0.5  # of the ambiguous corpus's common nouns
NEGATED_SHARE = 0.5  # of the ambiguous corpus's sentences: "did not <verb>"


class Grammar:
    def __init__(self, seed: int, ambiguous: bool = False) -> None:
        self.rng = random.Random(seed)
        self.ambiguous = ambiguous

    def noun_phrase(self, deprel: str, depth: int = 0) -> Node:
        r = self.rng
        if r.random() < 0.15:
            return Node(r.choice(PROPER), "PROPN", "NNP", deprel)
        nouns = AMBIGUOUS_NOUNS if self.ambiguous and r.random() < AMBIGUOUS_SHARE else NOUNS
        noun = Node(r.choice(nouns), "NOUN", "NN", deprel)
        noun.left.append(Node(r.choice(DETERMINERS), "DET", "DT", "det"))
        for adj in r.sample(ADJECTIVES, k=r.choice([0, 0, 1, 1, 2])):
            noun.left.append(Node(adj, "ADJ", "JJ", "amod"))
        if depth == 0 and r.random() < 0.2:
            noun.right.append(self.prepositional("nmod", depth + 1))
        return noun

    def prepositional(self, deprel: str, depth: int = 0) -> Node:
        np_ = self.noun_phrase(deprel, depth)
        np_.left.insert(0, Node(self.rng.choice(PREPOSITIONS), "ADP", "IN", "case"))
        return np_

    def clause(self) -> Clause:
        r = self.rng
        return Clause(
            subject=self.noun_phrase("nsubj"),
            verb=r.choice(VERBS),
            obj=self.noun_phrase("obj"),
            obl=self.prepositional("obl") if r.random() < 0.4 else None,
            adverb=r.choice(ADVERBS) if r.random() < 0.3 else None,
        )


def _root(clause: Clause, negated: bool = False) -> Node:
    past, base = clause.verb
    verb = Node(base if negated else past, "VERB", "VB" if negated else "VBD", "root")
    verb.left.append(clause.subject)
    if negated:
        verb.left += [Node("did", "AUX", "VBD", "aux"), Node("not", "PART", "RB", "advmod")]
    verb.right.append(clause.obj)
    if clause.obl is not None:
        verb.right.append(clause.obl)
    if clause.adverb is not None:
        verb.right.append(Node(clause.adverb, "ADV", "RB", "advmod"))
    verb.right.append(Node(".", "PUNCT", ".", "punct"))
    return verb


def _sentence(root: Node, sent_id: str) -> Sentence:
    """Linearizes a tree; heads are 1-based word positions."""
    order: list[tuple[Node, Node | None]] = []

    def walk(node: Node, parent: Node | None) -> None:
        for child in node.left:
            walk(child, node)
        order.append((node, parent))
        for child in node.right:
            walk(child, node)

    walk(root, None)
    position = {id(node): i for i, (node, _) in enumerate(order, 1)}
    words = [n.form for n, _ in order]
    words[0] = words[0][0].upper() + words[0][1:]
    return Sentence(
        words=words,
        upos=[n.upos for n, _ in order],
        xpos=[n.xpos for n, _ in order],
        heads=[0 if p is None else position[id(p)] for _, p in order],
        deprels=[n.deprel for n, _ in order],
        sent_id=sent_id,
        text=" ".join(words[:-1]) + words[-1],
    )


def _text(clause: Clause, negated: bool = False) -> str:
    s = _sentence(_root(clause, negated), "")
    return " ".join(s.words[:-1]) + s.words[-1]


def generate_sentences(n: int, seed: int = 0, ambiguous: bool = False) -> list[Sentence]:
    """n sentences with gold UPOS/XPOS tags and dependency trees. ``ambiguous``: some nouns
    are also verbs of the grammar ("the old watch"), and half of the sentences are negated
    ("did not watch"), so a word's tag depends on its context (a probe of the embeddings
    cannot be perfect)."""
    grammar = Grammar(seed, ambiguous)
    out = []
    for i in range(n):
        clause = grammar.clause()
        negated = ambiguous and grammar.rng.random() < NEGATED_SHARE
        out.append(_sentence(_root(clause, negated), f"generated-{seed}-{i}"))
    return out


def _strip(node: Node) -> Node:
    """The phrase without adjectives or nested prepositional phrases."""
    return Node(node.form, node.upos, node.xpos, node.deprel,
                [c for c in node.left if c.deprel not in ("amod",)], [])


def _reduced(clause: Clause) -> Clause:
    return Clause(_strip(clause.subject), clause.verb, _strip(clause.obj), None, None)


def generate_pairs(n: int, seed: int = 0) -> PairData:
    """n (premise, hypothesis) pairs, a third of each label, in a seeded order."""
    grammar = Grammar(seed)
    labels = [LABELS[i % 3] for i in range(n)]
    random.Random(seed + 1).shuffle(labels)
    pairs = []
    for label in labels:
        premise = grammar.clause()
        if label == "neutral":
            premise = _reduced(premise)  # the hypothesis adds what the premise lacks
        premise_text = _text(premise)
        if label == "entailment":
            hypothesis = _text(_reduced(premise))
        elif label == "contradiction":
            hypothesis = _text(_reduced(premise), negated=True)
        else:
            extra = Clause(premise.subject, premise.verb, premise.obj, None, None)
            extra.obl = grammar.prepositional("obl")
            hypothesis = _text(extra)
        pairs.append(SentencePair(premise_text, hypothesis, label))
    return PairData(pairs, LABELS)

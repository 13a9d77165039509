"""CoNLL-U (Universal Dependencies) reader and writer.

Each sentence keeps its syntactic words (multiword-token lines such as ``1-2`` are kept
as surface tokens only; empty nodes such as ``8.1`` are skipped) with UPOS, XPOS, heads
and relations, plus its ``sent_id`` and ``text`` comments.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .errors import DataFormatError, read_utf8

N_COLUMNS = 10


@dataclass
class Sentence:
    """One CoNLL-U sentence. ``heads[i]`` is the 1-based head of word i (0 = root)."""

    words: list[str]
    upos: list[str]
    xpos: list[str]
    heads: list[int]
    deprels: list[str]
    sent_id: str | None = None
    text: str | None = None
    multiword: list[tuple[int, int, str]] = field(default_factory=list)  # (first, last, form)

    def __len__(self) -> int:
        return len(self.words)


def check_tree(heads: list[int]) -> str | None:
    """None if ``heads`` form a tree rooted at 0, else what is wrong."""
    n = len(heads)
    for i, h in enumerate(heads, 1):
        if not 0 <= h <= n:
            return f"word {i} has head {h}, outside 0..{n}"
        if h == i:
            return f"word {i} is its own head"
    roots = [i for i, h in enumerate(heads, 1) if h == 0]
    if len(roots) != 1:
        which = "no word" if not roots else "words " + ", ".join(str(r) for r in roots)
        return f"{len(roots)} roots ({which} with head 0); a tree has exactly one"
    state = [0] * (n + 1)  # 0 unvisited, 1 on the current path, 2 reaches the root
    state[0] = 2
    for start in range(1, n + 1):
        path, node = [], start
        while state[node] == 0:
            state[node] = 1
            path.append(node)
            node = heads[node - 1]
        if state[node] == 1:
            cycle = path[path.index(node):]
            return "cycle in heads: " + " -> ".join(str(w) for w in cycle + [node])
        for w in path:
            state[w] = 2
    return None


def _sentences(lines: Iterable[str], path: str) -> Iterator[Sentence]:
    block: list[tuple[int, str]] = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\n").rstrip("\r")
        if line.strip():
            block.append((number, line))
        elif block:
            yield _parse_block(block, path)
            block = []
    if block:
        yield _parse_block(block, path)


def _parse_block(block: list[tuple[int, str]], path: str) -> Sentence:
    s = Sentence([], [], [], [], [])
    for number, line in block:
        if line.startswith("#"):
            key, _, value = line[1:].partition("=")
            if key.strip() == "sent_id":
                s.sent_id = value.strip()
            elif key.strip() == "text":
                s.text = value.strip()
            continue
        cols = line.split("\t")
        if len(cols) != N_COLUMNS:
            raise DataFormatError(
                path, number, f"expected {N_COLUMNS} tab-separated columns, found {len(cols)}"
            )
        token_id = cols[0]
        if "." in token_id:
            continue  # empty node of the enhanced graph
        if "-" in token_id:
            first, _, last = token_id.partition("-")
            if not (first.isdigit() and last.isdigit() and int(first) < int(last)):
                raise DataFormatError(path, number,
                                      f"multiword token id {token_id!r} is not a range 'first-last'")
            s.multiword.append((int(first), int(last), cols[1]))
            continue
        if not token_id.isdigit() or int(token_id) != len(s.words) + 1:
            raise DataFormatError(
                path, number, f"word id {token_id!r} out of sequence (expected {len(s.words) + 1})"
            )
        if not cols[6].isdigit():
            raise DataFormatError(path, number, f"head {cols[6]!r} of word {token_id} is not a number (a "
                                  "file without dependency trees cannot train a parser or tree probes)")
        s.words.append(cols[1])
        s.upos.append(cols[3])
        s.xpos.append(cols[4])
        s.heads.append(int(cols[6]))
        s.deprels.append(cols[7])
    if not s.words:
        raise DataFormatError(path, block[0][0], "sentence without words")
    problem = check_tree(s.heads)
    if problem:
        where = f"sentence {s.sent_id!r}" if s.sent_id else "sentence"
        raise DataFormatError(path, block[0][0], f"{where}: {problem}")
    return s


def read_conllu(path: str | os.PathLike) -> list[Sentence]:
    """All sentences of a CoNLL-U file; malformed lines raise DataFormatError (file:line)."""
    return list(_sentences(read_utf8(path).splitlines(), os.fspath(path)))


def format_conllu(sentences: Iterable[Sentence]) -> str:
    """CoNLL-U text for sentences (LEMMA, FEATS, DEPS and MISC left as ``_``)."""
    out = []
    for s in sentences:
        if s.sent_id is not None:
            out.append(f"# sent_id = {s.sent_id}")
        out.append(f"# text = {s.text if s.text is not None else ' '.join(s.words)}")
        for i, (w, u, x, h, r) in enumerate(zip(s.words, s.upos, s.xpos, s.heads, s.deprels, strict=True), 1):
            out.append(f"{i}\t{w}\t_\t{u}\t{x}\t_\t{h}\t{r}\t_\t_")
        out.append("")
    return "\n".join(out) + "\n"

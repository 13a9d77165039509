"""Readers: real data counts, format corner cases, malformed input with file:line errors,
and the built-in generated corpus."""

import json
import re

import pytest
from ftlens.data import (
    DataFormatError,
    format_conllu,
    generate_pairs,
    generate_sentences,
    read_conllu,
    read_pairs,
    read_squad,
    read_text,
)
from ftlens.data.conllu import check_tree

CONLLU = (
    "# sent_id = s1\n"
    "# text = We can't stop.\n"
    "1\tWe\twe\tPRON\tPRP\t_\t4\tnsubj\t_\t_\n"
    "2-3\tcan't\t_\t_\t_\t_\t_\t_\t_\t_\n"
    "2\tca\tcan\tAUX\tMD\t_\t4\taux\t_\t_\n"
    "3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_\n"
    "4\tstop\tstop\tVERB\tVB\t_\t0\troot\t_\t_\n"
    "4.1\tgo\tgo\tVERB\tVB\t_\t_\t_\t4:conj\t_\n"
    "5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_\n"
    "\n"
)


@pytest.mark.parametrize("split,count", [("train", 12544), ("dev", 2001), ("test", 2077)])
def test_ud_english_ewt_counts(data_dir, split, count):
    sentences = read_conllu(data_dir / "ud_en_ewt" / f"en_ewt-ud-{split}.conllu")
    assert len(sentences) == count
    assert all(s.sent_id and s.text for s in sentences)
    assert all(len(s.words) == len(s.upos) == len(s.heads) == len(s.deprels) for s in sentences)


def test_ewt_dev_word_count(data_dir):
    sentences = read_conllu(data_dir / "ud_en_ewt" / "en_ewt-ud-dev.conllu")
    assert sum(len(s) for s in sentences) == 25147  # syntactic words, as the data README counts


def test_multiword_tokens_and_empty_nodes(tmp_path):
    path = tmp_path / "a.conllu"
    path.write_text(CONLLU)
    (s,) = read_conllu(path)
    assert s.words == ["We", "ca", "n't", "stop", "."]
    assert s.upos == ["PRON", "AUX", "PART", "VERB", "PUNCT"]
    assert s.heads == [4, 4, 4, 0, 4]
    assert s.multiword == [(2, 3, "can't")]
    assert s.sent_id == "s1" and s.text == "We can't stop."


def test_conllu_wrong_column_count_names_file_and_line(tmp_path):
    path = tmp_path / "bad.conllu"
    path.write_text(CONLLU.replace("4\tstop\tstop\tVERB\tVB\t_\t0\troot\t_\t_", "4\tstop\tVERB\t0\troot"))
    with pytest.raises(DataFormatError, match=r"bad\.conllu:7: expected 10 tab-separated columns, found 5"):
        read_conllu(path)


def test_conllu_cycle_in_heads(tmp_path):
    path = tmp_path / "cycle.conllu"
    path.write_text(CONLLU.replace("1\tWe\twe\tPRON\tPRP\t_\t4", "1\tWe\twe\tPRON\tPRP\t_\t2")
                    .replace("2\tca\tcan\tAUX\tMD\t_\t4", "2\tca\tcan\tAUX\tMD\t_\t1"))
    with pytest.raises(DataFormatError, match=r"cycle\.conllu:1: sentence 's1': cycle in heads: 1 -> 2 -> 1"):
        read_conllu(path)


def test_check_tree():
    assert check_tree([2, 0, 2]) is None
    assert "outside" in check_tree([5, 0])
    assert "own head" in check_tree([1, 0])


def test_nli_jsonl_and_tsv(data_dir):
    mnli = read_pairs(data_dir / "mnli" / "dev_matched.jsonl")
    assert len(mnli) == 9815 and mnli.labels == ("contradiction", "entailment", "neutral")
    assert sorted(set(mnli.label_ids())) == [0, 1, 2]
    rte = read_pairs(data_dir / "glue_rte" / "train.tsv")
    assert len(rte) == 2490 and rte.labels == ("entailment", "not_entailment")
    unlabeled = read_pairs(data_dir / "glue_rte" / "test.tsv")
    assert len(unlabeled) == 3000 and unlabeled.labels == () and unlabeled[0].label is None


def test_pairs_without_gold_label_are_skipped(tmp_path):
    path = tmp_path / "p.jsonl"
    rows = [{"sentence1": "A b.", "sentence2": "C d.", "gold_label": "yes"},
            {"sentence1": "E f.", "sentence2": "G h.", "gold_label": "-"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    data = read_pairs(path)
    assert len(data) == 1 and data.skipped == 1 and data.labels == ("yes",)


@pytest.mark.parametrize("name,content,message", [
    ("p.tsv", "sentence1\tsentence2\tlabel\nA.\tB.\tyes\nC.\tno\n",
     r"p\.tsv:3: expected 3 tab-separated columns, found 2"),
    ("p.tsv", "text\tlabel\nA.\tyes\n", r"p\.tsv:2: no premise column"),
    ("p.jsonl", '{"premise": "a", "hypothesis": "b", "label": "x"}\n{"premise": \n',
     r"p\.jsonl:2: invalid JSON"),
])
def test_malformed_pair_files_name_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataFormatError, match=message):
        read_pairs(path)


def test_squad_real_file(data_dir):
    examples = read_squad(data_dir / "squad_v1.1" / "dev-v1.1.json")
    assert len(examples) == 10570
    for ex in examples[:200]:
        for a in ex.answers:
            assert ex.context[a.start : a.start + len(a.text)] == a.text


def _squad_doc(start):
    return {"version": "2.0", "data": [{"title": "T", "paragraphs": [{
        "context": "The cat sat on the mat.",
        "qas": [{"id": "q1", "question": "Where?", "answers": [{"text": "the mat", "answer_start": 15}]},
                {"id": "q2", "question": "Who?", "answers": [{"text": "cat", "answer_start": start}]},
                {"id": "q3", "question": "Why?", "answers": [], "is_impossible": True}]}]}]}


def test_squad_v2_and_offsets(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(_squad_doc(4), indent=1))
    examples = read_squad(path)
    assert [e.id for e in examples] == ["q1", "q2", "q3"]
    assert examples[2].is_impossible and not examples[2].answers


def test_squad_offset_mismatch_names_file_line_and_question(tmp_path):
    path = tmp_path / "s.json"
    text = json.dumps(_squad_doc(5), indent=1)
    path.write_text(text)
    line = text[: text.index('"q2"')].count("\n") + 1
    message = rf"s\.json:{line}: question q2: answer 'cat' is not at offset 5"
    with pytest.raises(DataFormatError, match=message):
        read_squad(path)


def test_plain_text(data_dir, tmp_path):
    lines = read_text(data_dir / "wikitext2" / "wiki.test.raw")
    assert len(lines) == 2891  # non-empty lines, as the data README counts
    path = tmp_path / "t.txt"
    path.write_text("  one two  \n\nthree\n")
    assert read_text(path) == ["one two", "three"]
    assert read_text(path, min_words=2) == ["one two"]


def test_generated_sentences_are_valid_trees_and_deterministic(tmp_path):
    sentences = generate_sentences(300, seed=3)
    assert format_conllu(sentences) == format_conllu(generate_sentences(300, seed=3))
    assert format_conllu(sentences) != format_conllu(generate_sentences(300, seed=4))
    assert all(check_tree(s.heads) is None and s.heads.count(0) == 1 for s in sentences)
    assert {"NOUN", "VERB", "DET", "ADJ", "ADP", "PROPN", "PUNCT"} <= {u for s in sentences for u in s.upos}
    path = tmp_path / "g.conllu"
    path.write_text(format_conllu(sentences))
    again = read_conllu(path)
    assert [s.words for s in again] == [s.words for s in sentences]
    assert [s.heads for s in again] == [s.heads for s in sentences]


def test_generated_pairs_labels_follow_construction():
    data = generate_pairs(300, seed=1)
    assert len(data) == 300 and data.labels == ("contradiction", "entailment", "neutral")
    assert sorted(data.label_ids()).count(0) == 100
    for p in data:
        premise, hypothesis = (set(re.findall(r"\w+", t.lower())) for t in (p.premise, p.hypothesis))
        if p.label == "entailment":
            assert hypothesis <= premise  # only modifiers were dropped
        elif p.label == "contradiction":
            assert "not" in hypothesis and "not" not in premise
        else:
            assert premise <= hypothesis and hypothesis != premise  # something was added
    assert generate_pairs(20, seed=1).pairs == generate_pairs(20, seed=1).pairs


class _FakeHubDataset:
    """The slice of a `datasets.Dataset` that load_hub uses."""

    def __init__(self, rows, features):
        self.rows, self.features = rows, features
        self.column_names = list(rows[0])

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def select(self, indices):
        return _FakeHubDataset([self.rows[i] for i in indices], self.features)


def test_load_hub_converts_pairs_and_sentences(monkeypatch):
    import sys
    import types

    from ftlens.data import load_hub

    class ClassLabel:
        names = ["entailment", "neutral", "contradiction"]

    snli = [{"premise": "A b.", "hypothesis": "C d.", "label": 2},
            {"premise": "E f.", "hypothesis": "G h.", "label": -1},  # no gold label
            {"premise": "I j.", "hypothesis": "K l.", "label": 0}]
    tables = {
        "snli": _FakeHubDataset(snli, {"label": ClassLabel()}),
        "sst2": _FakeHubDataset([{"sentence": "good film", "label": 1}, {"sentence": "  ", "label": 0}], {}),
    }
    fake = types.SimpleNamespace(load_dataset=lambda name, config=None, split=None: tables[name])
    monkeypatch.setitem(sys.modules, "datasets", fake)
    pairs = load_hub("snli", "validation")
    assert [p.label for p in pairs] == ["contradiction", "entailment"]
    assert pairs.labels == ("contradiction", "entailment")
    assert len(load_hub("snli", "validation", limit=1)) == 1
    assert load_hub("sst2", "train") == ["good film"]


CONLLU_TWO_ROOTS = ("# sent_id = r2\n1\tA\t_\tDET\tDT\t_\t0\troot\t_\t_\n"
                    "2\tb\t_\tNOUN\tNN\t_\t0\troot\t_\t_\n\n")


@pytest.mark.parametrize("name, content, message", [
    ("roots.conllu", CONLLU_TWO_ROOTS, r"roots\.conllu:1: sentence 'r2': 2 roots \(words 1, 2 with head 0\)"),
    ("mwt.conllu", "1-x\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n1\tdo\t_\tAUX\tVB\t_\t0\troot\t_\t_\n\n",
     r"mwt\.conllu:1: multiword token id '1-x' is not a range"),
    ("bom.txt", None, None),
])
def test_conllu_and_text_problems_name_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    if content is None:  # a UTF-8 byte-order mark is not part of the first line
        path.write_bytes("\ufeffFirst line here\nsecond\n".encode())
        assert read_text(path) == ["First line here", "second"]
        conllu = tmp_path / "bom.conllu"
        one_root = CONLLU_TWO_ROOTS.replace("\t0\troot\t_\t_\n\n", "\t1\tdet\t_\t_\n\n")
        conllu.write_bytes(("\ufeff" + one_root).encode())
        assert read_conllu(conllu)[0].sent_id == "r2"
        return
    path.write_text(content)
    with pytest.raises(DataFormatError, match=message):
        read_conllu(path)


@pytest.mark.parametrize("reader, suffix", [(read_conllu, ".conllu"), (read_pairs, ".tsv"),
                                            (read_text, ".txt"), (read_squad, ".json")])
def test_non_utf8_files_name_the_line(tmp_path, reader, suffix):
    path = tmp_path / f"latin{suffix}"
    path.write_bytes(b"first line\nsecond caf\xe9 line\n")
    with pytest.raises(DataFormatError, match=rf"latin\{suffix}:2: not UTF-8 text \(byte 0xe9\)"):
        reader(path)


def test_jsonl_label_missing_from_the_first_row_keeps_the_others(tmp_path):
    path = tmp_path / "p.jsonl"
    rows = [{"premise": "a", "hypothesis": "b"}, {"premise": "c", "hypothesis": "d", "label": "yes"},
            {"premise": "e", "hypothesis": "f", "label": "no"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = read_pairs(path)
    assert [p.label for p in data] == ["yes", "no"] and data.skipped == 1 and data.labels == ("no", "yes")


@pytest.mark.parametrize("answer, message", [
    ({"text": "cat", "answer_start": -19}, r"answer 'cat' at offset -19 does not lie within its context"),
    ({"text": "", "answer_start": 40}, r"answer '' at offset 40 does not lie within its context"),
    ({"text": "cat", "answer_start": "zero"}, r"answer_start must be an integer.*'zero'"),
])
def test_squad_answers_outside_the_context_are_refused(tmp_path, answer, message):
    doc = _squad_doc(4)
    doc["data"][0]["paragraphs"][0]["qas"][1]["answers"] = [answer]
    path = tmp_path / "s.json"
    text = json.dumps(doc, indent=1)
    path.write_text(text)
    line = text[: text.index('"q2"')].count("\n") + 1
    with pytest.raises(DataFormatError, match=rf"s\.json:{line}: question q2: {message}"):
        read_squad(path)


def test_squad_paragraph_without_context_is_named(tmp_path):
    doc = _squad_doc(4)
    del doc["data"][0]["paragraphs"][0]["context"]
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc, indent=1))
    with pytest.raises(DataFormatError, match=r"s\.json:\d+: a paragraph of 'T' has no 'context' text"):
        read_squad(path)


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_read_text_refuses_non_positive_limits(tmp_path, bad):
    path = tmp_path / "t.txt"
    path.write_text("a b\n")
    with pytest.raises(ValueError, match=f"max_sentences must be a positive integer or None, got {bad}"):
        read_text(path, max_sentences=bad)


def test_the_ambiguous_corpus_tags_some_words_by_their_context():
    from collections import Counter, defaultdict

    from ftlens.data import generate_sentences

    plain = generate_sentences(50, seed=4)
    assert [s.text for s in plain] == [s.text for s in generate_sentences(50, seed=4, ambiguous=False)]
    sentences = generate_sentences(400, seed=4, ambiguous=True)
    tags = defaultdict(Counter)
    for s in sentences:
        for word, upos in zip(s.words, s.upos, strict=True):
            tags[word.lower()][upos] += 1
    both = {w for w, c in tags.items() if {"NOUN", "VERB"} <= set(c)}
    assert {"watch", "call", "visit", "saw"} <= both
    # a tagger that sees only the word cannot be right more often than this
    best = sum(max(c.values()) for c in tags.values()) / sum(sum(c.values()) for c in tags.values())
    assert best < 0.975
    assert all(s.heads.count(0) == 1 for s in sentences)

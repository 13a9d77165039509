"""Word alignment: subwords map back to their words for WordPiece (MiniLM) and byte-level
BPE (RoBERTa-style) tokenizers, on punctuation, hyphens, numbers, contractions and
non-ASCII text; row selection picks the right positions."""

import unicodedata

import numpy as np
import pytest
import torch
from ftlens.activations.align import Item, Segment, as_items, select_rows
from ftlens.data import Sentence, SentencePair
from helpers.tiny import byte_level_bpe

WORDS = ["Hello,", "world!", "state-of-the-art", "3.14", "1,000", "don't", "naïve", "café",
         "Zürich", "日本語", "(x)", "U.S.", "e-mail:", "naïve-ish"]
CORPUS = [" ".join(WORDS), "the cat sat on the mat", "state of the art models"] * 5  # to train tokenizers


@pytest.fixture(scope="module")
def byte_bpe(tmp_path_factory):
    return byte_level_bpe(CORPUS, tmp_path_factory.mktemp("bpe"))


@pytest.fixture(scope="module")
def sentencepiece():
    """A SentencePiece-style (Metaspace, unigram) tokenizer trained here, as DeBERTa-v2 uses."""
    from tokenizers import SentencePieceUnigramTokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    sp = SentencePieceUnigramTokenizer()
    sp.train_from_iterator(CORPUS, vocab_size=120, special_tokens=["[CLS]", "[SEP]", "[PAD]", "<unk>"],
                           unk_token="<unk>")
    specials = [("[CLS]", sp.token_to_id("[CLS]")), ("[SEP]", sp.token_to_id("[SEP]"))]
    sp._tokenizer.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=specials)
    return PreTrainedTokenizerFast(tokenizer_object=sp._tokenizer, cls_token="[CLS]", sep_token="[SEP]",
                                   pad_token="[PAD]", unk_token="<unk>")


def _word_tokens(tokenizer, segment, pair=None):
    texts = ([segment.text], [pair.text]) if pair else ([segment.text],)
    enc = tokenizer(*texts, padding=True, return_offsets_mapping=True, return_tensors="pt")
    return enc


def _tokens_per_word(tokenizer, words):
    segment = Segment.from_words(words)
    enc = _word_tokens(tokenizer, segment)
    item = Item((segment,))
    rows = select_rows(enc, [item], "words", "mean")
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    groups = {}
    for pos, g in zip(rows.positions.tolist(), rows.groups.tolist(), strict=True):
        groups.setdefault(int(rows.unit[g]), []).append(tokens[pos])
    return groups, rows


def _uncased(word):
    return "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")


def test_wordpiece_subwords_spell_their_word(minilm):
    _, tokenizer = minilm
    groups, rows = _tokens_per_word(tokenizer, WORDS)
    assert sorted(groups) == list(range(len(WORDS))) and rows.words_dropped == 0
    for w, word in enumerate(WORDS):
        spelled = "".join(t.removeprefix("##") for t in groups[w])
        assert spelled == _uncased(word), (word, groups[w])


def test_byte_level_bpe_subwords_spell_their_word(byte_bpe):
    groups, rows = _tokens_per_word(byte_bpe, WORDS)
    assert sorted(groups) == list(range(len(WORDS))) and rows.words_dropped == 0
    for w, word in enumerate(WORDS):
        assert byte_bpe.convert_tokens_to_string(groups[w]).strip() == word


def test_sentencepiece_subwords_spell_their_word(sentencepiece):
    groups, rows = _tokens_per_word(sentencepiece, WORDS)
    assert sorted(groups) == list(range(len(WORDS))) and rows.words_dropped == 0
    for w, word in enumerate(WORDS):
        assert "".join(groups[w]).replace("\u2581", "") == word  # lone "\u2581" spaces belong to no word


def test_plain_text_words_are_whitespace_separated():
    seg = Segment.from_text("  It's  state-of-the-art, isn't it? ")
    assert [seg.text[a:b] for a, b in seg.spans] == ["It's", "state-of-the-art,", "isn't", "it?"]
    seg = Segment.from_words(["can", "n't"])
    assert seg.text == "can n't" and seg.spans == ((0, 3), (4, 7))
    with pytest.raises(ValueError, match="whitespace"):
        Segment.from_words(["a b"])


@pytest.mark.parametrize("pool", ["first", "last", "mean"])
def test_word_pooling_picks_the_right_subwords(minilm, pool):
    _, tokenizer = minilm
    items = [Item((Segment.from_text("unbelievably unmistakable tokenizations"),)),
             Item((Segment.from_text("ok"),))]
    enc = tokenizer([it.segments[0].text for it in items], padding=True, return_offsets_mapping=True,
                    return_tensors="pt")
    assert int(enc["attention_mask"][0].sum()) > 5  # some of the 3 words have several subwords
    rows = select_rows(enc, items, "words", pool)
    width = enc["input_ids"].shape[1]
    position = torch.arange(2 * width, dtype=torch.float64).view(2, width, 1)
    got = rows.gather([position])[0, :, 0].numpy()
    expected = []
    for b in range(2):
        ids = enc.word_ids(b)  # the tokenizer's own words agree for these inputs
        for w in sorted({i for i in ids if i is not None}):
            where = [b * width + j for j, i in enumerate(ids) if i == w]
            expected.append({"first": where[0], "last": where[-1], "mean": np.mean(where)}[pool])
    np.testing.assert_allclose(got, expected)
    assert rows.item.tolist() == [0, 0, 0, 1] and rows.unit.tolist() == [0, 1, 2, 0]


def test_token_cls_and_mean_rows_with_padding(minilm):
    _, tokenizer = minilm
    items = as_items(["a b c d e", "f"])
    enc = tokenizer([it.segments[0].text for it in items], padding=True, return_offsets_mapping=True,
                    return_tensors="pt")
    width = enc["input_ids"].shape[1]
    position = torch.arange(2 * width, dtype=torch.float64).view(2, width, 1)
    tokens = select_rows(enc, items, "tokens")
    assert len(tokens) == int(enc["attention_mask"].sum())  # padding is left out
    cls = select_rows(enc, items, "cls").gather([position])[0, :, 0].tolist()
    assert cls == [0, width]
    mean = select_rows(enc, items, "mean").gather([position])[0, :, 0].tolist()
    assert mean == [np.mean(range(7)), width + 1]  # [CLS] a b c d e [SEP]; [CLS] f [SEP]


def test_sentence_pair_segments(minilm):
    _, tokenizer = minilm
    items = as_items([SentencePair("The cat sat.", "A dog ran far.", "x")])
    a, b = items[0].segments
    enc = tokenizer([a.text], [b.text], return_offsets_mapping=True, return_tensors="pt")
    both = select_rows(enc, items, "words")
    assert both.unit.tolist() == list(range(7))  # words numbered across both segments
    second = select_rows(enc, items, "words", segment=1)
    assert second.unit.tolist() == [3, 4, 5, 6]
    first_tokens = select_rows(enc, items, "tokens", segment=0)
    assert enc.sequence_ids(0)[first_tokens.unit[0]] == 0 and len(first_tokens) == 4  # the cat sat .


def test_truncated_words_are_counted(minilm):
    _, tokenizer = minilm
    items = as_items([" ".join(["word"] * 20)])
    enc = tokenizer([items[0].segments[0].text], truncation=True, max_length=8,
                    return_offsets_mapping=True, return_tensors="pt")
    rows = select_rows(enc, items, "words")
    assert len(rows) == 6 and rows.words_dropped == 14


def test_as_items_accepts_reader_outputs_and_rejects_others():
    s = Sentence(["I", "ran"], ["PRON", "VERB"], ["PRP", "VBD"], [2, 0], ["nsubj", "root"])
    (item,) = as_items([s])
    assert item.word_labels["upos"] == ["PRON", "VERB"] and item.segments[0].text == "I ran"
    assert len(as_items([("a b", "c")])[0].segments) == 2
    with pytest.raises(TypeError, match="wrap it as"):
        as_items("just one string")
    with pytest.raises(TypeError, match="cannot read an input of type int"):
        as_items([3])
    with pytest.raises(ValueError, match="mixes single sentences and sentence pairs"):
        as_items(["a", ("b", "c")])
    with pytest.raises(ValueError, match="empty"):
        as_items([])

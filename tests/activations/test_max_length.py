"""max_length is applied exactly or refused with the reason: a tokenizer asked for fewer
tokens than its special tokens silently does not truncate, and a length beyond the
model's position table fails mid-run."""

import ftlens
import pytest
from ftlens.data.generated import generate_pairs

PAIR_MINIMUM = "adds 3 special tokens to a sentence pair, so max_length must be at least 5"
SENTENCES = ["the cat sat on the mat today", "a dog ran", "birds sing in the early morning light"]


@pytest.mark.parametrize("max_length", [1, 2])
def test_compare_models_refuses_a_length_below_the_special_tokens(max_length):
    message = (rf"max_length={max_length} leaves no room for text: this tokenizer adds 2 special tokens "
               "to an input, so max_length must be at least 3")
    with pytest.raises(ValueError, match=message):
        ftlens.compare_models("minilm", "minilm", SENTENCES, max_length=max_length, progress=False)


def test_the_smallest_length_is_applied_exactly(tmp_path):
    full = ftlens.compare_models("minilm", "minilm", SENTENCES, progress=False)
    with pytest.warns(UserWarning, match="3 of 3 inputs were longer than 3 tokens and were truncated"):
        cut = ftlens.compare_models("minilm", "minilm", SENTENCES, max_length=3, progress=False)
    assert cut.n_rows == 3 * len(SENTENCES) < full.n_rows
    pairs = [(p.premise, p.hypothesis) for p in generate_pairs(4)]
    with pytest.raises(ValueError, match=PAIR_MINIMUM):
        ftlens.store.write("minilm", pairs, tmp_path / "store", max_length=4, progress=False)


def test_a_length_beyond_the_position_table_is_refused():
    with pytest.raises(ValueError, match="max_length=100000 exceeds the 512 tokens this model takes"):
        ftlens.compare_models("minilm", "minilm", SENTENCES, max_length=100_000, progress=False)


def test_finetune_applies_max_length_or_refuses_it(tmp_path):
    train, evaluation = generate_pairs(16, seed=0), generate_pairs(8, seed=1)
    few = dict(max_steps=1, batch_size=4, progress=False)
    for max_length, message in ((1, PAIR_MINIMUM),
                                (100_000, "exceeds the 512 tokens this model takes")):
        with pytest.raises(ValueError, match=message):
            ftlens.finetune("minilm", "pair", train, evaluation, tmp_path / str(max_length),
                            max_length=max_length, **few)
        assert not (tmp_path / str(max_length) / "options.json").exists()
    short = ftlens.finetune("minilm", "pair", train, evaluation, tmp_path / "5", max_length=5, **few)
    long = ftlens.finetune("minilm", "pair", train, evaluation, tmp_path / "512", max_length=512, **few)
    assert short.metrics["eval_loss"] != long.metrics["eval_loss"]

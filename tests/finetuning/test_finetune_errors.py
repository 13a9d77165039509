"""Bad input to ftlens.finetune gets a clear error naming the problem and the fix, before
any training."""

import dataclasses

import ftlens
import pytest
import transformers
from ftlens.data import DataFormatError, read_conllu
from ftlens.data.generated import generate_pairs, generate_sentences
from ftlens.data.squad import Answer, QAExample

FEW = dict(max_steps=2, batch_size=4, max_length=40, progress=False)


@pytest.fixture(scope="module")
def pairs():
    return generate_pairs(24, seed=0), generate_pairs(12, seed=1)


def test_unknown_task_and_options(pairs, tmp_path):
    tasks = r"\['pair', 'parsing', 'qa', 'sentence'\]"
    with pytest.raises(ValueError, match=rf"unknown task 'ner'; the tasks are {tasks}"):
        ftlens.finetune("minilm", "ner", *pairs, tmp_path)
    unknown = r"unknown option 'learning_rat' \(did you mean 'learning_rate'\?\): FinetuneOptions takes"
    with pytest.raises(TypeError, match=unknown):
        ftlens.finetune("minilm", "pair", *pairs, tmp_path, learning_rat=1e-4)
    with pytest.raises(ValueError, match="option batch_size must be an integer >= 1, got 0"):
        ftlens.finetune("minilm", "pair", *pairs, tmp_path, batch_size=0)
    foreign = r"option\(s\) \['decode'\] do not apply to task 'pair' \(decode is for parsing\)"
    with pytest.raises(ValueError, match=foreign):
        ftlens.finetune("minilm", "pair", *pairs, tmp_path, decode="greedy")
    with pytest.raises(ValueError, match="the train data are pairs: use task 'pair'"):
        ftlens.finetune("minilm", "sentence", *pairs, tmp_path)
    assert not (tmp_path / "options.json").exists()


def test_eval_labels_that_training_never_saw(pairs, tmp_path):
    train, evaluation = pairs
    kept = [p for p in train if p.label != "neutral"]
    with pytest.raises(ValueError, match=r"labels the training examples never have \(\['neutral'\]\)"):
        ftlens.finetune("minilm", "pair", kept, evaluation, tmp_path)


def test_a_training_set_of_one_label(pairs, tmp_path):
    train, evaluation = pairs
    neutral = [p for p in train if p.label == "neutral"]
    with pytest.raises(ValueError, match="every train example has the label 'neutral': a classifier of one"):
        ftlens.finetune("minilm", "pair", neutral, [p for p in evaluation if p.label == "neutral"], tmp_path)


def test_parsing_data_without_heads(tmp_path):
    path = tmp_path / "no_heads.conllu"
    path.write_text("1\tHello\thello\tINTJ\tUH\t_\t_\t_\t_\t_\n2\tthere\tthere\tADV\tRB\t_\t_\t_\t_\t_\n\n")
    message = r"no_heads.conllu:1: head '_' of word 1 is not a number \(a file without dependency trees"
    with pytest.raises(DataFormatError, match=message):
        read_conllu(path)
    train = generate_sentences(8, seed=0)
    headless = [dataclasses.replace(s, heads=[], deprels=[]) for s in train]
    with pytest.raises(ValueError, match="has .* words but 0 heads and 0 relations: parsing needs a head"):
        ftlens.finetune("minilm", "parsing", headless, train, tmp_path, **FEW)
    with pytest.raises(TypeError, match=r"task 'parsing' takes train data as a non-empty list of Sentence"):
        ftlens.finetune("minilm", "parsing", generate_pairs(6), train, tmp_path, **FEW)


def test_qa_answer_not_in_its_context(tmp_path):
    good = QAExample("q1", "Who?", "Ann met Bob.", answers=[Answer("Bob", 8)])
    bad = QAExample("q2", "Who?", "Ann met Bob.", answers=[Answer("Bob", 2)])
    message = r"train question q2: answer 'Bob' is not in its context at character 2 \(found 'n m'\)"
    with pytest.raises(ValueError, match=message):
        ftlens.finetune("minilm", "qa", [good, bad], [good], tmp_path, **FEW, doc_stride=16)
    with pytest.raises(ValueError, match=r"doc_stride \(64\) must be at most half of max_length \(40\)"):
        ftlens.finetune("minilm", "qa", [good], [good], tmp_path, **FEW)
    unanswered = QAExample("q3", "Who?", "Ann met Bob.", is_impossible=True)
    with pytest.raises(ValueError, match="eval question q3 has no answer"):
        ftlens.finetune("minilm", "qa", [good], [unanswered], tmp_path, **FEW, doc_stride=16)


def test_k_larger_than_the_layers(pairs, tmp_path):
    for option in ("freeze_bottom", "reinit_top"):
        with pytest.raises(ValueError, match=rf"{option} must be an integer in 0\.\.6 \(the model has 6"):
            ftlens.finetune("minilm", "pair", *pairs, tmp_path / option, **FEW, **{option: 9})


def test_base_model_without_encoder_layers(pairs, tmp_path):
    config = transformers.BertConfig(hidden_size=32, num_hidden_layers=0, num_attention_heads=2,
                                     intermediate_size=64)
    folder = tmp_path / "no_layers"
    transformers.BertModel(config).save_pretrained(folder)
    transformers.AutoTokenizer.from_pretrained(ftlens.activations.models.packaged_minilm_path()).save_pretrained(folder)
    with pytest.raises(ValueError, match="found no list of transformer blocks in Classifier"):
        ftlens.finetune(str(folder), "pair", *pairs, tmp_path / "run", **FEW)
    assert not (tmp_path / "run" / "options.json").exists()

"""load_model: the packaged alias, fine-tuned checkpoints with a head, clear errors offline."""

import pytest
import torch
from ftlens.activations.models import as_model, default_device, load_model
from transformers import BertConfig, BertForSequenceClassification


def test_minilm_alias_loads_offline(minilm):
    model, tokenizer = minilm
    assert type(model).__name__ == "BertModel" and not model.training
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    assert tokenizer.is_fast
    assert next(model.parameters()).device.type == "cpu"


def test_checkpoint_with_task_head_loads_its_encoder(tmp_path, minilm):
    _, tokenizer = minilm
    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                        vocab_size=tokenizer.vocab_size, num_labels=3)
    torch.manual_seed(0)
    classifier = BertForSequenceClassification(config)
    classifier.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model, _ = load_model(tmp_path, device="cpu")
    assert type(model).__name__ == "BertModel"
    for name, value in classifier.bert.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], value, rtol=0, atol=0)


def test_pair_with_task_head_yields_encoder(minilm):
    _, tokenizer = minilm
    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
    classifier = BertForSequenceClassification(config)
    model, _ = as_model((classifier, tokenizer))
    assert model is classifier.bert


def test_uncached_hub_name_offline_says_how_to_pass_a_path():
    with pytest.raises(OSError, match="pass the folder path"):
        load_model("no-such-org/no-such-model-xyz")


def test_missing_local_folder():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model("./no/such/folder")


def test_bad_model_argument():
    with pytest.raises(TypeError, match="hub name, a folder path"):
        as_model(42)


def test_default_device_is_cpu_without_cuda():
    assert default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")

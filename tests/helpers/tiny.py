"""Tiny random encoders of each supported architecture, built from configs (no download)."""

import torch
from transformers import (
    BertConfig,
    BertModel,
    DebertaV2Config,
    DebertaV2Model,
    DistilBertConfig,
    DistilBertModel,
    ElectraConfig,
    ElectraModel,
    RobertaConfig,
    RobertaModel,
)

SIZES = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=37, vocab_size=120)


def tiny_models():
    """{name: model} of tiny random encoders in eval mode."""
    torch.manual_seed(0)
    configs = {
        "bert": (BertModel, BertConfig(**SIZES)),
        "roberta": (RobertaModel, RobertaConfig(**SIZES, pad_token_id=1)),
        "distilbert": (DistilBertModel,
                       DistilBertConfig(dim=32, n_layers=3, n_heads=2, hidden_dim=37, vocab_size=120)),
        "electra": (ElectraModel, ElectraConfig(embedding_size=16, **SIZES)),
        "deberta-v2": (DebertaV2Model, DebertaV2Config(**SIZES, relative_attention=True, position_buckets=8,
                                                       pos_att_type=["p2c", "c2p"])),
    }
    return {name: cls(cfg).eval() for name, (cls, cfg) in configs.items()}


def byte_level_bpe(texts, folder):
    """A RoBERTa-style byte-level BPE tokenizer trained on ``texts`` (saved in ``folder``)."""
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer(trim_offsets=True)
    bpe.train_from_iterator(texts, vocab_size=300, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe._tokenizer.post_processor = RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True)
    path = folder / "tokenizer.json"
    bpe.save(str(path))
    return RobertaTokenizerFast(tokenizer_file=str(path))

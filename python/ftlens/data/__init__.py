"""Data readers: CoNLL-U, NLI sentence pairs (TSV/JSONL), SQuAD JSON, plain text, hub data
sets, and a built-in generated corpus. Malformed input raises DataFormatError (file:line).
"""

from .conllu import Sentence, format_conllu, read_conllu
from .errors import DataFormatError
from .generated import generate_pairs, generate_sentences
from .hub import load_hub
from .pairs import PairData, SentencePair, read_pairs
from .squad import Answer, QAExample, read_squad
from .text import read_text

__all__ = [
    "Answer",
    "DataFormatError",
    "PairData",
    "QAExample",
    "Sentence",
    "SentencePair",
    "format_conllu",
    "generate_pairs",
    "generate_sentences",
    "load_hub",
    "read_conllu",
    "read_pairs",
    "read_squad",
    "read_text",
]

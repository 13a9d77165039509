"""Writes a small activation store; the store tests run it as a subprocess (and kill it).

usage: python store_writer.py PATH [--slow]
"""

import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import ftlens  # noqa: E402
from ftlens.activations.capture import layer_blocks  # noqa: E402
from ftlens.data import generate_sentences  # noqa: E402

N_SENTENCES, SHARD_SIZE = 96, 8
WINDOW_BYTES = 2_000_000  # about two shards of words: a killed write has written some shards


def main(path: str, slow: bool) -> None:
    model, tokenizer = ftlens.load_model("minilm", device="cpu")
    if slow:  # long enough per shard for the test to kill the process midway
        layer_blocks(model)[0].register_forward_hook(lambda *args: time.sleep(0.25))
    ftlens.store.write((model, tokenizer), generate_sentences(N_SENTENCES, seed=9), path, rows="words",
                       shard_size=SHARD_SIZE, batch_size=4, window_bytes=WINDOW_BYTES, progress=False)


if __name__ == "__main__":
    main(sys.argv[1], "--slow" in sys.argv)

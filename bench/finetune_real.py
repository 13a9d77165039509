"""The real fine-tuning runs of docs/RESULTS.md: MiniLM on this machine's CPU.

    python bench/finetune_real.py parsing OUT_DIR [--epochs E] [--max-steps N]
    python bench/finetune_real.py nli OUT_DIR
    python bench/finetune_real.py qa OUT_DIR

Data from $FTLENS_DATA_DIR: UD English EWT train -> dev (parsing); the MNLI train
subset -> dev_matched (nli); SQuAD v1.1 dev split by article, the first 80% of the
articles for training and the rest for evaluation (qa: only dev is here). Each run is an
ftlens.finetune run folder under OUT_DIR (rerun to resume); the wall time and final
metrics are written to OUT_DIR/<task>.json. --reevaluate scores a finished run's saved
model again with the code as it is now (ftlens.finetuning.evaluate).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import ftlens
from ftlens.data import read_conllu, read_pairs, read_squad

SETTINGS = {
    # Parsing: the biaffine head learns at 1e-3, the encoder at 5e-5; long sentences fit in 512 tokens.
    "parsing": dict(learning_rate=5e-5, head_learning_rate=1e-3, epochs=3, batch_size=32, max_length=512,
                    warmup_ratio=0.1),
    "nli": dict(learning_rate=5e-5, epochs=1, batch_size=32, max_length=128),
    "qa": dict(learning_rate=1e-4, epochs=1, batch_size=32, max_length=192, doc_stride=64,
               max_answer_length=30),
}


def split_by_article(examples, train_fraction: float = 0.8):
    """SQuAD questions split by article title in file order: no context in both halves."""
    titles = list(dict.fromkeys(e.title for e in examples))
    cut = set(titles[: round(len(titles) * train_fraction)])
    return [e for e in examples if e.title in cut], [e for e in examples if e.title not in cut]


def data(name: str, root: Path):
    if name == "parsing":
        return "parsing", (read_conllu(root / "ud_en_ewt/en_ewt-ud-train.conllu"),
                           read_conllu(root / "ud_en_ewt/en_ewt-ud-dev.conllu"))
    if name == "nli":
        return "pair", (read_pairs(root / "mnli/train_subset_20k_tokenized.tsv"),
                        read_pairs(root / "mnli/dev_matched.jsonl"))
    return "qa", split_by_article(read_squad(root / "squad_v1.1/dev-v1.1.json"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", choices=sorted(SETTINGS))
    parser.add_argument("out", type=Path)
    parser.add_argument("--epochs", type=float)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--reevaluate", action="store_true")
    args = parser.parse_args()
    options = dict(SETTINGS[args.run])
    if args.epochs:
        options["epochs"] = args.epochs
    if args.max_steps:
        options["max_steps"] = args.max_steps
    task, (train, evaluation) = data(args.run, Path(os.environ.get("FTLENS_DATA_DIR", "../shared/data")))
    start = time.perf_counter()
    result = ftlens.finetune("minilm", task, train, evaluation, args.out / args.run, **options)
    summary = {"run": args.run, "task": task, "train": len(train), "eval": len(evaluation),
               "options": options,
               "wall_s": round(time.perf_counter() - start, 1), "reused": result.reused,
               "final": result.metrics, "history": result.history}
    if args.reevaluate:
        import transformers
        from ftlens.finetuning import evaluate, load_task_model

        start = time.perf_counter()
        tokenizer = transformers.AutoTokenizer.from_pretrained(result.model_dir)
        model = load_task_model(result.model_dir)
        summary["reevaluated"] = evaluate(model, task, evaluation, tokenizer, **options)
        summary["reevaluated"]["wall_s"] = round(time.perf_counter() - start, 1)
    keys = ("run", "train", "eval", "wall_s", "final") + (("reevaluated",) if args.reevaluate else ())
    name = f"{args.run}-reevaluated" if args.reevaluate else args.run
    (args.out / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: summary[k] for k in keys}, indent=2))


if __name__ == "__main__":
    main()

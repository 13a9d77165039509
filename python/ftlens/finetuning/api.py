"""``ftlens.finetune``: one fine-tuning run, or one per seed of a procedure."""

from __future__ import annotations

from .options import FinetuneOptions
from .run import finetune_run
from .seeds import finetune_seeds


def finetune(base, task: str, train, eval, out_dir, *, options: FinetuneOptions | None = None,  # noqa: A002
             progress: bool = True, keep_checkpoints: bool = False, seeds=None, workers: int | None = None,
             track=None, **overrides):
    """Fine-tunes ``base`` (hub name, folder or "minilm") on ``task`` and evaluates on
    ``eval`` after each epoch (or every ``eval_steps``).

    Args:
        base: the pre-trained encoder: "minilm" (the packaged all-MiniLM-L6-v2), a Hugging
            Face hub name or a local folder.
        task: "sentence" / "pair" (``ftlens.data.read_pairs``: single sentences such as
            SST-2, or pairs such as MNLI and RTE), "parsing" (``read_conllu``: a biaffine
            parser scored by LAS) or "qa" (``read_squad``, v1.1, scored by F1).
        train, eval: the task's examples (lists as its reader returns them).
        out_dir: the run folder: a finished run with the same settings and data is reused,
            an interrupted one resumes from its last checkpoint, one with other settings
            is refused, and so is a second process while one trains there.
        options: a ``FinetuneOptions``; keyword ``overrides`` replace its fields
            (``finetune(..., epochs=1, learning_rate=3e-5)``).
        progress: tqdm bars; the Trainer's logs go to the ``ftlens.finetuning`` logger.
        keep_checkpoints: keep the Trainer's checkpoints (optimizer states, about 4 times
            the model's size) once the run has finished; by default they are deleted then,
            since ``model/`` holds the result and a finished run never resumes.
        seeds: several runs of the procedure, one per seed (``out_dir/seed-<s>/``), side by
            side in up to ``workers`` processes (``ftlens.finetuning.finetune_seeds``).
        track: record what the layers do while the run trains (``TrackLayers``): the
            tracking set (sentences, pairs, a reader's output), or ``{"data": ...,
            "every": 50, "measures": ("rsa", "cka"), ...}`` (``TrackOptions``); the run
            folder gets ``trajectory.json`` (``ftlens.finetuning.load_trajectory``).

    Returns:
        The run's ``FinetuneResult``: ``metrics`` (``eval_<metric>``, the last
        evaluation), ``history`` (every evaluation), ``model_dir``, ``scores()`` (per eval
        example). With ``seeds``: ``SeedRuns``, every seed's result.
    """
    if seeds is not None:
        return finetune_seeds(base, task, train, eval, out_dir, seeds, options=options, workers=workers,
                              progress=progress, keep_checkpoints=keep_checkpoints, track=track, **overrides)
    if workers is not None:
        raise ValueError("workers= runs several seeds side by side: give seeds=[...] with it")
    return finetune_run(base, task, train, eval, out_dir, options=options, progress=progress,
                        keep_checkpoints=keep_checkpoints, track=track, **overrides)

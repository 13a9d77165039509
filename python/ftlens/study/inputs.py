"""A study's data entries read into examples, and the fingerprints that key its stages."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from .. import data as readers
from .._util import fingerprint
from .._util.options import from_mapping
from ..activations.models import load_model, model_source, resolve
from .config import DataSpec

READERS = {
    "conllu": readers.read_conllu,
    "pairs": readers.read_pairs,
    "squad": readers.read_squad,
    "text": readers.read_text,
}


def load(spec: DataSpec):
    """The examples a data entry names (``limit`` of a file's, from the ``start``-th; a random
    ``sample`` of those, in file order)."""
    if spec.generated in ("sentences", "ambiguous-sentences"):
        return readers.generate_sentences(spec.n, seed=spec.seed, ambiguous=spec.generated != "sentences")
    if spec.generated == "pairs":
        return readers.generate_pairs(spec.n, seed=spec.seed)
    examples = READERS[spec.format](spec.path)
    start = spec.start or 0
    chosen = examples[start:] if spec.limit is None else examples[start : start + spec.limit]
    if not chosen:
        raise ValueError(f"{spec.path} has {len(examples)} examples: none left from start={start}")
    if spec.sample is not None:
        if spec.sample > len(chosen):
            raise ValueError(f"sample={spec.sample} is more than the {len(chosen)} examples of {spec.path} "
                             "it draws from: lower it")
        keep = np.sort(np.random.default_rng(spec.seed).choice(len(chosen), spec.sample, replace=False))
        chosen = [chosen[i] for i in keep]
    return chosen


class Examples:
    """Each data entry read once, with its fingerprint."""

    def __init__(self) -> None:
        self._loaded: dict[DataSpec, tuple] = {}

    def __call__(self, spec: DataSpec):
        if spec not in self._loaded:
            examples = load(spec)
            self._loaded[spec] = (examples, fingerprint.of_examples(examples))
        return self._loaded[spec][0]

    def fingerprint(self, spec: DataSpec) -> dict:
        self(spec)
        return self._loaded[spec][1]


def folder_fingerprint(name_or_path: str | os.PathLike) -> str:
    """A model folder's weights and config, or the hub name when it is not a folder."""
    folder = Path(resolve(name_or_path))
    if not folder.is_dir():
        return fingerprint.of_json({"hub": str(name_or_path)})
    return fingerprint.of_model_folder(folder)


def check_inputs(config, examples: Examples) -> None:
    """Everything a study can check before its first stage, as StudyConfigErrors naming the
    key: the base model (and checkpoints) can be loaded, every data entry reads (the whole
    file: not UTF-8, truncated or empty files fail here, not after hours of fine-tuning),
    each task's data and options fit its task, probe tasks exist for the probe data and
    probe options are valid, the tracking set has inputs, every evaluation set has inputs
    enough for the jackknife's groups, and ablation ks lie in 0..L."""
    from transformers import AutoConfig

    from ..activations.align import as_items
    from ..activations.store import label_schema
    from ..activations.stream import check_max_length, max_input_length
    from ..finetuning.options import FinetuneOptions
    from ..finetuning.run import get_task
    from ..probes.tasks import supported
    from .config import StudyConfigError

    @contextlib.contextmanager
    def at(where: str):
        try:
            yield
        except (ValueError, TypeError, OSError) as err:
            if isinstance(err, StudyConfigError):
                raise
            raise StudyConfigError(config.source, where, str(err)) from None

    with at("base"):
        source = model_source(config.base)
        layers = AutoConfig.from_pretrained(source).num_hidden_layers
    for spec in config.tasks:
        where = f"tasks.{spec.name}"
        if spec.checkpoint is not None:
            with at(f"{where}.checkpoint"):
                model_source(spec.checkpoint)
        if spec.train is None:
            continue
        with at(f"{where}.train"):
            train = examples(spec.train)
        with at(f"{where}.eval"):
            evaluation = examples(spec.eval)
        with at(f"{where}.options"):
            opts = from_mapping(FinetuneOptions, spec.options)
        with at(where):
            get_task(spec.task).check(train, evaluation, opts)
    if config.track is not None:
        with at("track.data"):
            as_items(examples(config.track.data))
    options = config.compare.options
    for entry in config.evaluation:
        with at(f"evaluation.{entry.name}.data"):
            n = len(examples(entry.data))
        if (options.ci is not None or options.draws is not None) and n < options.ci_groups:
            kind = "jackknife" if options.draws is None else "resampled"
            raise StudyConfigError(config.source, "compare.ci_groups", (
                f"{options.ci_groups} {kind} groups, but evaluation.{entry.name} has {n} inputs: lower "
                f"ci_groups to at most {n} (better, to {max(2, n // 5)}: 5 inputs or more per group), "
                "or add inputs"))
    max_length = config.compare.capture.max_length
    if max_length is not None:
        with at("compare.max_length"):
            base, tokenizer = load_model(source, device="cpu")
            pairs = any(len(as_items(examples(e.data)[:1])[0].segments) == 2 for e in config.evaluation)
            check_max_length(max_length, tokenizer, max_input_length(base, tokenizer), pairs)
    if config.probes is not None:
        p = config.probes
        for name, spec in [("train", p.train), *((f"eval.{k}", v) for k, v in p.eval.items())]:
            with at(f"probes.{name}"):
                items = as_items(examples(spec)[:1])
            tasks = supported(label_schema(items, p.rows), p.rows)
            for i, task in enumerate(p.tasks):
                with at(f"probes.tasks[{i}]"):
                    if task not in tasks:
                        raise ValueError(f"{task!r} is not a probe task of the probes.{name} data with "
                                         f"rows {p.rows!r}; its tasks are {tasks}")
    for i, ablation in enumerate(config.ablations):
        with at(f"ablations[{i}].ks"):
            bad = [k for k in ablation.ks or () if not 0 <= k <= layers]
            if bad:
                raise ValueError(f"{bad} outside 0..{layers} (the base model has {layers} layers)")
        with at(f"ablations[{i}].options"):
            from_mapping(FinetuneOptions, {**config.task(ablation.task).options, **ablation.options})

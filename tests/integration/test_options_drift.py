"""One options story: every field of every options dataclass is accepted by the study file
and (where the command has the entry point) by the CLI, so neither can drift again."""

import dataclasses
import typing

import pytest
from ftlens import CaptureOptions, CompareOptions, FinetuneOptions, ProbeOptions
from ftlens._util.options import from_arguments
from ftlens.cli import build_parser
from ftlens.finetuning import TrackOptions
from ftlens.study import parse_config

# values a generic rule would get wrong (they depend on another field)
SPECIAL = {"doc_stride": 32, "ci": 0.9, "l2": 1e-3, "layers": (0, 1), "device": "cpu", "measures": ("cka",),
           "alphas": (1.0, 2.0), "head_learning_rate": 1e-4, "max_length": 96}


def other_value(f: dataclasses.Field, hint):
    """A valid value of the field other than its default."""
    if f.name in SPECIAL:
        return SPECIAL[f.name]
    if "choices" in f.metadata:
        return next(c for c in f.metadata["choices"] if c != f.default and c is not None)
    if hint is bool:
        return not f.default
    kinds = [t for t in (hint, *typing.get_args(hint)) if t in (int, float)]
    if int in kinds:
        return 2 if f.default is None else f.default + 1
    if float in kinds:
        return 0.5 if f.default is None else f.default / 2
    raise AssertionError(f"no value rule for {f.name}: add it to SPECIAL")


def changed(cls) -> dict:
    hints = typing.get_type_hints(cls)
    return {f.name: other_value(f, hints[f.name]) for f in dataclasses.fields(cls)}


def as_flags(values: dict, prefix: str = "") -> list[str]:
    out = []
    for name, value in values.items():
        flag = "--" + (f"{prefix}_{name}" if prefix else name).replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + flag[2:])
        else:
            out += [flag, *map(str, value if isinstance(value, tuple) else (value,))]
    return out


@pytest.mark.parametrize("cls", [CaptureOptions, CompareOptions, ProbeOptions, FinetuneOptions, TrackOptions])
def test_every_field_has_a_changed_value_the_dataclass_accepts(cls):
    values = changed(cls)
    assert [f.name for f in dataclasses.fields(cls)] == list(values)
    built = cls(**values)
    assert all(getattr(built, k) != getattr(cls(), k) for k in values)


def _study(**sections) -> dict:
    pairs = {"generated": "pairs", "n": 20}
    study = {"name": "drift", "base": "minilm",
             "tasks": {"nli": {"task": "pair", "train": pairs, "eval": pairs}},
             "evaluation": {"set": {"data": {"generated": "sentences", "n": 20}}}}
    return {**study, **sections}


def test_the_study_accepts_every_option_of_every_dataclass(tmp_path):
    compare, capture = changed(CompareOptions), changed(CaptureOptions)
    probe, tune = changed(ProbeOptions), changed(FinetuneOptions)
    listed = lambda values: {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}  # noqa: E731
    study = _study(compare={**listed(compare), **listed(capture)},
                   probes={"train": {"generated": "sentences", "n": 20},
                           "eval": {"dev": {"generated": "sentences", "n": 20}}, "options": listed(probe)})
    study["tasks"]["nli"]["options"] = listed(tune)
    study["ablations"] = [{"kind": "freeze", "task": "nli", "options": listed(tune)}]
    config = parse_config(study, folder=tmp_path)
    assert config.compare.options == CompareOptions(**compare)
    assert config.compare.capture == CaptureOptions(**capture)
    assert config.probes.options == ProbeOptions(**probe)
    assert FinetuneOptions(**config.tasks[0].options) == FinetuneOptions(**tune)
    assert FinetuneOptions(**config.ablations[0].options) == FinetuneOptions(**tune)


COMPARE = ["compare", "minilm", "m", "d.conllu", "--out", "o"]
STORE = ["store", "minilm", "d.conllu", "--out", "o"]


@pytest.mark.parametrize(("command", "cls"), [(["probe", "train", "eval"], ProbeOptions),
                                              (["finetune", "minilm", "pair", "a", "b", "--out", "o"],
                                               FinetuneOptions),
                                              (["ablate", "freeze", "minilm", "pair", "a", "b", "--out", "o"],
                                               FinetuneOptions),
                                              (COMPARE, CompareOptions), (COMPARE, CaptureOptions),
                                              (STORE, CaptureOptions)])
def test_the_cli_accepts_every_option_of_its_dataclass(command, cls):
    values = changed(cls)
    args = build_parser().parse_args(command + as_flags(values))
    assert cls(**from_arguments(cls, args)) == cls(**values)
    assert from_arguments(cls, build_parser().parse_args(command)) == {}  # unset flags leave the defaults


def test_the_finetune_command_accepts_every_tracking_option():
    command = ["finetune", "minilm", "pair", "a", "b", "--out", "o", "--track", "t.tsv"]
    values = changed(TrackOptions)
    args = build_parser().parse_args(command + as_flags(values, prefix="track") + ["--batch-size", "7"])
    assert TrackOptions(**from_arguments(TrackOptions, args, prefix="track")) == TrackOptions(**values)
    assert from_arguments(FinetuneOptions, args) == {"batch_size": 7}  # the run's own flag stays its own

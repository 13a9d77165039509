"""The study file's key reference, written from the dataclasses the file is read into, so
that it cannot drift from what the reader accepts: ``python -m ftlens.study.reference``
prints it (docs/study-reference.md is its output, checked by a test)."""

from __future__ import annotations

import dataclasses
import typing

from ..activations.options import CaptureOptions
from ..compare.options import CompareOptions
from ..finetuning.options import FinetuneOptions
from ..finetuning.tracking import TrackOptions
from ..probes.options import ProbeOptions
from . import config

# fields the file does not set by a key of their own: the file's path and text, and the
# names that are the keys of tasks and evaluation
INTERNAL = ("source", "raw")
NAMED = ("name",)


def _type(hint) -> str:
    text = str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")
    return text.replace("ftlens.study.config.", "").replace("NoneType", "None").replace("|", "\\|")


def _default(f: dataclasses.Field, overrides: dict) -> str:
    if f.name in overrides:
        value = overrides[f.name]
    elif f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required" if "(required)" in f.metadata.get("help", "") else "-"
    if dataclasses.is_dataclass(value):
        return "see below"
    if isinstance(value, tuple):
        value = list(value)
    return f"`{value}`"


def _rows(cls, overrides: dict | None, skip: tuple[str, ...]) -> list[str]:
    hints = typing.get_type_hints(cls)
    rows = ["| key | type | default | choices | meaning |", "|---|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        choices = f.metadata.get("choices")
        shown = ", ".join(f"`{c}`" for c in choices) if choices else ""
        meaning = f.metadata.get("help", "").replace("|", "\\|").replace("<", "&lt;")
        rows.append(f"| `{f.name}` | `{_type(hints[f.name])}` | {_default(f, overrides or {})} | {shown} | "
                    f"{meaning} |")
    return rows


SECTIONS = (
    ("The top level", config.StudyConfig, None, INTERNAL, "A study file is one YAML mapping of these keys."),
    ("Data entries", config.DataSpec, None, (),
     "Wherever a key takes data (`train`, `eval`, `data`): a path, or a mapping of these keys. "
     "Give `path` or `generated`, not both."),
    ("`tasks.<name>`", config.TaskSpec, None, NAMED,
     "One entry per task to fine-tune, under a name of your choice."),
    ("`tasks.<name>.options` and `ablations[i].options`", FinetuneOptions, None, (),
     "Fine-tuning options (`ftlens.FinetuneOptions`); an ablation's options override its task's."),
    ("`evaluation.<name>`", config.EvalSet, None, NAMED,
     "One entry per set of inputs to compare the base and each fine-tuned model on."),
    ("`compare`", config.CompareSpec, None, ("options", "capture"),
     "`heatmaps`, and the fields of `ftlens.CompareOptions` and `ftlens.CaptureOptions` side by side "
     "(below), e.g. `compare: {measures: [rsa, cka], ci: 0.95, rows: words}`."),
    ("`compare`: comparison options", CompareOptions, config.STUDY_COMPARE, (),
     "The study's defaults differ from `compare_models`' where shown: the paper's RSA, with 95% intervals."),
    ("`compare`: capture options", CaptureOptions, None, (), ""),
    ("`probes`", config.ProbeSpec, None, (), "Probes of every layer of the base and each fine-tuned model."),
    ("`probes.options`", ProbeOptions, None, (), "The options of `ftlens.probe` (`ftlens.ProbeOptions`)."),
    ("`ablations[i]`", config.AblationSpec, None, (), "A list; each entry a sweep over layer counts k."),
    ("`isotropy`", config.IsotropySpec, None, (),
     "Isotropy of both models per task, on its detail set; `isotropy: false` turns it off."),
    ("`track`", config.TrackSpec, None, ("options",),
     "What each fine-tuned task's layers do while it trains: `data`, and the fields of "
     "`ftlens.finetuning.TrackOptions` side by side (below), e.g. `track: {data: dev.conllu, every: 50}`."),
    ("`track`: tracking options", TrackOptions, None, (), ""),
)


def markdown() -> str:
    """The reference as a Markdown page."""
    lines = ["# Study file reference", "",
             "Every key a study file (`ftlens run study.yaml`) may hold, generated from the dataclasses the "
             "file is read into (`python -m ftlens.study.reference`). An unknown key is refused with the "
             "closest valid one."]
    for title, cls, overrides, skip, text in SECTIONS:
        lines += ["", f"## {title}", ""] + ([text, ""] if text else []) + _rows(cls, overrides, skip)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")

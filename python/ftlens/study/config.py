"""A study's YAML file, validated up front into dataclasses.

Every error names the bad key, its path in the file (``compare.measures[1]``) and the
valid choices. Data paths may use environment variables (``$FTLENS_DATA_DIR``) and are
read relative to the YAML file's folder. The file's shape::

    name: my-study                  # the run folder refuses another study's name
    base: minilm                    # hub name, folder or "minilm"
    out: study_out                  # run folder (``ftlens run --out`` overrides)
    seeds: [0, 1, 2]                # each task fine-tuned once per seed (or a count: 3)
    tasks:                          # what to fine-tune (or an already fine-tuned model)
      nli: {task: pair, train: mnli.tsv, eval: dev.tsv, options: {epochs: 1}}
      parsing: {task: parsing, checkpoint: runs/parsing/model}
    evaluation:                     # sentences to compare base vs fine-tuned on
      ewt: {data: {path: ewt-dev.conllu, limit: 500}, in_domain: [parsing]}
    compare: {measures: [rsa, cka], ci: 0.95}
    probes: {tasks: [upos, deprel], train: ewt-train.conllu, eval: {ewt: ewt-dev.conllu}}
    ablations: [{kind: freeze, task: nli, ks: [0, 2, 4]}]
    isotropy: {rows: [tokens, cls]}

A data entry is a path, or a mapping: ``{path, format, limit}`` (format inferred from
the suffix: .conllu, .tsv/.jsonl/.csv (pairs), .json (SQuAD), .txt; ``limit`` examples
from the ``start``-th, e.g. to split one file; a random ``sample`` of them, drawn with
``seed``) or ``{generated: sentences | pairs |
ambiguous-sentences, n, seed}`` (the built-in corpus; "ambiguous-sentences": nouns that
are also verbs, so a word's tag depends on its context).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._util.options import from_mapping, names, option
from ..activations.align import ROWS
from ..activations.options import CaptureOptions
from ..compare.options import CompareOptions
from ..finetuning.ablate import KINDS as ABLATIONS
from ..finetuning.layers import SIDES
from ..finetuning.options import FinetuneOptions
from ..finetuning.run import TASKS
from ..finetuning.seeds import check_seeds
from ..finetuning.tracking import TrackOptions
from ..probes.options import ProbeOptions
from ..probes.tasks import DEFAULT_TASKS as PROBE_TASKS

FORMATS = ("conllu", "pairs", "squad", "text")
SUFFIX_FORMATS = {
    ".conllu": "conllu",
    ".tsv": "pairs",
    ".jsonl": "pairs",
    ".csv": "pairs",
    ".json": "squad",
    ".txt": "text",
}
GENERATED = ("sentences", "pairs", "ambiguous-sentences")


class StudyConfigError(ValueError):
    """A study file that cannot run, with where in the file and what would fit."""

    def __init__(self, source: str, where: str, problem: str) -> None:
        self.where = where
        super().__init__(f"{source}: {where}: {problem}" if where else f"{source}: {problem}")


@dataclass(frozen=True)
class DataSpec:
    """Where examples come from: a file (``path``, ``format``; ``limit`` examples from the
    ``start``-th; a random ``sample`` of them, drawn with ``seed``) or the built-in generated
    corpus (``generated`` = "sentences" | "pairs" | "ambiguous-sentences", ``n``, ``seed``)."""

    path: str | None = option(None, help="a data file (variables expand; relative to the study file)")
    format: str | None = option(None, choices=FORMATS,
                                help="default: from the suffix (.conllu, .tsv/.jsonl/.csv, .json, .txt)")
    start: int | None = option(None, help="the first example taken (0-based), e.g. to split one file")
    limit: int | None = option(None, help="at most this many examples from start on")
    sample: int | None = option(None, help="a random sample of this many of those examples (drawn with seed, "
                                           "kept in file order)")
    generated: str | None = option(None, choices=GENERATED, help="the built-in corpus instead of a file")
    n: int = option(300, help="generated examples")
    seed: int = option(0, help="of the generated corpus, or of the sample")

    def describe(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class TaskSpec:
    """One fine-tuning task: its kind (``ftlens.finetuning.TASKS``), data and options,
    or a ``checkpoint`` folder (a finished run's model/) used as is; a checkpoint's train
    and eval data (optional) serve only its ablations."""

    name: str
    task: str = field(metadata={"choices": tuple(sorted(TASKS)), "help": "the task kind (required)"})
    train: DataSpec | None = option(None, help="training data (required unless checkpoint)")
    eval: DataSpec | None = option(None, help="evaluation data, scored after each epoch")
    options: dict = field(default_factory=dict, metadata={"help": "fine-tuning options (below)"})
    checkpoint: str | None = option(None, help="a fine-tuned model folder used as is, instead of training")
    against: str | None = option(None, help="another task on the same eval data: the report compares this "
                                            "one with it, paired by seed (the Multi-Bootstrap)")


@dataclass(frozen=True)
class EvalSet:
    """Sentences to compare on; in-domain for the tasks named, out-of-domain for the rest."""

    name: str
    data: DataSpec = field(metadata={"help": "the inputs (required)"})
    in_domain: tuple[str, ...] = option((), help="the tasks it is in-domain for (out-of-domain for the rest)")


# compare_models' defaults, except where a study differs: the paper's RSA, with 95% intervals
STUDY_COMPARE = {"measures": ("rsa",), "ci": 0.95}
SEED_DRAWS = 1000  # compare.draws in a study with seeds, unless given


@dataclass(frozen=True)
class CompareSpec:
    """The study's ``compare`` section: ``CompareOptions`` and ``CaptureOptions`` fields side
    by side (``compare: {measures: [rsa, cka], ci: 0.95, rows: words}``), and ``heatmaps``
    (a layer x layer CKA pass per task on its first in-domain set)."""

    options: CompareOptions = CompareOptions(**STUDY_COMPARE)
    capture: CaptureOptions = CaptureOptions()
    heatmaps: bool = option(True, help="a layer x layer CKA pass per task on its first in-domain set")


@dataclass(frozen=True)
class ProbeSpec:
    """Probes of every layer of the base and each fine-tuned model: stores of ``train``
    and of each ``eval`` set (name -> data), ``in_domain`` naming the in-domain ones;
    ``rows`` and ``dtype`` of the stores; ``options`` (``ProbeOptions``) of ``ftlens.probe``."""

    train: DataSpec = field(metadata={"help": "the probes' training data (required)"})
    eval: dict[str, DataSpec] = field(metadata={"help": "name -> data: the sets scored on (required)"})
    tasks: tuple[str, ...] = option(PROBE_TASKS, help="store labels (upos, xpos, deprel), edge:<label>, arc, "
                                                      "distance, depth")
    in_domain: tuple[str, ...] = option((), help="the eval sets that are in-domain")
    rows: str = option("words", choices=ROWS, help="the rows of the stores")
    dtype: str = option("float16", choices=("float16", "float32"), help="of the stores")
    options: ProbeOptions = field(default=ProbeOptions(), metadata={"help": "ftlens.probe's options (below)"})


@dataclass(frozen=True)
class AblationSpec:
    kind: str = field(metadata={"choices": ABLATIONS, "help": "the sweep (required)"})
    task: str = field(metadata={"help": "the name of one of the study's tasks (required)"})
    ks: tuple[int, ...] | None = option(None, help="layer counts (default: 0..L)")
    side: str = option("above", choices=SIDES, help="revert: the layers above k, or up to k")
    options: dict = field(default_factory=dict, metadata={"help": "fine-tuning options over the task's own"})


@dataclass(frozen=True)
class IsotropySpec:
    rows: tuple[str, ...] = option(("tokens", "cls"), choices=ROWS, help="one isotropy pass per rows kind")
    top_k: int = option(10, help="the top dimensions of the variance share")


@dataclass(frozen=True)
class TrackSpec:
    """Each fine-tuned task's layers recorded while it trains, on the inputs of ``data``
    (``ftlens.finetune(..., track=...)``), with ``TrackOptions``' fields beside it."""

    data: DataSpec = field(metadata={"help": "the tracking set (required)"})
    options: TrackOptions = field(default=TrackOptions(), metadata={"help": "the tracking options (below)"})


@dataclass(frozen=True)
class StudyConfig:
    name: str = field(metadata={"help": "the study's name; its run folder refuses another (required)"})
    base: str = field(metadata={"help": 'the base model: "minilm", a hub name or a folder (required)'})
    out: str = field(metadata={"help": "the run folder (default: <name>_out; ftlens run --out overrides)"})
    tasks: tuple[TaskSpec, ...] = field(metadata={"help": "name -> task (required)"})
    evaluation: tuple[EvalSet, ...] = field(metadata={"help": "name -> set of inputs (required)"})
    compare: CompareSpec = field(default=CompareSpec(), metadata={"help": "how to compare (below)"})
    probes: ProbeSpec | None = option(None, help="probes of every layer (below; none when left out)")
    ablations: tuple[AblationSpec, ...] = option((), help="a list of sweeps (below)")
    isotropy: IsotropySpec | None = field(default=IsotropySpec(), metadata={"help": "below; false: none"})
    seeds: tuple[int, ...] | None = option(None, help="fine-tune each task once per seed (a list, or a count "
                                                      "n: 0..n-1); none: one run, at options.seed")
    track: TrackSpec | None = option(None, help="record the layers while each task trains (below; none when "
                                                "left out)")
    source: str = "<study>"
    raw: dict = field(default_factory=dict, compare=False)  # the file as read, for results.json

    def task(self, name: str) -> TaskSpec:
        return next(t for t in self.tasks if t.name == name)


# -- reading ---------------------------------------------------------------------------
class _Reader:
    """Walks the YAML mapping with the path of each value, for the messages."""

    def __init__(self, source: str, folder: Path) -> None:
        self.source, self.folder = source, folder

    def fail(self, where: str, problem: str):
        raise StudyConfigError(self.source, where, problem)

    def mapping(self, value, where: str, allowed, required=()) -> dict:
        if not isinstance(value, dict):
            self.fail(where, f"expected a mapping with keys {sorted(allowed)}, got {_kind(value)}")
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.fail(_join(where, key), f"unknown key{hint}; valid keys: {sorted(allowed)}")
        for key in required:
            if key not in value:
                self.fail(_join(where, key), "missing (required)")
        return value

    def choice(self, value, where: str, choices) -> str:
        if value not in choices:
            close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.fail(where, f"{value!r} is not valid{hint}; choose from {list(choices)}")
        return value

    def choices(self, value, where: str, choices) -> tuple:
        values = [value] if isinstance(value, str) else self.listed(value, where)
        return tuple(self.choice(v, f"{where}[{i}]", choices) for i, v in enumerate(values))

    def listed(self, value, where: str) -> list:
        if not isinstance(value, (list, tuple)):
            self.fail(where, f"expected a list, got {_kind(value)}")
        return list(value)

    def typed(self, value, where: str, kind, positive: bool = False):
        ok = isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            self.fail(where, f"expected {kind.__name__}, got {_kind(value)}")
        if positive and value <= 0:
            self.fail(where, f"must be positive, got {value!r}")
        return value

    def path(self, value, where: str, must_exist: bool = True) -> str:
        text = self.typed(value, where, str)
        missing = [m for m in re.findall(r"\$\{?(\w+)\}?", text) if m not in os.environ]
        if missing:
            self.fail(
                where,
                f"{text!r} uses ${missing[0]}, which is not set: set it (e.g. "
                f"export {missing[0]}=...) or write the path out",
            )
        path = Path(os.path.expanduser(os.path.expandvars(text)))
        path = path if path.is_absolute() else self.folder / path
        if must_exist and not path.exists():
            self.fail(
                where,
                f"{str(path)!r} does not exist: check the path (relative paths are read "
                "from the study file's folder)",
            )
        return str(path)

    def data(self, value, where: str) -> DataSpec:
        if isinstance(value, str):
            value = {"path": value}
        spec = self.mapping(value, where, ("path", "format", "start", "limit", "sample", "generated", "n",
                                           "seed"))
        if ("path" in spec) == ("generated" in spec):
            self.fail(
                where,
                f"give either path (a file) or generated ({' | '.join(GENERATED)}), not both or neither",
            )
        if "generated" in spec:
            return DataSpec(
                generated=self.choice(spec["generated"], _join(where, "generated"), GENERATED),
                n=self.typed(spec.get("n", 300), _join(where, "n"), int, positive=True),
                seed=self.typed(spec.get("seed", 0), _join(where, "seed"), int),
            )
        path = self.path(spec["path"], _join(where, "path"))
        fmt = spec.get("format")
        if fmt is None:
            fmt = SUFFIX_FORMATS.get(Path(path).suffix)
            if fmt is None:
                self.fail(
                    _join(where, "format"),
                    f"cannot tell the format of {Path(path).name!r} from its "
                    f"suffix: give format, one of {list(FORMATS)}",
                )
        limit, start, sample = spec.get("limit"), spec.get("start"), spec.get("sample")
        if start is not None and self.typed(start, _join(where, "start"), int) < 0:
            self.fail(_join(where, "start"), f"must be >= 0, got {start}")
        if "seed" in spec and sample is None:
            self.fail(_join(where, "seed"), "a file's seed draws its sample: give sample too, or leave seed "
                                            "out")
        return DataSpec(
            start=start,
            path=path,
            format=self.choice(fmt, _join(where, "format"), FORMATS),
            limit=None if limit is None else self.typed(limit, _join(where, "limit"), int, True),
            sample=None if sample is None else self.typed(sample, _join(where, "sample"), int, True),
            seed=self.typed(spec.get("seed", 0), _join(where, "seed"), int),
        )

    def options(self, value, where: str) -> dict:
        """Fine-tuning options, kept as the file gives them (a task's and its ablation's merge)."""
        options = dict(self.mapping(value or {}, where, names(FinetuneOptions)))
        self.options_of(FinetuneOptions, options, where)
        return options

    def options_of(self, cls, value: dict, where: str, defaults: dict | None = None):
        """An options dataclass from the fields ``value`` names (the others: ``defaults``, else
        the dataclass's own), its own checks failing as an error at ``where``."""
        try:
            return from_mapping(cls, value, defaults)
        except (TypeError, ValueError) as err:
            # the dataclasses' messages start with the option they refuse
            field = next((n for n in names(cls) if re.match(rf"(option )?{n}\b", str(err))), None)
            self.fail(_join(where, field) if field else where, str(err))


def _join(where: str, key) -> str:
    return f"{where}.{key}" if where else str(key)


def _kind(value) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"[:80]


TOP_KEYS = ("name", "base", "out", "seeds", "tasks", "evaluation", "compare", "probes", "ablations",
            "isotropy", "track")


def _unique_key_loader():
    """YAML's safe loader, refusing a key given twice in one mapping (the plain loader keeps
    the last silently: two ``pair:`` tasks would become one)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark, f"found the key {key!r} twice: a key may "
                        "appear once per mapping (rename one)", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep)

    return UniqueKeyLoader


def load_config(path: str | os.PathLike) -> StudyConfig:
    """Reads and validates a study file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"study file {str(path)!r} does not exist")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_unique_key_loader())
    except yaml.YAMLError as err:
        raise StudyConfigError(str(path), "", f"not valid YAML: {err}") from None
    return parse_config(raw, source=str(path), folder=path.resolve().parent)


def parse_config(raw: Any, source: str = "<study>", folder: str | os.PathLike = ".") -> StudyConfig:
    """Validates a study given as a mapping (as the YAML file reads)."""
    r = _Reader(source, Path(folder))
    top = r.mapping(raw, "", TOP_KEYS, required=("name", "base", "tasks", "evaluation"))
    tasks = _tasks(r, top["tasks"])
    names = [t.name for t in tasks]
    evaluation = []
    for name, entry in r.mapping(top["evaluation"], "evaluation", _AnyKey()).items():
        where = f"evaluation.{name}"
        entry = r.mapping(entry, where, ("data", "in_domain"), required=("data",))
        evaluation.append(
            EvalSet(
                str(name),
                r.data(entry["data"], f"{where}.data"),
                r.choices(entry.get("in_domain", []), f"{where}.in_domain", names),
            )
        )
    if not evaluation:
        r.fail("evaluation", "no evaluation set: add at least one")
    compare = _compare(r, top.get("compare") or {})
    probes = _probes(r, top["probes"]) if top.get("probes") else None
    ablations = tuple(
        _ablation(r, a, f"ablations[{i}]", names)
        for i, a in enumerate(r.listed(top.get("ablations") or [], "ablations"))
    )
    for i, a in enumerate(ablations):
        task = next(t for t in tasks if t.name == a.task)
        if task.train is None:
            r.fail(
                f"ablations[{i}].task",
                f"task {a.task!r} has no train data (a checkpoint cannot be ablated): give it train and eval",
            )
    isotropy = top.get("isotropy", {})
    seeds = _seeds(r, top["seeds"]) if "seeds" in top else None
    if seeds is not None and compare.options.draws is None:  # what combines the seeds' comparisons
        compare = dataclasses.replace(compare, options=dataclasses.replace(compare.options, draws=SEED_DRAWS))
    if seeds is None:
        for t in tasks:
            if t.against is not None:
                r.fail(f"tasks.{t.name}.against", "a comparison of two procedures draws their seeds: give "
                                                  "the study seeds (e.g. seeds: 5)")
    else:
        for where, options in [*((f"tasks.{t.name}", t.options) for t in tasks),
                               *((f"ablations[{i}]", a.options) for i, a in enumerate(ablations))]:
            if "seed" in options:
                r.fail(f"{where}.options.seed", "the study's seeds set each run's seed: leave seed out here")
    return StudyConfig(
        name=r.typed(top["name"], "name", str),
        base=r.typed(top["base"], "base", str),
        out=r.path(top.get("out", f"{top['name']}_out"), "out", must_exist=False),
        tasks=tasks,
        evaluation=tuple(evaluation),
        compare=compare,
        probes=probes,
        ablations=ablations,
        isotropy=None if isotropy is False or isotropy is None else _isotropy(r, isotropy),
        seeds=seeds,
        track=_track(r, top["track"]) if top.get("track") else None,
        source=source,
        raw=raw,
    )


class _AnyKey(tuple):
    """Allowed keys of a mapping whose keys the user names (tasks, evaluation sets)."""

    def __contains__(self, key) -> bool:
        return isinstance(key, str) and bool(re.fullmatch(r"[A-Za-z0-9_.-]+", key))

    def __iter__(self):
        return iter(["<a name of letters, digits, '_', '.', '-'>"])


def _tasks(r: _Reader, value) -> tuple[TaskSpec, ...]:
    out = []
    for name, entry in r.mapping(value, "tasks", _AnyKey()).items():
        where = f"tasks.{name}"
        entry = r.mapping(
            entry, where, ("task", "train", "eval", "options", "checkpoint", "against"), required=("task",)
        )
        kind = r.choice(entry["task"], f"{where}.task", sorted(TASKS))
        checkpoint = r.path(entry["checkpoint"], f"{where}.checkpoint") if "checkpoint" in entry else None
        if checkpoint is None:
            for key in ("train", "eval"):
                if key not in entry:
                    r.fail(f"{where}.{key}", "missing: a task needs train and eval data (or a checkpoint)")
        elif ("train" in entry) != ("eval" in entry):
            r.fail(where, "a checkpoint's train and eval data serve its ablations: give both or neither")
        data = {
            key: r.data(entry[key], f"{where}.{key}") if key in entry else None for key in ("train", "eval")
        }
        options = r.options(entry.get("options"), f"{where}.options")
        against = r.typed(entry["against"], f"{where}.against", str) if "against" in entry else None
        out.append(TaskSpec(str(name), kind, data["train"], data["eval"], options, checkpoint, against))
    if not out:
        r.fail("tasks", "no task: add at least one")
    for spec in out:
        if spec.against is not None:
            _check_against(r, spec, out)
    return tuple(out)


def _check_against(r: _Reader, spec: TaskSpec, tasks: list[TaskSpec]) -> None:
    """A task compared with another: both trained (their runs' per-example scores are what
    the comparison resamples), of one kind, on the same eval data."""
    where = f"tasks.{spec.name}.against"
    other = next((t for t in tasks if t.name == spec.against), None)
    if other is None or other is spec:
        r.fail(where, f"{spec.against!r} is not another task of the study; choose from "
                      f"{[t.name for t in tasks if t is not spec]}")
    for task in (spec, other):
        if task.checkpoint is not None:
            r.fail(where, f"task {task.name!r} is a checkpoint: a comparison resamples the runs' per-example "
                          "scores, which only the study's own fine-tuning keeps")
    if (spec.task, spec.eval) != (other.task, other.eval):
        r.fail(where, f"{spec.name!r} and {other.name!r} are not scored on the same eval data by one kind of "
                      "task: a paired comparison needs the same eval examples for both")


def _seeds(r: _Reader, value) -> tuple[int, ...]:
    """A list of distinct seeds, or a count n (the seeds 0..n-1)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = list(range(r.typed(value, "seeds", int, positive=True)))
    value = r.listed(value, "seeds")
    try:
        return tuple(check_seeds(value))
    except (TypeError, ValueError) as err:
        r.fail("seeds", str(err))


def _compare(r: _Reader, value) -> CompareSpec:
    compare, capture = names(CompareOptions), names(CaptureOptions)
    spec = r.mapping(value, "compare", [*compare, *capture, "heatmaps"])
    for key in spec:
        if key in CHOICES:
            choices = CHOICES[key]
            if isinstance(spec[key], (list, tuple)):
                r.choices(spec[key], f"compare.{key}", choices)
            else:
                r.choice(spec[key], f"compare.{key}", choices)
    return CompareSpec(
        options=r.options_of(CompareOptions, {k: v for k, v in spec.items() if k in compare}, "compare",
                             STUDY_COMPARE),
        capture=r.options_of(CaptureOptions, {k: v for k, v in spec.items() if k in capture}, "compare"),
        heatmaps=r.typed(spec.get("heatmaps", True), "compare.heatmaps", bool),
    )


def _track(r: _Reader, value) -> TrackSpec:
    spec = r.mapping(value, "track", ["data", *names(TrackOptions)], required=("data",))
    options = {k: v for k, v in spec.items() if k != "data"}
    return TrackSpec(data=r.data(spec["data"], "track.data"),
                     options=r.options_of(TrackOptions, options, "track"))


def _probes(r: _Reader, value) -> ProbeSpec:
    keys = [f.name for f in dataclasses.fields(ProbeSpec)]
    spec = r.mapping(value, "probes", keys, required=("train", "eval"))
    sets = {
        str(name): r.data(data, f"probes.eval.{name}")
        for name, data in r.mapping(spec["eval"], "probes.eval", _AnyKey()).items()
    }
    if not sets:
        r.fail("probes.eval", "no probe eval set: add at least one")
    tasks = spec.get("tasks", list(PROBE_TASKS))
    options = r.mapping(spec.get("options") or {}, "probes.options", names(ProbeOptions))
    return ProbeSpec(
        train=r.data(spec["train"], "probes.train"),
        eval=sets,
        tasks=tuple(
            r.typed(t, f"probes.tasks[{i}]", str) for i, t in enumerate(r.listed(tasks, "probes.tasks"))
        ),
        in_domain=r.choices(spec.get("in_domain", []), "probes.in_domain", list(sets)),
        rows=r.choice(spec.get("rows", "words"), "probes.rows", ROWS),
        dtype=r.choice(spec.get("dtype", "float16"), "probes.dtype", ("float16", "float32")),
        options=r.options_of(ProbeOptions, options, "probes.options"),
    )


def _choices(*classes) -> dict[str, tuple]:
    """Option name -> its closed set of choices, from the dataclasses' fields."""
    return {f.name: f.metadata["choices"] for cls in classes for f in dataclasses.fields(cls)
            if "choices" in f.metadata}


CHOICES = _choices(CompareOptions, CaptureOptions)


def _ablation(r: _Reader, value, where: str, tasks: list[str]) -> AblationSpec:
    spec = r.mapping(value, where, ("kind", "task", "ks", "side", "options"), required=("kind", "task"))
    ks = spec.get("ks")
    if ks is not None:
        ks = tuple(r.typed(k, f"{where}.ks[{i}]", int) for i, k in enumerate(r.listed(ks, f"{where}.ks")))
    return AblationSpec(
        kind=r.choice(spec["kind"], f"{where}.kind", ABLATIONS),
        task=r.choice(spec["task"], f"{where}.task", tasks),
        ks=ks,
        side=r.choice(spec.get("side", "above"), f"{where}.side", SIDES),
        options=r.options(spec.get("options"), f"{where}.options"),
    )


def _isotropy(r: _Reader, value) -> IsotropySpec:
    spec = r.mapping(value, "isotropy", ("rows", "top_k"))
    return IsotropySpec(
        rows=r.choices(spec.get("rows", ["tokens", "cls"]), "isotropy.rows", ROWS),
        top_k=r.typed(spec.get("top_k", 10), "isotropy.top_k", int, True),
    )

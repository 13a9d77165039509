"""The ``ftlens`` command."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path

from ._util.options import add_arguments, from_arguments


def main(argv: list[str] | None = None) -> int:
    """Runs the command; a failure of the run itself (a diverged fine-tuning, a full disk, a
    folder another process works in) is one line on stderr and exit status 1."""
    from ._util.files import DiskFull, FolderBusy
    from .finetuning import FinetuneDiverged

    try:
        with _logs_to_stderr():
            return _main(argv)
    except (FinetuneDiverged, DiskFull, FolderBusy) as err:
        print(f"ftlens: error: {err}", file=sys.stderr)
        return 1


@contextlib.contextmanager
def _logs_to_stderr():
    """ftlens's log lines (the Trainer's losses and scores) on stderr, under the bars."""
    from tqdm.auto import tqdm

    class ToTqdm(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            tqdm.write(self.format(record), file=sys.stderr)

    logger = logging.getLogger("ftlens")
    handler = ToTqdm()
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def build_parser() -> argparse.ArgumentParser:
    """The command's parser: its option flags come from the options dataclasses."""
    from .activations.options import CaptureOptions
    from .compare.options import CompareOptions
    from .finetuning import KINDS, SIDES, TrackOptions
    from .probes import ProbeOptions
    from .probes.tasks import DEFAULT_TASKS

    parser = argparse.ArgumentParser(
        prog="ftlens", description="What fine-tuning does to a transformer encoder, layer by layer."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="the built-in study: MiniLM fine-tuned on generated parsing and pair "
                                       "data, compared, probed, ablated, reported")
    demo.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    demo.add_argument("--scale", type=float, default=1.0,
                      help="multiplies every data size (default: 1.0, a few minutes on 2 CPU cores)")
    _runtime_arguments(demo)
    study = sub.add_parser("run", help="run (or resume) a study: ftlens run study.yaml")
    study.add_argument("study", help="the study's YAML file")
    study.add_argument("--out", help="run folder (default: the file's out, else <name>_out)")
    study.add_argument("--no-report", action="store_true", help="write results.json only")
    study.add_argument("--finetune-only", action="store_true",
                       help="run the fine-tuning stages alone (the rest reuses them when run later)")
    study.add_argument("--workers", type=int,
                       help="seeds fine-tuned side by side (default: one per free core on a CPU)")
    _runtime_arguments(study)
    compare = sub.add_parser("compare", help="compare a base and a fine-tuned model layer by layer on data")
    compare.add_argument("base", help='base model: "minilm", a Hugging Face hub name or a folder')
    compare.add_argument("finetuned", help="fine-tuned model: a hub name or a folder (a run's model/)")
    _data_file_arguments(compare)
    compare.add_argument("--out", required=True,
                         help="folder for comparison.json, similarity.png and similarity.csv")
    add_arguments(compare, CompareOptions, "comparison options (ftlens.CompareOptions)")
    add_arguments(compare, CaptureOptions, "capture options (ftlens.CaptureOptions)")
    _runtime_arguments(compare)
    store = sub.add_parser("store", help="write every layer's activations of a model over data to a store "
                                         "(what ftlens probe reads)")
    store.add_argument("model", help='"minilm", a Hugging Face hub name or a folder')
    _data_file_arguments(store)
    store.add_argument("--out", required=True, help="the store folder (an interrupted write resumes)")
    store.add_argument("--dtype", choices=("float16", "float32"), default="float16",
                       help="of the stored activations (default: float16, half the disk)")
    add_arguments(store, CaptureOptions, "capture options (ftlens.CaptureOptions)")
    _runtime_arguments(store)
    report = sub.add_parser("report", help="rebuild a study's report.html and plots from its results.json")
    report.add_argument("run_dir", help="the study's run folder")
    probe = sub.add_parser("probe", help="probe every layer of a train store, scored on eval stores")
    probe.add_argument("train", help="train store folder (ftlens.store.write)")
    probe.add_argument("eval", nargs="+", help="eval store folder(s): trained once, scored on each")
    probe.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS),
                       help="task names: store labels (upos, xpos, deprel, label), edge:<label>, arc, "
                            "distance, depth (default: upos deprel)")
    add_arguments(probe, ProbeOptions, "probe options (ftlens.ProbeOptions)")
    probe.add_argument("--out", help="write the result as JSON here (with several eval stores, "
                                     "OUT's name gets each store's folder name: r.json -> r-dev.json)")
    probe.add_argument("--plot", help="write the accuracy-by-layer plot (PNG) here (named as --out)")
    _runtime_arguments(probe)
    tune = sub.add_parser("finetune", help="fine-tune a model on a task (parsing, pair, sentence, qa)")
    _data_arguments(tune)
    tune.add_argument("--out", required=True,
                      help="run folder (reused when finished, resumed when interrupted)")
    tune.add_argument("--seeds", type=int, nargs="+",
                      help="one run per seed, in OUT/seed-<s> (finished ones reused); replaces --seed")
    tune.add_argument("--workers", type=int,
                      help="seeds fine-tuned side by side (default: one per free core on a CPU)")
    tune.add_argument("--track", metavar="FILE",
                      help="record each layer's similarity to the base and its parameter change on this "
                           "data while the run trains (OUT/trajectory.json); its format from the suffix")
    tune.add_argument("--track-limit", type=int, help="only the first N inputs of the --track file")
    add_arguments(tune, TrackOptions, "tracking options (ftlens.finetuning.TrackOptions, with --track)",
                  prefix="track")
    _option_arguments(tune)
    ablation = sub.add_parser("ablate", help="a freeze / revert / reinit sweep over layer counts k")
    ablation.add_argument("kind", choices=KINDS)
    _data_arguments(ablation)
    ablation.add_argument("--out", required=True, help="sweep folder (its runs are reused when rerun)")
    ablation.add_argument("--ks", type=int, nargs="+", help="layer counts k (default: 0..L)")
    ablation.add_argument("--side", choices=SIDES, default="above",
                          help="revert: the layers above k (default) or up to k")
    ablation.add_argument("--finetuned", help="revert: a finished fine-tuning run folder to revert")
    _option_arguments(ablation)
    sub.add_parser("info", help="what the C++ core was built with")
    return parser


def _main(argv: list[str] | None) -> int:
    from ._util.threads import free_core_threads

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "threads", None) is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if args.command in ("report", "info"):
        return _command(parser, args)
    try:
        threads = free_core_threads(_stderr if not args.no_progress else None, args.threads)
    except ValueError as err:
        parser.error(str(err))
    from .activations.models import quiet_loading

    with threads, quiet_loading() if args.no_progress else contextlib.nullcontext():
        return _command(parser, args)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command == "demo":
        from .demo import run_demo

        if not 0 < args.scale < float("inf"):
            parser.error(f"--scale must be a positive finite number, got {args.scale}")
        from ._util.files import check_writable

        try:
            check_writable(args.out)
        except ValueError as err:
            parser.error(f"--out: {err}")
        run_demo(args.out, args.scale, progress=not args.no_progress)
    elif args.command == "run":
        from .study import run_study, stage_table

        try:
            results = run_study(args.study, args.out, progress=not args.no_progress,
                                report=not args.no_report, finetune_only=args.finetune_only,
                                workers=args.workers)
        except (ValueError, FileNotFoundError) as err:
            parser.error(str(err))
        if results is not None:
            print(stage_table(results))
    elif args.command == "report":
        from .study.report import build_report

        try:
            print(f"report: {build_report(args.run_dir)}")
        except FileNotFoundError as err:
            parser.error(str(err))
    elif args.command == "probe":
        from .probes import ProbeOptions
        from .probes import probe as run_probe

        names = [Path(e).name for e in args.eval]
        if len(set(names)) < len(names):
            names = [str(i) for i in range(len(names))]  # folders of one name: numbered in the order given
        try:
            results = run_probe(args.train, dict(zip(names, args.eval, strict=True)), tasks=args.tasks,
                                progress=not args.no_progress, **from_arguments(ProbeOptions, args))
        except (ValueError, FileNotFoundError) as err:
            parser.error(str(err))
        for name, result in results.items():
            if len(results) > 1:
                print(f"\n== eval store {name} ==")
            print(result.table())
            for path, write, what in ((args.out, result.save, "result"), (args.plot, result.plot, "plot")):
                if path:
                    path = Path(path)
                    path = path if len(results) == 1 else path.with_stem(f"{path.stem}-{name}")
                    write(path)
                    print(f"{what} written to {path}")
    elif args.command == "compare":
        _compare(parser, args)
    elif args.command == "store":
        _store(parser, args)
    elif args.command in ("finetune", "ablate"):
        _tune(parser, args)
    elif args.command == "info":
        from ._core import build_info

        print(json.dumps(build_info(), indent=2))
    return 0


def _runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int,
                        help="torch threads (default: the free cores, the usable ones less those busy "
                             "with other work; FTLENS_THREADS=N sets it too)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars and log lines")


def _data_file_arguments(parser: argparse.ArgumentParser) -> None:
    from .study.config import FORMATS, SUFFIX_FORMATS

    suffixes = ", ".join(f"{suffix} {fmt}" for suffix, fmt in SUFFIX_FORMATS.items())
    parser.add_argument("data", help=f"a data file; its format from the suffix ({suffixes})")
    parser.add_argument("--format", choices=FORMATS, help="the data's format, where the suffix does not say")
    parser.add_argument("--limit", type=int, help="only the first N examples of the data")


def _check_limit(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be at least 1, got {args.limit}")


def _read_data(parser: argparse.ArgumentParser, args: argparse.Namespace):
    _check_limit(parser, args)
    return _read_file(parser, args.data, args.format, args.limit, "--format")


def _read_file(parser: argparse.ArgumentParser, path: str, fmt: str | None, limit: int | None, flag: str):
    from pathlib import Path

    from .study.config import SUFFIX_FORMATS, DataSpec
    from .study.inputs import load

    fmt = fmt or SUFFIX_FORMATS.get(Path(path).suffix)
    if fmt is None:
        parser.error(f"cannot tell the format of {path!r} from its suffix: pass {flag}")
    if not Path(path).is_file():
        parser.error(f"data file {path!r} does not exist")
    try:
        return load(DataSpec(path=path, format=fmt, limit=limit))
    except ValueError as err:
        parser.error(f"{path}: {err}")


def _compare(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from pathlib import Path

    from ._util.files import check_writable
    from .activations.options import CaptureOptions
    from .compare import compare_models
    from .compare.options import CompareOptions

    data = _read_data(parser, args)
    try:
        out = check_writable(args.out)
        result = compare_models(args.base, args.finetuned, data,
                                options=with_overrides_from(CompareOptions, args),
                                capture=with_overrides_from(CaptureOptions, args),
                                progress=not args.no_progress)
    except (ValueError, TypeError, FileNotFoundError, OSError) as err:
        parser.error(str(err))
    result.save(out / "comparison.json")
    result.plot(out / "similarity.png", out / "similarity.csv")
    print(result.table())
    print(f"written to {Path(out)}: comparison.json, similarity.png, similarity.csv")


def with_overrides_from(cls, args: argparse.Namespace):
    """An options dataclass from its flags given on the command line."""
    from ._util.options import with_overrides

    return with_overrides(cls, None, **from_arguments(cls, args))


def _store(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from .activations import store
    from .activations.options import CaptureOptions

    data = _read_data(parser, args)
    try:
        written = store.write(args.model, data, args.out, args.dtype,
                              capture=with_overrides_from(CaptureOptions, args),
                              progress=not args.no_progress)
    except (ValueError, TypeError, FileNotFoundError, OSError) as err:
        parser.error(str(err))
    m = written.manifest
    print(f"store written to {args.out}: {m['n_rows']} rows x {m['n_layers']} layers x {m['dim']}")


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    from .finetuning import TASKS

    parser.add_argument("base", help='base model: "minilm", a Hugging Face hub name or a folder')
    parser.add_argument("task", choices=sorted(TASKS),
                        help="parsing: CoNLL-U; pair / sentence: GLUE TSV or JSONL; qa: SQuAD v1.1 JSON")
    parser.add_argument("train", help="training data file")
    parser.add_argument("eval", help="evaluation data file")
    parser.add_argument("--limit", type=int, help="only the first N examples of each data file")
    parser.add_argument("--keep-checkpoints", action="store_true",
                        help="keep the Trainer's checkpoints once a run has finished (default: deleted then)")


def _option_arguments(parser: argparse.ArgumentParser) -> None:
    from .finetuning import FinetuneOptions

    add_arguments(parser, FinetuneOptions, "fine-tuning options (ftlens.FinetuneOptions)")
    _runtime_arguments(parser)


def _tracking(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict | None:
    """finetune's track= from --track FILE and the --track-* flags."""
    from .finetuning import TrackOptions

    given = from_arguments(TrackOptions, args, prefix="track")
    if args.track is None:
        if given or args.track_limit is not None:
            parser.error("the --track-* flags set how a run is tracked: give the tracking data with "
                         "--track FILE")
        return None
    return {"data": _read_file(parser, args.track, None, args.track_limit, "a known suffix"), **given}


def _tune(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from .finetuning import FinetuneOptions, ablate, finetune
    from .finetuning.run import get_task

    options = from_arguments(FinetuneOptions, args)
    task = get_task(args.task)
    _check_limit(parser, args)
    try:
        train, evaluation = task.read(args.train), task.read(args.eval)
        if args.limit is not None:
            train, evaluation = train[:args.limit], evaluation[:args.limit]
        kept = {"progress": not args.no_progress, "keep_checkpoints": args.keep_checkpoints}
        if args.command == "finetune":
            result = finetune(args.base, args.task, train, evaluation, args.out, seeds=args.seeds,
                              workers=args.workers, track=_tracking(parser, args), **kept, **options)
        else:
            result = ablate(args.kind, args.base, args.task, train, evaluation, args.out, args.ks,
                            side=args.side, finetuned=args.finetuned, **kept, **options)
    except (ValueError, TypeError, FileNotFoundError) as err:
        parser.error(str(err))
    if args.command == "finetune" and args.seeds is not None:
        print(result.table())
        print(f"runs in {args.out}/seed-<s>")
    elif args.command == "finetune":
        shown = {k: v for k, v in result.metrics.items() if k.startswith("eval_") and "per_second" not in k}
        print(f"{'reused' if result.reused else 'finished'}: {result.model_dir}")
        print(json.dumps(shown, indent=2))
    else:
        print(result.table())
        print(f"table and plot in {args.out} (ablation.json, ablation.png)")


if __name__ == "__main__":
    raise SystemExit(main())

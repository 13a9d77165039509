"""The ``ftlens`` command."""

from __future__ import annotations

import argparse
import json

from ._util.options import add_arguments, from_arguments


def main(argv: list[str] | None = None) -> int:
    """Runs the command; a failure of the run itself (a diverged fine-tuning, a full disk, a
    folder another process works in) is one line on stderr and exit status 1."""
    import sys

    from ._util.files import DiskFull, FolderBusy
    from .finetuning import FinetuneDiverged

    try:
        return _main(argv)
    except (FinetuneDiverged, DiskFull, FolderBusy) as err:
        print(f"ftlens: error: {err}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    """The command's parser: its option flags come from the options dataclasses."""
    from .finetuning import KINDS, SIDES
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
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    study = sub.add_parser("run", help="run (or resume) a study: ftlens run study.yaml")
    study.add_argument("study", help="the study's YAML file")
    study.add_argument("--out", help="run folder (default: the file's out, else <name>_out)")
    study.add_argument("--no-report", action="store_true", help="write results.json only")
    study.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    report = sub.add_parser("report", help="rebuild a study's report.html and plots from its results.json")
    report.add_argument("run_dir", help="the study's run folder")
    probe = sub.add_parser("probe", help="probe every layer of a train store, scored on an eval store")
    probe.add_argument("train", help="train store folder (ftlens.store.write)")
    probe.add_argument("eval", help="eval store folder")
    probe.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS),
                       help="task names: store labels (upos, xpos, deprel, label), edge:<label>, arc, "
                            "distance, depth (default: upos deprel)")
    add_arguments(probe, ProbeOptions, "probe options (ftlens.ProbeOptions)")
    probe.add_argument("--out", help="write the result as JSON here")
    probe.add_argument("--plot", help="write the accuracy-by-layer plot (PNG) here")
    probe.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    tune = sub.add_parser("finetune", help="fine-tune a model on a task (parsing, pair, sentence, qa)")
    _data_arguments(tune)
    tune.add_argument("--out", required=True,
                      help="run folder (reused when finished, resumed when interrupted)")
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
    parser = build_parser()
    args = parser.parse_args(argv)

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
                                report=not args.no_report)
        except (ValueError, FileNotFoundError) as err:
            parser.error(str(err))
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

        try:
            result = run_probe(args.train, args.eval, tasks=args.tasks, progress=not args.no_progress,
                               **from_arguments(ProbeOptions, args))
        except (ValueError, FileNotFoundError) as err:
            parser.error(str(err))
        print(result.table())
        if args.out:
            result.save(args.out)
            print(f"result written to {args.out}")
        if args.plot:
            result.plot(args.plot)
            print(f"plot written to {args.plot}")
    elif args.command in ("finetune", "ablate"):
        _tune(parser, args)
    elif args.command == "info":
        from ._core import build_info

        print(json.dumps(build_info(), indent=2))
    return 0


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    from .finetuning import TASKS

    parser.add_argument("base", help='base model: "minilm", a Hugging Face hub name or a folder')
    parser.add_argument("task", choices=sorted(TASKS),
                        help="parsing: CoNLL-U; pair / sentence: GLUE TSV or JSONL; qa: SQuAD v1.1 JSON")
    parser.add_argument("train", help="training data file")
    parser.add_argument("eval", help="evaluation data file")


def _option_arguments(parser: argparse.ArgumentParser) -> None:
    from .finetuning import FinetuneOptions

    add_arguments(parser, FinetuneOptions, "fine-tuning options (ftlens.FinetuneOptions)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def _tune(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from .finetuning import FinetuneOptions, ablate, finetune
    from .finetuning.run import get_task

    options = from_arguments(FinetuneOptions, args)
    task = get_task(args.task)
    try:
        train, evaluation = task.read(args.train), task.read(args.eval)
        if args.command == "finetune":
            result = finetune(args.base, args.task, train, evaluation, args.out,
                              progress=not args.no_progress, **options)
        else:
            result = ablate(args.kind, args.base, args.task, train, evaluation, args.out, args.ks,
                            side=args.side, finetuned=args.finetuned, progress=not args.no_progress,
                            **options)
    except (ValueError, TypeError, FileNotFoundError) as err:
        parser.error(str(err))
    if args.command == "finetune":
        shown = {k: v for k, v in result.metrics.items() if k.startswith("eval_") and "per_second" not in k}
        print(f"{'reused' if result.reused else 'finished'}: {result.model_dir}")
        print(json.dumps(shown, indent=2))
    else:
        print(result.table())
        print(f"table and plot in {args.out} (ablation.json, ablation.png)")


if __name__ == "__main__":
    raise SystemExit(main())

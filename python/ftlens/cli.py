"""The ``ftlens`` command."""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ftlens", description="What fine-tuning does to a transformer encoder, layer by layer."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="layer-by-layer CKA/RSA of the built-in MiniLM model")
    demo.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    demo.add_argument("--sentences", type=int, default=300, help="generated sentences (default: 300)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    probe = sub.add_parser("probe", help="probe every layer of a train store, scored on an eval store")
    probe.add_argument("train", help="train store folder (ftlens.store.write)")
    probe.add_argument("eval", help="eval store folder")
    probe.add_argument("--tasks", nargs="+", default=["upos", "deprel"],
                       help="task names: store labels (upos, xpos, deprel, label), edge:<label>, arc, "
                            "distance, depth (default: upos deprel)")
    probe.add_argument("--kind", choices=("logistic", "ridge"), default="logistic")
    probe.add_argument("--layers", type=int, nargs="+", help="layer indices (default: all)")
    probe.add_argument("--no-control", action="store_true", help="skip the control tasks")
    probe.add_argument("--mdl", action="store_true", help="also the online codelength (MDL)")
    probe.add_argument("--l2", type=float, help="logistic L2 strength (default: chosen on held-out data)")
    probe.add_argument("--device", help='where the logistic passes run, e.g. "cuda"')
    probe.add_argument("--out", help="write the result as JSON here")
    probe.add_argument("--plot", help="write the accuracy-by-layer plot (PNG) here")
    probe.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    sub.add_parser("info", help="what the C++ core was built with")
    args = parser.parse_args(argv)

    if args.command == "demo":
        from .demo import run_demo

        if args.sentences < 4:
            parser.error("--sentences must be at least 4")
        from ._io import check_writable

        try:
            check_writable(args.out)
        except ValueError as err:
            parser.error(f"--out: {err}")
        run_demo(args.out, args.sentences, progress=not args.no_progress)
    elif args.command == "probe":
        from .probes import probe as run_probe

        try:
            result = run_probe(args.train, args.eval, tasks=args.tasks, kind=args.kind, layers=args.layers,
                               control=not args.no_control, mdl=args.mdl, l2=args.l2, device=args.device,
                               progress=not args.no_progress)
        except (ValueError, FileNotFoundError) as err:
            parser.error(str(err))
        print(result.table())
        if args.out:
            result.save(args.out)
            print(f"result written to {args.out}")
        if args.plot:
            result.plot(args.plot)
            print(f"plot written to {args.plot}")
    elif args.command == "info":
        from . import build_info

        print(json.dumps(build_info(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

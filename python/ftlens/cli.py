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
    elif args.command == "info":
        from . import build_info

        print(json.dumps(build_info(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

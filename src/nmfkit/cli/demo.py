"""`nmfkit demo [NAME] [--out DIR] [--quick]`: run a bundled demonstration.

Dispatches to `nmfkit.demos.DEMOS[NAME](out_dir, quick=...)`; the demos themselves live in the
`nmfkit.demos` package.  Without that package (or its optional data dependencies) the command
exits with status 1 and one line saying why.
"""
from __future__ import annotations

import sys

DEFAULT_DEMO = "faces"


def add_parser(subparsers):
    p = subparsers.add_parser("demo", help="run a bundled demonstration on real data",
                              description="Run a bundled demonstration and write its figures and summary.")
    p.add_argument("name", metavar="NAME", nargs="?", default=DEFAULT_DEMO,
                   help=f"which demo (default {DEFAULT_DEMO}; `nmfkit demo --list` lists them)")
    p.add_argument("-o", "--out", metavar="DIR", help="output folder (default out/demo/NAME)")
    p.add_argument("--quick", action="store_true", help="a smaller, faster version (seconds)")
    p.add_argument("--list", action="store_true", help="list the demos and exit")
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    try:
        from ..demos import DEMOS
    except ImportError as exc:
        print(f"nmfkit: error: the demos are not available: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    if args.list:
        for name in sorted(DEMOS):
            doc = (getattr(DEMOS[name], "__doc__", None) or "").strip().splitlines()
            print(f"{name:12s} {doc[0] if doc else ''}".rstrip())
        return 0
    if args.name not in DEMOS:
        raise ValueError(f"unknown demo {args.name!r}; choose one of: {', '.join(sorted(DEMOS))}")
    out = args.out or f"out/demo/{args.name}"
    try:
        status = DEMOS[args.name](out, quick=args.quick)
    except ImportError as exc:   # an optional dependency of this demo (its data set, say) is missing
        print(f"nmfkit: error: demo {args.name!r} needs a missing package: {' '.join(str(exc).split())}",
              file=sys.stderr)
        return 1
    return status if isinstance(status, int) and not isinstance(status, bool) else 0

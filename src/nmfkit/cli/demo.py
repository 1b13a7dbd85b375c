"""`nmfkit demo [NAME] [--out DIR] [--quick]`: run a bundled demonstration.

Dispatches to `nmfkit.demos.DEMOS[NAME](out_dir, quick=...)`; the demos themselves live in the
`nmfkit.demos` package.  Without that package (or its optional data dependencies) the command
exits with status 1 and one line saying why.
The output folder must be new, empty or one nmfkit wrote (its manifest `.nmfkit-run.json` lists the
files of the previous run), unless --force: a demo's file names are known only once it ran, so a folder
holding anything else is refused before the demo starts.  The files a demo returns are recorded in the
manifest, and those of the previous run that it did not write again are removed.
"""
from __future__ import annotations

import os
import sys

from ..validation import choose
from ._output import OutputFolder

DEFAULT_DEMO = "faces"


def add_parser(subparsers):
    p = subparsers.add_parser("demo", help="run a bundled demonstration on real data",
                              description="Run a bundled demonstration and write its figures and summary.")
    p.add_argument("name", metavar="NAME", nargs="?", default=DEFAULT_DEMO,
                   help=f"which demo (default {DEFAULT_DEMO}; `nmfkit demo --list` lists them)")
    p.add_argument("-o", "--out", metavar="DIR", help="output folder (default out/demo/NAME)")
    p.add_argument("--quick", action="store_true", help="a smaller, faster version (seconds)")
    p.add_argument("--force", action="store_true", help="write into DIR even if it holds files nmfkit did not write")
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
    args.name = choose(args.name, DEMOS, "demo")
    out = args.out or f"out/demo/{args.name}"
    folder = OutputFolder(out, command=f"demo {args.name}", force=args.force)
    folder.check_foreign_entries()
    folder.check([])
    before = folder.entries()
    stamps = {e: _stamp(folder.path(e)) for e in before}
    try:
        status = DEMOS[args.name](out, quick=args.quick)
    except ImportError as exc:   # an optional dependency of this demo (its data set, say) is missing
        folder.adopt(folder.entries() - before)
        folder.abandon()
        print(f"nmfkit: error: demo {args.name!r} needs a missing package: {' '.join(str(exc).split())}",
              file=sys.stderr)
        return 1
    except BaseException:
        folder.adopt(folder.entries() - before)   # what it wrote is recognised as nmfkit's next time
        folder.abandon()
        raise
    returned = status.get("files") if isinstance(status, dict) else None
    if returned is not None:
        written = {os.path.basename(f) for f in returned if os.path.dirname(os.path.abspath(f)) == os.path.abspath(out)}
        written |= {e for e in folder.entries() - (before - folder.previous)   # never claim a foreign file
                    if _stamp(folder.path(e)) != stamps.get(e)}       # new or rewritten by the demo
        folder.finish(sorted(written))
    return status if isinstance(status, int) and not isinstance(status, bool) else 0


def _stamp(path):
    """What changes when a file is written again (an atomic write makes a new inode)."""
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns, st.st_size

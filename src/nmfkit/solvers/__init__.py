"""Solvers: one `step` of an alternating scheme on tall factors (W m×k, Ht n×k).

Importing this package imports every module in it, and each module registers
its solvers in `nmfkit.registry.SOLVERS`: a new solver is one new file.
"""
import importlib
import pkgutil

from .base import Solver, floor_of

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_") and _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["Solver", "floor_of"]

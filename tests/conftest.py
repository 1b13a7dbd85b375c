"""Shared test setup.  Tests are grouped in folders that mirror the source (solvers/, engines/,
kernels/, rank/, skins/, cli/); the planted data they share lives in _planted.py, importable from
every folder because this file puts tests/ on the import path."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

"""Shared test setup.  Tests are grouped in folders that mirror the source (solvers/, engines/,
kernels/, rank/, skins/, cli/); the planted data they share lives in _planted.py, importable from
every folder because this file puts tests/ on the import path, and the most used cases are
fixtures here."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _planted  # noqa: E402  (needs the path above)


@pytest.fixture
def low_rank_matrix():
    """A 60×40 non-negative matrix of rank 4 up to 1 % noise."""
    return _planted.low_rank(60, 40, 4)


@pytest.fixture
def clustered_matrix():
    """(X 60×30, the group of each column): three clear sample groups."""
    return _planted.clustered()

"""`n_threads=`: how many threads a fit's compiled kernels and BLAS calls may use.

Numba's parallel kernels (sparse products, fused KL steps, coordinate descent) take their thread
count from `numba.set_num_threads`, capped by the pool Numba starts with (`NUMBA_NUM_THREADS`,
default: the number of cores); BLAS takes its own from threadpoolctl.  `threads(n)` sets both for
the duration of a fit and restores them afterwards, also on an error or Ctrl-C.  Results do not
depend on the thread count: every parallel reduction adds fixed row blocks in a fixed order.

Numba's OpenMP threads wait for work by spinning unless told otherwise.  Where other processes
compete for the cores (parallel test runners, pools of worker processes, a shared server) a
spinning thread holds a core the thread that has the work needs, and each parallel region can take
several times longer; measured on 2 cores, a test run of the compiled solvers took 20 s with
spinning threads and 7 s with sleeping ones, and one fit alone on a quiet machine took the same
time either way.  nmfkit therefore sets OMP_WAIT_POLICY=PASSIVE when it is imported, before Numba
starts its threads, unless the environment already sets a policy (then the user's choice stands).
"""
from __future__ import annotations

import contextlib
import numbers
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402  (after the wait policy is set)
from threadpoolctl import threadpool_limits  # noqa: E402


def check_threads(n_threads):
    """None (use what is set) or a thread count between 1 and Numba's pool size, else a clear error."""
    if n_threads is None:
        return None
    pool = numba.config.NUMBA_NUM_THREADS
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral) or not 1 <= n_threads <= pool:
        raise ValueError(f"n_threads must be None or an integer from 1 to {pool} (the threads Numba was started "
                         f"with: NUMBA_NUM_THREADS); got {n_threads!r}")
    return int(n_threads)


@contextlib.contextmanager
def threads(n_threads):
    """Numba and BLAS limited to `n_threads` threads inside the block (None: unchanged)."""
    if n_threads is None:
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        with threadpool_limits(limits=n_threads):
            yield
    finally:
        numba.set_num_threads(before)

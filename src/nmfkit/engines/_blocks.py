"""Row blocks shared by the Numba kernels.

Block counts are fixed, not the thread count: partial sums are added per block and then in
block order, so a result is the same on any machine and with any number of threads.
"""
from __future__ import annotations

import numpy as np

ROW_BLOCKS = 16          # KL products and kl_w_step: the partial sums of Qᵀ W are added in this order
KL_CD_ROW_BLOCKS = 64    # KL coordinate descent: the loss is summed per block, then in block order
VECTORISE = {"reassoc", "contract"}   # lets LLVM vectorise row sums and dot products; no other fast-math licence


def balanced_blocks(indptr, blocks):
    """Boundaries of `blocks` row blocks of a CSR matrix holding about the same number of
    stored entries plus rows each."""
    m = len(indptr) - 1
    cost = np.asarray(indptr, dtype=np.int64) + np.arange(m + 1)
    bounds = np.searchsorted(cost, cost[-1] * np.arange(blocks + 1) / blocks, side="left").astype(np.int64)
    bounds[0], bounds[-1] = 0, m
    return bounds

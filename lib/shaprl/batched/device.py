"""Device choice and per-member seeds."""

from __future__ import annotations

import numpy as np
import torch


def default_device() -> torch.device:
    """A CUDA device when one is present, else the CPU (a GPU is used, never required)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def member_seeds(seed: int, n_members: int) -> list[int]:
    """``n_members`` independent 32-bit seeds derived from one (``numpy.random.SeedSequence``).

    The r-th seed depends only on ``seed`` and ``r``, so a group of runs can be split or
    enlarged without changing the seeds of the members already in it.
    """
    if n_members < 0:
        raise ValueError(f"n_members must be >= 0, got {n_members}")
    children = np.random.SeedSequence(int(seed)).spawn(n_members)
    return [int(c.generate_state(1)[0]) for c in children]

"""Shapley core: exact enumeration vs kernel least squares vs permutation sampling."""

from __future__ import annotations

import numpy as np

from shaprl.shapley import TableGame, exact_shapley, kernel_shapley, permutation_shapley

from .harness import Result, timed


def run() -> list[Result]:
    rng = np.random.default_rng(0)
    out = []
    for n, m in ((12, 16), (16, 16), (20, 1)):
        table = rng.normal(size=(1 << n, m))
        t, _ = timed(lambda table=table: exact_shapley(table), repeats=3)
        out.append(Result(f"exact n={n} outputs={m}", t, note=f"{1 << n} coalitions"))
        if n <= 16:
            t, _ = timed(lambda table=table: kernel_shapley(table))
            out.append(Result(f"kernel WLS (all coalitions) n={n} outputs={m}", t))
            game = TableGame(table)
            t, _ = timed(lambda game=game, n=n: permutation_shapley(game, n, 1000, seed=0))
            out.append(Result(f"permutation sampling 1000 orders n={n} outputs={m}", t))
    return out

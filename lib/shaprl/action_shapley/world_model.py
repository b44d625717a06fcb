"""World models (§3): (previous statistic, previous action) -> (statistic, reward), RBF networks.

Every trace is held at one configuration ``a``; its windows give the statistics ``s_0, s_1,
...`` and the transitions ``(s_{j-1}, a) -> (s_j, r_j)`` with ``r_j`` the reward of §3 (see
:mod:`.case_studies`). Inputs are ``x = (s / cap, a_norm)`` in ``[0, 1]^3``; outputs are
``(s / cap, r / threshold)``. An RBF network with a linear tail predicts both:

.. math::  y(x) = w_0 + W_1^T z + \\sum_c w_c \\exp(-\\gamma \\lVert z - \\mu_c \\rVert^2),
    \\qquad z = (x - m) M

**No leakage.** A subset's model must not see the traces outside the subset. We use a
*fixed basis* chosen without any trace (:func:`fixed_basis`): ``z = x`` (the PCA of the
known input box, which is axis-aligned, is a rescaling, and the box is already ``[0, 1]^3``)
and centres on a 5 x 5 x 5 grid over the box, width ``sigma = 0.25``. Each trace contributes
the sufficient statistics ``Phi^T Phi`` and ``Phi^T Y`` once; a subset's output layer is the
ridge solution of their sums (:class:`SufficientStatistics`), so all ``2^n`` models cost
``2^n`` small solves. The paper's own procedure, PCA pre-processing and RBF centres fitted
on the subset alone, is :func:`fit_per_subset` (scikit-learn: ``StandardScaler``, ``PCA``,
``KMeans``, ``Ridge``); notebook 20 measures how often the two give the same null verdict and
utility on a sample of subsets.

Both are returned as :class:`RBFParams` (``m``, ``M``, centres, ``gamma``, weights) so one
batched torch evaluator serves both; per-subset centres are padded with far-away centres
whose weights are zero.

**The same fit on every machine.** OpenBLAS (numpy's and scipy's) and OpenMP (scikit-learn's
k-means) start one thread per core, and their products, solves and reductions differ in the
last bits with the thread count; training amplifies those bits into different agents
(measured: 3 of 8 VM subsets change their return between one and two threads; the per-subset
fits of VM and database differ too). Every fit therefore runs on :data:`FIT_THREADS` threads,
the count the committed tables were made with (two-core machines), so a table does not depend
on the machine's core count; the CPU's kernel family (``cpu_capability`` in a table's JSON)
still can.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from .traces import Traces

GRID = 5
SIGMA = 0.25
RIDGE = 0.1
REF_CENTRES = 16
FAR = 1e3  #: coordinate of padding centres (their features are exactly 0)
FIT_THREADS = 2  #: OpenBLAS and OpenMP threads of every fit (see the module docstring)

_PIN_LOCK = threading.RLock()

_F = TypeVar("_F", bound=Callable)


def pinned_threads(fn: _F) -> _F:
    """Run ``fn`` with OpenBLAS and OpenMP on :data:`FIT_THREADS` threads, whatever the
    machine, and one pinned call at a time per process. The limits are process-wide: two
    threads that pin and restore them at once (joblib's threading backend) let one fit run at
    the count the other restored, and its bits change (measured: 1 of 32 VM utilities).
    The previous counts come back afterwards (torch keeps its own)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _PIN_LOCK, threadpool_limits(limits=FIT_THREADS):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass
class RBFParams:
    """A stack of ``R`` RBF networks: ``z = (x - shift) @ mix``; features ``[1, z, rbf]``."""

    shift: np.ndarray  #: (R, 3)
    mix: np.ndarray  #: (R, 3, 3)
    centres: np.ndarray  #: (R, C, 3)
    gamma: np.ndarray  #: (R,)
    weights: np.ndarray  #: (R, 1 + 3 + C, 2)
    valid: np.ndarray  #: (R,) False where no model could be fitted (empty subset)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``(R, N, 3) -> (R, N, 2)`` (numpy twin of the torch evaluator)."""
        z = np.einsum("rni,rij->rnj", x - self.shift[:, None], self.mix)
        d2 = ((z[:, :, None, :] - self.centres[:, None]) ** 2).sum(-1)
        phi = np.concatenate(
            [np.ones(z.shape[:2] + (1,)), z, np.exp(-self.gamma[:, None, None] * d2)], -1
        )
        return np.einsum("rnf,rfo->rno", phi, self.weights)

    def take(self, rows: np.ndarray) -> RBFParams:
        """The networks at ``rows`` (in that order, repeats allowed), as a new stack."""
        return RBFParams(*(getattr(self, f)[rows] for f in RBFParams.__dataclass_fields__))

    def member(self, r: int) -> RBFParams:
        """Network ``r`` alone (a stack of one)."""
        return self.take(np.array([r]))

    @staticmethod
    def stack(items: list[RBFParams]) -> RBFParams:
        c = max(p.centres.shape[1] for p in items)
        out = [_pad(p, c) for p in items]
        return RBFParams(
            *(np.concatenate([getattr(p, f) for p in out]) for f in RBFParams.__dataclass_fields__)
        )


def _pad(p: RBFParams, c: int) -> RBFParams:
    extra = c - p.centres.shape[1]
    if extra == 0:
        return p
    r = p.centres.shape[0]
    centres = np.concatenate([p.centres, np.full((r, extra, 3), FAR)], 1)
    weights = np.concatenate([p.weights, np.zeros((r, extra, 2))], 1)
    return RBFParams(p.shift, p.mix, centres, p.gamma, weights, p.valid)


def transitions(traces: Traces) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per trace: inputs ``(K-1, 3)`` and targets ``(K-1, 2)`` of its window transitions."""
    case = traces.case
    stats = traces.statistics()
    xs, ys = [], []
    for k in range(stats.shape[0]):
        s = stats[k]
        a = case.normalise(traces.configs[k])
        x = np.column_stack([s[:-1] / case.cap, np.tile(a, (s.size - 1, 1))])
        y = np.column_stack([s[1:] / case.cap, case.reward(s[1:]) / case.threshold])
        xs.append(x)
        ys.append(y)
    return xs, ys


def fixed_basis() -> tuple[np.ndarray, float]:
    """Grid centres ``(GRID**3, 3)`` over ``[0, 1]^3`` and ``gamma``, chosen without data."""
    g = np.linspace(0.0, 1.0, GRID)
    centres = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    return centres, 1.0 / (2 * SIGMA**2)


def features(x: np.ndarray, centres: np.ndarray, gamma: float) -> np.ndarray:
    """``[1, x, exp(-gamma |x - c|^2)]`` for the fixed basis."""
    return np.hstack([np.ones((x.shape[0], 1)), x, rbf_kernel(x, centres, gamma=gamma)])


class SufficientStatistics:
    """Per-trace ``Phi^T Phi`` and ``Phi^T Y`` of the fixed basis; subset models by summing."""

    @pinned_threads
    def __init__(self, traces: Traces) -> None:
        self.centres, self.gamma = fixed_basis()
        xs, ys = transitions(traces)
        f = 4 + self.centres.shape[0]
        self.gram = np.zeros((len(xs), f, f))
        self.cross = np.zeros((len(xs), f, 2))
        for k, (x, y) in enumerate(zip(xs, ys, strict=True)):
            phi = features(x, self.centres, self.gamma)
            self.gram[k] = phi.T @ phi
            self.cross[k] = phi.T @ y
        self.penalty = np.diag([0.0] * 4 + [RIDGE] * self.centres.shape[0])
        self.n = len(xs)

    @pinned_threads
    def fit(self, masks: np.ndarray) -> RBFParams:
        """Models of the subsets ``masks`` (bitmasks); the empty subset is marked invalid."""
        masks = np.asarray(masks, dtype=np.int64).reshape(-1)
        member = ((masks[:, None] >> np.arange(self.n)) & 1).astype(float)  # (R, n)
        gram = np.einsum("rk,kij->rij", member, self.gram) + self.penalty
        # a tiny ridge on the linear part keeps single-configuration subsets solvable
        gram[:, :4, :4] += 1e-6 * np.eye(4)
        cross = np.einsum("rk,kio->rio", member, self.cross)
        weights = np.linalg.solve(gram, cross)
        valid = masks != 0
        weights[~valid] = 0.0
        r = masks.size
        return RBFParams(
            np.zeros((r, 3)),
            np.broadcast_to(np.eye(3), (r, 3, 3)).copy(),
            np.broadcast_to(self.centres, (r, *self.centres.shape)).copy(),
            np.full(r, self.gamma),
            weights,
            valid,
        )


@pinned_threads
def fit_per_subset(traces: Traces, mask: int, seed: int = 0) -> RBFParams:
    """The paper's procedure: PCA and RBF centres (k-means) fitted on the subset's data alone."""
    xs, ys = transitions(traces)
    chosen = [k for k in range(len(xs)) if mask >> k & 1]
    if not chosen:
        c = REF_CENTRES
        return RBFParams(
            np.zeros((1, 3)),
            np.eye(3)[None],
            np.full((1, c, 3), FAR),
            np.ones(1),
            np.zeros((1, 4 + c, 2)),
            np.array([False]),
        )
    x = np.vstack([xs[k] for k in chosen])
    y = np.vstack([ys[k] for k in chosen])
    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 1e-9, scaler.scale_, 1.0)
    pca = PCA(n_components=3, whiten=True, random_state=seed).fit((x - scaler.mean_) / scale)
    var = np.sqrt(np.maximum(pca.explained_variance_, 1e-12))
    keep = pca.explained_variance_ > 1e-9 * max(pca.explained_variance_.max(), 1e-12)
    mix = (np.diag(1.0 / scale) @ pca.components_.T) / var * keep  # x -> whitened z
    shift = scaler.mean_ + (pca.mean_ * scale)
    z = (x - shift) @ mix
    n_c = min(REF_CENTRES, len(np.unique(z.round(6), axis=0)))
    centres = KMeans(n_clusters=n_c, n_init=3, random_state=seed).fit(z).cluster_centers_
    gamma = 0.5
    phi = np.hstack([z, rbf_kernel(z, centres, gamma=gamma)])
    ridge = Ridge(alpha=RIDGE).fit(phi, y)
    weights = np.vstack([ridge.intercept_[None], ridge.coef_.T])
    return _pad(
        RBFParams(
            shift[None],
            mix[None],
            centres[None],
            np.array([gamma]),
            weights[None],
            np.array([True]),
        ),
        REF_CENTRES,
    )

"""Monte Carlo SVERL (SVERL Sec. 10.2): explanations from a simulator, a policy and samples.

For a user with a simulator and a policy but no model. Three estimators:

* **Behaviour and prediction** (Eq. 13 and its prediction twin): with a sample of states
  visited by the policy (its steady state, Def. 15), the conditional characteristic is the
  sample average of the target over the states that agree with the explained state x on
  the known features,
      v^(C) = sum_{n : s_n,C = x_C} w_n f(s_n) / sum_{n : s_n,C = x_C} w_n,
  with f = pi(.|s) (Def. 17, no renormalisation) or f = V^(s) (Def. 44). The average over
  all matching samples is the limit of Eq. 13's average over M conditional draws.
* **Outcome** (Def. 34 with Remark 35): the partially informed agent acts with
  q_C = v^(C) restricted to the valid actions of x and renormalised, whenever it is in x,
  and with pi elsewhere. Instead of one batch of rollouts per coalition we use the renewal
  identity of the exact engine (:func:`~shaprl.sverl.characteristics.first_passage_terms`):
  for each valid action a, rollouts that take a in x and then follow pi until the episode
  ends or x recurs give
      QW(a) = E[return collected before x recurs],   QF(a) = E[gamma**(time x recurs); 0 if never],
  and every coalition's return is  v(C) = q_C . QW / (1 - q_C . QF).  The expectation is the
  one of Eq. 14's rollouts of the partially informed policy; the cost is A x R rollouts
  per state whatever the number of coalitions, and all coalitions share the same
  rollouts (common random numbers), which keeps Shapley differences precise.
* **Shapley values** by antithetic permutation sampling (the permutation form of Eq. 2),
  one set of orders for all kinds and outputs of a state. The characteristic is evaluated
  along whole orders: the sample states matching the first j features of an order are those
  whose first disagreement with x comes at position j or later, so one pass over the sample
  serves all F + 1 prefixes, and no coalition bitmask limits the number of features.

Standard errors combine three independent parts, all on the same permutations: the
permutation error (spread of the antithetic pairs); the state sample's error, by a Poisson
bootstrap over whole episodes (rows of one episode are correlated; rows count as their own
episodes when no episode ids are given, which understates it for correlated rows); and, for
outcome, the rollout error by a rollout-level (delete-one) jackknife: every rollout of every
action is left out in turn, so the error has as many degrees of freedom as rollouts, and
one set of replicates serves all permutations (the error is pooled across them). A weighted
sample (``weights=``) is taken as the distribution itself and has no sample error: with the
exact steady state as weights the estimates converge to the exact engine's values.

**No zero standard error from a finite sample.** Resampling cannot see what the sample never
showed: when every matching sample row has the same target (a deterministic agent) or every
rollout the same return, the bootstrap and jackknife spreads are exactly 0 although the
estimate is not exact. Each standard error therefore includes a bound for bounded targets,
the Jeffreys (Bayesian binomial) posterior spread of a proportion seen 0 times in n draws,
``range * sqrt(0.5) / (n + 1)``, with n the independent units behind the estimate (episodes
of the state sample; rollouts per action) and range the target's (1 for probabilities; the
spread of the sampled values, resp. of all rollout returns pooled over the explained
states). A standard error is never below it (it is small next to any real spread), and it is
reported in ``info["stderr_floor"]``.

**States never sampled.** Def. 17 conditions on the steady state; a state the sample never
visited has no conditional characteristic in the sample. With ``on_missing="nan"`` (the
default) its values and errors are NaN and ``info["missing"]`` counts such states (listed in
``info["missing_states"]``); ``on_missing="raise"`` makes it an error.
Everything is seeded per explained state, so a state's values do not depend on which
other states are explained, nor on joblib's backend or worker count.
"""

from __future__ import annotations

import copy
import hashlib
import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from ..shapley.sampling import permutation_shapley_along_orders
from ..simulators import (
    PolicyFn,
    PolicySampler,
    Simulator,
    StateSample,
    check_probabilities,
    check_simulator,
)
from .explanation import Explanation

KINDS = ("behaviour", "outcome", "prediction")
METHOD = "monte carlo"
ON_MISSING = ("nan", "raise")
JEFFREYS = float(np.sqrt(0.5))  #: posterior sd x (n + 1) of a proportion seen 0 times in n
MAX_FEATURES = 62  #: bitmask coalitions (behaviour_values) fit int64


class MonteCarloSVERL:
    """Explain a policy through a simulator, with sampled characteristics and Shapley values.

    Parameters
    ----------
    simulator:
        A :class:`~shaprl.simulators.Simulator` (e.g. a ``GymSimulator``); used for
        outcome rollouts only.
    policy:
        Function from feature rows ``(k, F)`` to action probabilities ``(k, A)``.
    states:
        ``(N, F)`` feature rows of states visited by the policy (a steady-state sample, e.g.
        :func:`~shaprl.simulators.collect_states`), or a ``StateSample``.
    weights:
        Optional ``(N,)`` weights of the rows (default: equal). With the support's exact
        steady-state probabilities the characteristics equal the exact engine's.
    value_fn:
        Function from feature rows ``(k, F)`` to value estimates ``(k,)``; needed for
        prediction (Def. 44).
    gamma:
        Discount of the returns in outcome rollouts (the simulator does not know it). The
        default 1 is the paper's undiscounted domains; :func:`shaprl.explain_agent` passes the
        agent's own discount (``model.gamma``, else ``shaprl.agents.DEFAULT_GAMMA`` = 0.99).
    feature_names, action_names:
        Labels (default ``x0..``, ``a0..``).
    renormalise:
        Restrict behaviour characteristics to the explained state's valid actions and
        renormalise. Not the paper's Def. 17 (kept for comparison with the exact engine's
        option); outcome always renormalises (Remark 35).
    max_episode_steps:
        Rollouts longer than this are cut (their returns are then biased; a warning says so).
    episodes:
        Optional ``(N,)`` episode ids of the rows, for the bootstrap of the sample's error
        (taken from a ``StateSample``; without them every row is its own episode).

    Rollouts run as joblib jobs (one per explained state), so
    ``with joblib.parallel_config(backend="loky", n_jobs=4):`` (or a Dask or Ray backend)
    spreads them out; every job has its own seed, so results do not depend on the backend.

    Example::

        sim = GymSimulator(env, set_state=...)
        sample = collect_states(sim, policy, 50_000, seed=0)
        mc = MonteCarloSVERL(sim, policy, sample, value_fn=value_fn)
        explanation = mc.explain(feature_rows, n_permutations=512, n_rollouts=64, seed=0)
        explanation.phi("outcome", 0), explanation.stderr("outcome", 0)
    """

    def __init__(
        self,
        simulator: Simulator,
        policy: PolicyFn,
        states: np.ndarray | StateSample,
        *,
        weights: np.ndarray | None = None,
        value_fn: Callable[[np.ndarray], np.ndarray] | None = None,
        gamma: float = 1.0,
        feature_names: Sequence[str] | None = None,
        action_names: Sequence[str] | None = None,
        renormalise: bool = False,
        max_episode_steps: int = 10_000,
        episodes: np.ndarray | None = None,
    ) -> None:
        self.simulator = check_simulator(simulator)
        self.policy = policy
        self.value_fn = value_fn
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1]; got {gamma}")
        self.gamma = float(gamma)
        self.renormalise = renormalise
        self.max_episode_steps = int(max_episode_steps)
        rows = states.features if isinstance(states, StateSample) else np.asarray(states)
        if isinstance(states, StateSample) and episodes is None:
            episodes = states.episode
        if rows.ndim != 2 or len(rows) == 0:
            raise ValueError(
                f"states must be a non-empty (N, F) array of feature rows; got {rows.shape}"
            )
        if not np.isfinite(rows.astype(float)).all():
            raise ValueError("the state sample contains NaN or infinite features")
        w = np.ones(len(rows)) if weights is None else np.asarray(weights, float)
        if w.shape != (len(rows),) or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
            raise ValueError(f"weights must be {len(rows)} non-negative finite numbers, not all 0")
        # Duplicate rows are merged: the policy and value function are queried once per row.
        self.unique, inverse = np.unique(rows, axis=0, return_inverse=True)
        self._inverse = inverse.reshape(-1)
        self.weights = np.bincount(self._inverse, weights=w, minlength=len(self.unique))
        # The sample's own error is bootstrapped over episodes (rows if none are given);
        # weighted samples are taken as the distribution itself, with no sampling error.
        self._episode = None
        if weights is None:
            ep = np.arange(len(rows)) if episodes is None else np.asarray(episodes)
            if ep.shape != (len(rows),) or ep.dtype.kind not in "iu" or (ep < 0).any():
                raise ValueError(f"episodes must be {len(rows)} non-negative integer episode ids")
            self._episode = np.unique(ep, return_inverse=True)[1].reshape(-1)
        self.n_samples = len(rows)
        self.n_features = rows.shape[1]
        self.n_actions = self.simulator.n_actions
        self.feature_names = tuple(feature_names or (f"x{i}" for i in range(self.n_features)))
        self.action_names = tuple(action_names or (f"a{i}" for i in range(self.n_actions)))
        if len(self.feature_names) != self.n_features:
            raise ValueError(
                f"{len(self.feature_names)} feature names for {self.n_features} features"
            )
        if len(self.action_names) != self.n_actions:
            raise ValueError(f"{len(self.action_names)} action names for {self.n_actions} actions")
        self.pi = check_probabilities(policy(self.unique), self.unique, self.n_actions)
        self.v = None
        if value_fn is not None:
            self.v = np.asarray(value_fn(self.unique), float).reshape(-1)
            if self.v.shape != (len(self.unique),) or not np.isfinite(self.v).all():
                raise ValueError(
                    f"value_fn must return one finite value per feature row; got shape "
                    f"{np.shape(value_fn(self.unique[:1]))} or non-finite values"
                )
        self._rollouts: dict[tuple, dict] = {}

    # -- public ------------------------------------------------------------------------
    def explain(
        self,
        states: np.ndarray | Sequence[Sequence[float]],
        kinds: str | Sequence[str] | None = None,
        *,
        n_permutations: int = 256,
        n_rollouts: int = 64,
        seed: int = 0,
        n_groups: int | None = None,
        n_bootstrap: int = 64,
        progress: bool | None = None,
        on_missing: str = "nan",
    ) -> Explanation:
        """Sampled Shapley values (with standard errors) of the feature rows ``states``.

        ``kinds``: one kind or several (default: all three, or behaviour and outcome without
        a value function). ``n_permutations`` orders (antithetic pairs) per state;
        ``n_rollouts`` rollouts per valid action of each state for outcome, left out one at a
        time for the jackknife (``n_groups`` < ``n_rollouts`` leaves out groups instead: fewer
        degrees of freedom, a noisier error); ``n_bootstrap`` episode-bootstrap replicates of
        the state sample (0: take the sample as given; always 0 for a weighted sample).
        ``on_missing``: ``"nan"`` (default) gives states absent from the sample NaN values,
        counted in ``info["missing"]``; ``"raise"`` refuses them. Returns an
        :class:`Explanation` with ``method="monte carlo"``.
        """
        if kinds is None:  # every kind this explainer can compute
            kinds = KINDS if self.v is not None else ("behaviour", "outcome")
        kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        unknown = [k for k in kinds if k not in KINDS]
        if unknown or not kinds:
            raise ValueError(f"unknown explanation kind(s) {unknown or kinds}; choose from {KINDS}")
        if "prediction" in kinds and self.v is None:
            raise ValueError("prediction needs a value function: pass value_fn= to MonteCarloSVERL")
        if n_permutations < 2:
            raise ValueError(
                "n_permutations must be at least 2 (a standard error needs two orders)"
            )
        if n_bootstrap < 0 or n_bootstrap == 1:
            raise ValueError(f"n_bootstrap must be 0 or at least 2; got {n_bootstrap}")
        n_groups = n_rollouts if n_groups is None else int(n_groups)
        if "outcome" in kinds and not 2 <= n_groups <= n_rollouts:
            raise ValueError(f"need 2 <= n_groups <= n_rollouts; got {n_groups} and {n_rollouts}")
        if on_missing not in ON_MISSING:
            raise ValueError(f"on_missing must be one of {ON_MISSING}; got {on_missing!r}")
        all_rows = self._check_states(states, missing_ok=on_missing == "nan")
        present = self._present(all_rows)
        rows = all_rows[present]
        start = time.perf_counter()
        outcome = {}
        if "outcome" in kinds and len(rows):
            outcome = self.rollouts(
                rows, n_rollouts, seed=seed, n_groups=n_groups, progress=progress
            )
        floors = self._floors(kinds, outcome, n_rollouts)
        show = len(rows) >= 50 if progress is None else progress
        weights = self._bootstrap_weights(n_bootstrap, seed)
        per_state = [
            self._explain_one(
                x, kinds, n_permutations, seed, outcome.get(x.tobytes()), weights, floors
            )
            for x in tqdm(rows, desc="Monte Carlo SVERL", disable=not show, leave=False)
        ]
        outputs = {"behaviour": self.action_names, "outcome": ("value",), "prediction": ("value",)}
        values, samples = {}, {}
        n_orders = per_state[0]["n_orders"] if per_state else 0
        for kind in kinds:
            shape = (len(all_rows), self.n_features, len(outputs[kind]))
            phi, err = np.full(shape, np.nan), np.full(shape, np.nan)
            if per_state:
                phi[present] = np.stack([r[kind][0] for r in per_state])
                err[present] = np.stack([r[kind][1] for r in per_state])
            values[kind] = (phi, err, outputs[kind])
            samples[kind] = {
                "permutations": n_orders,
                "states": self.n_samples,
                "bootstrap": weights.shape[1] - 1,
            }
        if outcome:
            samples["outcome"]["rollouts"] = sum(o["rollouts"] for o in outcome.values())
            samples["outcome"]["simulator_steps"] = sum(o["steps"] for o in outcome.values())
        missing = [tuple(r.tolist()) for r in all_rows[~present]]
        if missing:
            warnings.warn(
                f"{len(missing)} of {len(all_rows)} explained states never occur in the state "
                "sample, so their conditional characteristics are undefined (SVERL Def. 17 "
                "conditions on the steady state): their values are NaN. Collect a larger sample "
                "or explain visited states.",
                RuntimeWarning,
                stacklevel=2,
            )
        return Explanation.from_values(
            self.feature_names,
            values,
            method=METHOD,
            features=all_rows,
            samples=samples,
            info={
                "seed": seed,
                "n_permutations": n_permutations,
                "n_rollouts": n_rollouts if outcome else 0,
                "n_groups": n_groups if outcome else 0,
                "gamma": self.gamma,
                "renormalise": self.renormalise,
                "missing": len(missing),
                "missing_states": missing,
                "stderr_floor": floors,
                "wall_time_s": time.perf_counter() - start,
            },
        )

    def behaviour_values(self, x: np.ndarray, coalitions: np.ndarray) -> np.ndarray:
        """``(K, A)`` sampled v(C) of Def. 17 at ``x`` for bitmask ``coalitions`` (Eq. 13)."""
        if self.n_features > MAX_FEATURES:
            raise ValueError(
                f"bitmask coalitions hold at most {MAX_FEATURES} features; this sample has "
                f"{self.n_features} (explain() works along feature orders and has no limit)"
            )
        return self._conditional(np.asarray(x), np.asarray(coalitions), self.pi)

    def rollouts(
        self,
        states: np.ndarray,
        n_rollouts: int,
        *,
        seed: int,
        n_groups: int = 8,
        progress: bool | None = None,
    ) -> dict[bytes, dict]:
        """First-passage rollouts of every valid action of each state (cached per config).

        Returns, keyed by the feature row's bytes, ``W`` and ``F``: ``(n_groups, A)`` group
        sums of the return before x recurs and of gamma**(recurrence time); ``counts``:
        ``(n_groups, A)`` rollouts per group and action; ``rollouts``, ``steps``,
        ``truncated``. Jobs (one per state) run through joblib.
        """
        rows = self._check_states(states)
        todo, jobs = [], []
        for x in rows:
            key = (x.tobytes(), n_rollouts, seed, n_groups, self.gamma, self.max_episode_steps)
            if key in self._rollouts or key in todo:
                continue
            valid = np.flatnonzero(self.simulator.valid_actions(x))
            if not valid.size:
                raise ValueError(f"state {tuple(x.tolist())} has no valid action to roll out")
            sizes = np.diff(np.linspace(0, n_rollouts, n_groups + 1).round().astype(int))
            seeds = np.random.SeedSequence([seed, _row_hash(x), 1]).spawn(n_groups)
            # One job per state (a simulator copy can be costly); groups keep their own seeds.
            todo.append(key)
            jobs.append(
                delayed(_first_passage_job)(
                    self.simulator,
                    self.policy,
                    x,
                    valid,
                    sizes.tolist(),
                    self.gamma,
                    self.max_episode_steps,
                    seeds,
                )  # fmt: skip
            )
        if jobs:
            show = len(jobs) >= 16 if progress is None else progress
            results = Parallel(return_as="generator")(jobs)
            results = tqdm(results, total=len(jobs), desc="rollouts", disable=not show, leave=False)
            fresh: dict[tuple, dict] = {}
            for key, groups in zip(todo, results, strict=True):
                acc = fresh[key] = _empty_groups(n_groups, self.n_actions)
                for g, res in enumerate(groups):
                    acc["W"][g], acc["F"][g], acc["counts"][g] = res["W"], res["F"], res["counts"]
                    acc["steps"] += res["steps"]
                    acc["truncated"] += res["truncated"]
                    acc["rollouts"] += int(res["counts"].sum())
                    acc["lo"] = min(acc["lo"], res["lo"])
                    acc["hi"] = max(acc["hi"], res["hi"])
            cut = sum(r["truncated"] for r in fresh.values())
            if cut:
                warnings.warn(
                    f"{cut} outcome rollouts reached max_episode_steps={self.max_episode_steps} "
                    "and were cut: their returns are truncated (biased). Raise max_episode_steps.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            self._rollouts.update(fresh)
        return {
            x.tobytes(): self._rollouts[
                (x.tobytes(), n_rollouts, seed, n_groups, self.gamma, self.max_episode_steps)
            ]
            for x in rows
        }

    # -- internals ---------------------------------------------------------------------
    def _present(self, rows: np.ndarray) -> np.ndarray:
        """``(k,)`` booleans: which feature rows occur in the state sample."""
        lookup = {r.tobytes() for r in self.unique}
        return np.fromiter((r.tobytes() in lookup for r in rows), bool, len(rows))

    def _floors(self, kinds, outcome: dict, n_rollouts: int) -> dict[str, float]:
        """The least standard error of each kind (see the module docstring).

        Jeffreys posterior spread ``range * sqrt(0.5) / (n + 1)`` of a bounded mean whose n
        independent draws all agreed: n = the sample's episodes (behaviour, prediction; none
        for a weighted sample, taken as exact) and, for outcome, also rollouts per action.
        """
        units = 0 if self._episode is None else int(self._episode.max()) + 1
        sample = JEFFREYS / (units + 1) if units else 0.0
        out: dict[str, float] = {}
        if "behaviour" in kinds:
            out["behaviour"] = sample  # probabilities lie in [0, 1]
        if "prediction" in kinds:
            out["prediction"] = sample * float(np.ptp(self.v))
        if "outcome" in kinds:
            lo = min((o["lo"] for o in outcome.values()), default=0.0)
            hi = max((o["hi"] for o in outcome.values()), default=0.0)
            span = max(hi - lo, 0.0)
            rollout = JEFFREYS / (n_rollouts + 1)
            out["outcome"] = span * float(np.hypot(sample, rollout))
        return out

    def _check_states(self, states, missing_ok: bool = False) -> np.ndarray:
        rows = np.asarray(states)
        if rows.ndim == 1:
            rows = rows[None]
        if rows.ndim != 2 or rows.shape[1] != self.n_features or len(rows) == 0:
            raise ValueError(
                f"explain takes feature rows of length {self.n_features} (a (k, {self.n_features}) "
                f"array); got shape {np.shape(states)}"
            )
        if rows.dtype.kind == "f" and not np.isfinite(rows).all():
            raise ValueError(
                "an explained feature row contains NaN or infinity; rows must be finite"
            )
        rows = rows.astype(self.unique.dtype)
        present = self._present(rows)
        if not present.all() and not missing_ok:
            row = rows[int(np.flatnonzero(~present)[0])]
            raise ValueError(
                f"state {tuple(row.tolist())} never occurs in the state sample, so its "
                "conditional characteristic is undefined (SVERL Def. 17 conditions on the "
                "steady state). Explain a visited state or collect a larger sample, or pass "
                "on_missing='nan' to get NaN for such states."
            )
        return rows

    def _conditional(
        self, x: np.ndarray, coalitions: np.ndarray, targets: np.ndarray, weights=None
    ) -> np.ndarray:
        """Weighted averages of ``targets`` over the sample rows agreeing with x on each coalition.

        ``targets`` is ``(U, m)`` over the unique sample rows; ``weights`` ``(U, J)`` weight
        columns (default: the sample's own). Returns ``(K, m, J)`` (``(K, m)`` by default).
        """
        w = self.weights[:, None] if weights is None else weights
        out = _ConditionalSums(self.unique, x, targets, w)(coalitions)
        return out[:, :, 0] if weights is None else out

    def _bootstrap_weights(self, n_bootstrap: int, seed: int) -> np.ndarray:
        """``(U, 1 + B)``: the sample's weights, then B Poisson bootstrap reweightings of
        whole episodes (rows of one episode are resampled together: they are correlated)."""
        if n_bootstrap == 0 or self._episode is None:
            return self.weights[:, None]
        rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
        counts = rng.poisson(1.0, size=(n_bootstrap, self._episode.max() + 1))
        boot = np.stack(
            [np.bincount(self._inverse, weights=c[self._episode], minlength=len(self.unique))
             for c in counts],
            axis=1,
        )  # fmt: skip
        return np.column_stack([self.weights, boot])

    def _explain_one(self, x, kinds, n_permutations, seed, outcome, weights, floors) -> dict:
        valid = self.simulator.valid_actions(x)
        a_count, n_cols = self.n_actions, weights.shape[1]
        if outcome is not None:
            qw, qf = _jackknife_terms(outcome)  # (1 + G, A): full estimate, then leave-one-out

        targets = self.pi if self.v is None else np.column_stack([self.pi, self.v])
        sums = _ConditionalSums(self.unique, x, targets, weights)

        def chain(orders: np.ndarray) -> np.ndarray:
            k, n = orders.shape
            both = sums.along(orders).reshape(k * (n + 1), targets.shape[1], n_cols)
            raw = both[:, :a_count]  # (K, A, J) behaviour of every prefix
            shown = _restrict(raw, valid) if self.renormalise else raw
            parts = [shown.reshape(len(raw), -1)]
            if self.v is not None:
                parts.append(both[:, a_count])
            if outcome is not None:
                q = _restrict(raw, valid)
                # Sample replicates with all rollouts, then rollout jackknife with the sample.
                parts.append(_returns(q, qw[0], qf[0], x))
                parts.append(_returns(q[:, :, :1], qw[1:].T[None], qf[1:].T[None], x))
            return np.concatenate(parts, axis=1).reshape(k, n + 1, -1)

        est = permutation_shapley_along_orders(
            chain, self.n_features, n_permutations, seed=_state_seed(seed, x)
        )
        vals, errs = est.values, est.stderr
        out: dict = {"n_orders": est.n_permutations}
        col = 0

        def take(width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            nonlocal col
            v = vals[:, col : col + width * n_cols].reshape(self.n_features, width, n_cols)
            e = errs[:, col : col + width * n_cols].reshape(self.n_features, width, n_cols)
            col += width * n_cols
            return v[..., 0], e[..., 0], _replicate_var(v)

        phi, perm_se, sample_var = take(a_count)
        floor = floors.get("behaviour", 0.0)
        out["behaviour"] = (phi, np.sqrt(np.maximum(perm_se**2 + sample_var, floor**2)))
        if self.v is not None:
            phi, perm_se, sample_var = take(1)
            floor = floors.get("prediction", 0.0)
            out["prediction"] = (phi, np.sqrt(np.maximum(perm_se**2 + sample_var, floor**2)))
        if outcome is not None:
            phi, perm_se, sample_var = take(1)
            loo = vals[:, col:]
            g = loo.shape[1]
            jack = (
                (g - 1) / g * np.nansum((loo - np.nanmean(loo, axis=1, keepdims=True)) ** 2, axis=1)
            )
            floor = floors.get("outcome", 0.0)
            out["outcome"] = (
                phi,
                np.sqrt(np.maximum(perm_se**2 + sample_var + jack[:, None], floor**2)),
            )
        return {k: out[k] for k in (*kinds, "n_orders")}


class _ConditionalSums:
    """Eq. 13 for many coalitions, from the sample rows grouped by their agreement with x.

    A row agrees with x on C exactly when C is inside its agreement set, so rows with the
    same agreement set are summed once (G groups). Along an order of the features, a group
    matches the first j features exactly when its first disagreement comes at position j or
    later, so all F + 1 prefixes of an order cost one pass over the groups (:meth:`along`).
    A weight column with no weight on a coalition's matching rows (a bootstrap resample that
    lost them) gets column 0's value.
    """

    def __init__(self, unique: np.ndarray, x: np.ndarray, targets: np.ndarray, w: np.ndarray):
        agree = unique == x[None]
        patterns, inverse = np.unique(agree, axis=0, return_inverse=True)
        bits = np.int64(1) << np.arange(min(unique.shape[1], MAX_FEATURES), dtype=np.int64)
        self.disagree = ~patterns  # (G, F)
        self._disagree_padded = np.column_stack([self.disagree, np.ones(len(patterns), bool)])
        if unique.shape[1] <= MAX_FEATURES:
            self.masks = patterns.astype(np.int64) @ bits
        n = len(agree)
        onehot = sp.csr_matrix(
            (np.ones(n), (inverse.reshape(-1), np.arange(n))), (len(patterns), n)
        )
        self.w = onehot @ w  # (G, J)
        self.sums = onehot @ (targets[:, :, None] * w[:, None, :]).reshape(len(agree), -1)
        self.shape = (targets.shape[1], w.shape[1])

    def along(self, orders: np.ndarray, chunk: int = 1 << 23) -> np.ndarray:
        """``(k, F + 1, m, J)`` values of the prefixes of each order (empty to full)."""
        g, f = self.disagree.shape
        step = max(1, chunk // max(g * f, 1))
        return np.concatenate(
            [self._along(orders[i : i + step]) for i in range(0, len(orders), step)]
        )

    def _along(self, orders: np.ndarray) -> np.ndarray:
        g, f = self.disagree.shape
        k = len(orders)
        # Disagreement in order position, with a sentinel after the last: the first True is
        # the number of prefixes the group matches.
        padded = np.column_stack([orders, np.full(k, f)])
        run = self._disagree_padded[:, padded].argmax(axis=2)  # (G, k)
        cells = (np.arange(k)[None, :] * (f + 1) + run).reshape(-1)
        groups = np.repeat(np.arange(g), k)
        hist = sp.csr_matrix((np.ones(g * k), (cells, groups)), shape=(k * (f + 1), g))
        # Group sums by run length, then prefix j collects every run length >= j.
        num = (hist @ self.sums).reshape(k, f + 1, -1)[:, ::-1].cumsum(axis=1)[:, ::-1]
        den = (hist @ self.w).reshape(k, f + 1, -1)[:, ::-1].cumsum(axis=1)[:, ::-1]
        num = num.reshape(k, f + 1, *self.shape)
        den = den[:, :, None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = num / den
        return np.where(den > 0, out, out[..., :1])

    def __call__(self, coalitions: np.ndarray, chunk: int = 1 << 22) -> np.ndarray:
        coalitions = np.asarray(coalitions, dtype=np.int64)
        step = max(1, chunk // max(len(self.masks), 1))  # bound the (K, G) match matrix
        return np.concatenate(
            [self._evaluate(coalitions[i : i + step]) for i in range(0, len(coalitions), step)]
        )

    def _evaluate(self, coalitions: np.ndarray) -> np.ndarray:
        c = coalitions[:, None]
        match = ((self.masks[None, :] & c) == c).astype(float)  # (K, G)
        den = (match @ self.w)[:, None, :]
        num = (match @ self.sums).reshape(len(c), *self.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = num / den
        return np.where(den > 0, out, out[:, :, :1])


def _replicate_var(v: np.ndarray) -> np.ndarray:
    """Bootstrap variance over the replicate columns 1..B of ``v`` (zero without replicates).

    Replicates that are NaN (an unbounded return in that resample) are left out.
    """
    reps = v[..., 1:]
    if reps.shape[-1] < 2:
        return np.zeros(v.shape[:-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        var = np.nanvar(reps, axis=-1, ddof=1)
    return np.nan_to_num(var)


def _returns(q: np.ndarray, qw: np.ndarray, qf: np.ndarray, x: np.ndarray) -> np.ndarray:
    """v(C) = q.QW / (1 - q.QF) for ``q`` of shape (K, A, J) and terms (A,) or (1, A, J).

    Column 0 is the estimate itself: a partial-information policy that never leaves x (an
    unbounded undiscounted return) is an error there. Replicate columns get NaN instead,
    and are left out of the variance (see :func:`_replicate_var`).
    """
    if qw.ndim == 1:
        qw, qf = qw[None, :, None], qf[None, :, None]
    recurrence = 1.0 - (q * qf).sum(axis=1)
    stuck = recurrence <= 1e-12
    if stuck[:, 0].any():
        raise ValueError(
            f"with its estimated partial-information policy the agent never leaves state "
            f"{tuple(x.tolist())} in the rollouts, so its return is unbounded. A larger state "
            "sample (or gamma < 1) usually removes such coalitions."
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(stuck, np.nan, (q * qw).sum(axis=1) / recurrence)


def _restrict(behaviour: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Remark 35: zero the unavailable actions and renormalise each row.

    ``behaviour`` is (K, A) or (K, A, J) with replicate columns 1..J-1; a replicate with no
    probability on a valid action becomes NaN (left out of the variance), column 0 an error.
    """
    shape = (1, -1) + (1,) * (behaviour.ndim - 2)
    masked = np.where(valid.reshape(shape), behaviour, 0.0)
    totals = masked.sum(axis=1, keepdims=True)
    empty = totals <= 0
    if empty.reshape(len(totals), -1)[:, 0].any():
        raise ValueError(
            "a partial-information policy gives no probability to any valid action of the "
            "explained state, so it cannot be renormalised (Remark 35)"
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(empty, np.nan, masked / totals)


def _jackknife_terms(outcome: dict) -> tuple[np.ndarray, np.ndarray]:
    """QW, QF from all rollout groups (row 0) and leaving out each group in turn (rows 1..G)."""
    w, f, n = outcome["W"], outcome["F"], outcome["counts"]
    tot_w, tot_f, tot_n = w.sum(0), f.sum(0), n.sum(0)
    loo_n = tot_n[None] - n
    with np.errstate(invalid="ignore", divide="ignore"):
        qw = np.vstack([tot_w / tot_n, (tot_w[None] - w) / loo_n])
        qf = np.vstack([tot_f / tot_n, (tot_f[None] - f) / loo_n])
    # Invalid actions have no rollouts: their terms never matter (q is zero there).
    return np.nan_to_num(qw), np.nan_to_num(qf)


def _empty_groups(n_groups: int, n_actions: int) -> dict:
    zeros = np.zeros((n_groups, n_actions))
    return {"W": zeros.copy(), "F": zeros.copy(), "counts": zeros.copy(), "steps": 0,
            "truncated": 0, "rollouts": 0, "lo": np.inf, "hi": -np.inf}  # fmt: skip


def _first_passage_job(sim, policy, x, actions, sizes, gamma, max_steps, seeds) -> list[dict]:
    """Rollout groups of one state, each with its own seed (see :func:`_first_passage_group`)."""
    sim = copy.deepcopy(sim)
    cache: dict[bytes, np.ndarray] = {}  # the policy is queried once per row for all groups
    return [
        _first_passage_group(sim, policy, x, actions, n, gamma, max_steps, s, cache)
        for n, s in zip(sizes, seeds, strict=True)
    ]


def _first_passage_group(sim, policy, x, actions, n, gamma, max_steps, seed, cache=None) -> dict:
    """``n`` rollouts per action: take a in x, follow pi until the end or x recurs."""
    rng = np.random.default_rng(seed)
    act = PolicySampler(policy, sim.n_actions, rng, cache)
    lo, hi = np.inf, -np.inf
    sim.reset(seed=int(rng.integers(2**31)))
    w_sum, f_sum, counts = (np.zeros(sim.n_actions) for _ in range(3))
    steps = truncated = 0
    for a in actions:
        for _ in range(n):
            sim.reset_to(x)
            feats, ret, done, cut = sim.step(int(a))
            disc, t = gamma, 1
            recur = 0.0
            while not done:
                if np.array_equal(feats, x):
                    recur = disc
                    break
                if cut or t >= max_steps:
                    truncated += 1
                    break
                feats, r, done, cut = sim.step(act(feats))
                ret += disc * r
                disc *= gamma
                t += 1
            w_sum[a] += ret
            f_sum[a] += recur
            lo, hi = min(lo, ret), max(hi, ret)
            counts[a] += 1
            steps += t
    return {"W": w_sum, "F": f_sum, "counts": counts, "steps": steps, "truncated": truncated,
            "lo": lo, "hi": hi}  # fmt: skip


def _row_hash(x: np.ndarray) -> int:
    return int.from_bytes(hashlib.sha256(np.ascontiguousarray(x).tobytes()).digest()[:8], "little")


def _state_seed(seed: int, x: np.ndarray) -> int:
    ss = np.random.SeedSequence([seed, _row_hash(x), 0])
    return int(ss.generate_state(1, np.uint64)[0])

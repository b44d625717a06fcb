"""Agents as they come -> the policy and value functions the SVERL explainers need.

Every explainer in :mod:`shaprl.sverl` needs, as functions of a batch of observations:

* **discrete actions**: the policy's action probabilities pi(. | s), ``(k, A)`` rows that
  are distributions (behaviour, SVERL Def. 17; outcome, Def. 34);
* **continuous actions**: the action the policy takes in expectation, ``(k, d)`` (SVERL
  Sec. 4.4, Def. 27: the behaviour characteristic is the expected action under partial
  information);
* a **value function** V^(s), ``(k,)``, the agent's own estimate explained by prediction
  (Def. 44).

:class:`AgentFunctions` bundles them with a sentence saying exactly which policy is explained.
Value-based agents act greedily: :func:`greedy_probabilities` spreads the probability
uniformly over actions whose values tie (within ``tie_atol``) -- an arg-max that breaks ties
by index (what ``numpy.argmax`` and SB3's ``predict`` do) would credit an arbitrary
tie-break to the features. :func:`epsilon_greedy_probabilities` explains the exploring
policy instead. Adapters for stable-baselines3 models are in :mod:`shaprl.agents.sb3`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

ArrayFn = Callable[[np.ndarray], np.ndarray]
#: Discount of the explained returns when the agent does not say (SB3's own default).
DEFAULT_GAMMA = 0.99
OUTPUTS = ("probabilities", "q_values", "actions")


@dataclass(frozen=True)
class AgentFunctions:
    """The functions of observations that SVERL explains, and what they are.

    Attributes
    ----------
    policy:
        Discrete actions: observations ``(k, ...)`` -> action probabilities ``(k, A)``.
        ``None`` for continuous-action agents.
    action:
        Continuous actions: observations -> the explained action ``(k, d)`` (see
        ``description``). ``None`` for discrete-action agents.
    value:
        Observations -> value estimates ``(k,)``, or ``None`` if the agent has none.
    n_actions:
        A (discrete) or the action dimension d (continuous).
    description:
        Which policy and value are explained, e.g. "greedy in Q (ties shared uniformly)".
    n_observations:
        How many integer observations a tabular agent knows (its Q-table's rows), checked
        against the environment's; ``None`` when unknown.
    gamma:
        The agent's own discount (an SB3 model's ``gamma``), or ``None``: the explained
        returns (outcome) then use :data:`DEFAULT_GAMMA`.
    """

    policy: ArrayFn | None
    value: ArrayFn | None
    n_actions: int
    description: str
    action: ArrayFn | None = None
    gamma: float | None = None
    n_observations: int | None = None

    @property
    def is_continuous(self) -> bool:
        return self.action is not None

    def probabilities(self, observations: np.ndarray) -> np.ndarray:
        """Checked action probabilities (a ValueError names a NaN, a negative or a bad sum)."""
        if self.policy is None:
            raise TypeError("this agent has continuous actions: use .action(observations)")
        obs = np.asarray(observations)
        return check_probabilities(self.policy(obs), obs, self.n_actions)

    def values(self, observations: np.ndarray) -> np.ndarray:
        """Checked value estimates ``(k,)``."""
        if self.value is None:
            raise ValueError(
                "this agent has no value function, so prediction (SVERL Def. 44) cannot be "
                "explained; pass value= to the adapter or leave 'prediction' out of kinds"
            )
        obs = np.asarray(observations)
        v = np.asarray(self.value(obs), float).reshape(-1)
        if len(v) != len(obs) or not np.isfinite(v).all():
            raise ValueError(
                f"the value function must return one finite number per observation; got "
                f"shape {v.shape} for {len(obs)} observations"
                + ("" if np.isfinite(v).all() else " with NaN or infinite entries")
            )
        return v


def check_probabilities(p: np.ndarray, observations: np.ndarray, n_actions: int) -> np.ndarray:
    """``p`` checked to be ``(k, n_actions)`` distributions; the error names the first bad row."""
    p = np.asarray(p, float)
    if p.shape != (len(observations), n_actions):
        raise ValueError(
            f"the policy returned shape {p.shape} for {len(observations)} observations; it must "
            f"return action probabilities of shape (observations, {n_actions})"
        )
    finite = np.isfinite(p).all(axis=1)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"the policy returned NaN or infinite probabilities {p[i].tolist()} for observation "
            f"{np.asarray(observations[i]).tolist()}: the agent's output is broken (e.g. a "
            "diverged network), not the explainer"
        )
    bad = (p < -1e-9).any(axis=1) | ~np.isclose(p.sum(axis=1), 1.0, atol=1e-6)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"the policy's output {p[i].tolist()} for observation "
            f"{np.asarray(observations[i]).tolist()} is not a probability distribution "
            "(negative entries or a sum other than 1)"
        )
    p = np.clip(p, 0.0, None)
    return p / p.sum(axis=1, keepdims=True)  # float32 networks: exact sums for the engine


def greedy_probabilities(
    q: np.ndarray, *, tie_atol: float = 1e-9, valid: np.ndarray | None = None
) -> np.ndarray:
    """Uniform over the (valid) actions within ``tie_atol`` of the best value, zero elsewhere."""
    q = np.asarray(q, float)
    if not np.isfinite(q[valid] if valid is not None else q).all():
        raise ValueError("action values contain NaN or infinity; cannot take a greedy policy")
    if valid is not None:
        q = np.where(valid, q, -np.inf)
    best = q.max(axis=1, keepdims=True)
    chosen = q >= best - tie_atol
    return chosen / chosen.sum(axis=1, keepdims=True)


def epsilon_greedy_probabilities(
    q: np.ndarray, epsilon: float, *, tie_atol: float = 1e-9, valid: np.ndarray | None = None
) -> np.ndarray:
    """(1 - epsilon) greedy (ties shared) + epsilon uniform over the (valid) actions."""
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must lie in [0, 1]; got {epsilon}")
    greedy = greedy_probabilities(q, tie_atol=tie_atol, valid=valid)
    allowed = np.ones_like(greedy) if valid is None else np.asarray(valid, float)
    uniform = allowed / allowed.sum(axis=1, keepdims=True)
    return (1.0 - epsilon) * greedy + epsilon * uniform


def _policy_name(epsilon: float, tie_atol: float) -> str:
    greedy = f"greedy in Q (actions within {tie_atol:g} of the best share the probability)"
    return greedy if epsilon == 0 else f"epsilon-greedy, epsilon={epsilon:g}, around the {greedy}"


def from_q_function(
    q_fn: ArrayFn, n_actions: int, *, epsilon: float = 0.0, tie_atol: float = 1e-9
) -> AgentFunctions:
    """Adapter for any action-value function ``q_fn(observations) -> (k, A)``.

    The policy is greedy (ties shared) or epsilon-greedy; the value is the policy's expected
    action value sum_a pi(a|s) Q(s, a), which is max_a Q(s, a) for the greedy policy.
    """

    def q_values(obs: np.ndarray) -> np.ndarray:
        q = np.asarray(q_fn(obs), float)
        if q.shape != (len(obs), n_actions):
            raise ValueError(f"Q returned shape {q.shape}; need ({len(obs)}, {n_actions})")
        if not np.isfinite(q).all():
            i = int(np.flatnonzero(~np.isfinite(q).all(axis=1))[0])
            raise ValueError(
                f"Q values {q[i].tolist()} of observation {np.asarray(obs[i]).tolist()} "
                "contain NaN or infinity"
            )
        return q

    def policy(obs: np.ndarray) -> np.ndarray:
        return epsilon_greedy_probabilities(q_values(obs), epsilon, tie_atol=tie_atol)

    def value(obs: np.ndarray) -> np.ndarray:
        q = q_values(obs)
        return (epsilon_greedy_probabilities(q, epsilon, tie_atol=tie_atol) * q).sum(axis=1)

    name = _policy_name(epsilon, tie_atol) + "; value = sum_a pi(a|s) Q(s, a)"
    return AgentFunctions(policy, value, int(n_actions), name)


def from_q_table(
    q_table: np.ndarray, *, epsilon: float = 0.0, tie_atol: float = 1e-9
) -> AgentFunctions:
    """Adapter for a tabular agent: ``q_table[s, a]`` over integer observations ``s``."""
    table = np.asarray(q_table, float)
    if table.ndim != 2:
        raise ValueError(f"a Q-table has shape (states, actions); got {table.shape}")

    def q_fn(obs: np.ndarray) -> np.ndarray:
        s = np.asarray(obs).reshape(-1)
        if s.dtype.kind not in "iu" and not np.all(s == np.round(s)):
            raise ValueError("a Q-table is indexed by integer observations (state indices)")
        s = s.astype(np.int64)
        if (s < 0).any() or (s >= len(table)).any():
            raise IndexError(f"observation outside the Q-table's 0..{len(table) - 1}")
        return table[s]

    agent = from_q_function(q_fn, table.shape[1], epsilon=epsilon, tie_atol=tie_atol)
    return replace(agent, n_observations=len(table))


def from_callable(
    fn: ArrayFn,
    *,
    output: str = "probabilities",
    n_actions: int,
    value: ArrayFn | None = None,
    epsilon: float = 0.0,
    tie_atol: float = 1e-9,
    description: str | None = None,
) -> AgentFunctions:
    """Adapter for any function of a batch of observations.

    ``output="probabilities"``: ``fn`` returns action probabilities ``(k, A)``, explained as
    they are. ``"q_values"``: ``fn`` returns action values, explained as the greedy (or
    epsilon-greedy) policy, see :func:`from_q_function`. ``"actions"``: ``fn`` returns
    continuous actions ``(k, d)`` (``n_actions`` = d), explained as the expected action
    (SVERL Def. 27). ``value`` optionally supplies the value estimates explained by prediction.
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}; got {output!r}")
    if output == "q_values":
        agent = from_q_function(fn, n_actions, epsilon=epsilon, tie_atol=tie_atol)
        if value is None:
            return agent
        return AgentFunctions(agent.policy, value, n_actions, description or agent.description)
    if output == "actions":

        def action(obs: np.ndarray) -> np.ndarray:
            a = np.asarray(fn(obs), float).reshape(len(obs), -1)
            if a.shape[1] != n_actions or not np.isfinite(a).all():
                raise ValueError(
                    f"the policy must return finite actions of shape ({len(obs)}, {n_actions}); "
                    f"got {a.shape}" + ("" if np.isfinite(a).all() else " with NaN")
                )
            return a

        text = description or "the callable's action (explained as the expected action)"
        return AgentFunctions(None, value, int(n_actions), text, action=action)
    text = description or "the callable's action probabilities, as given"
    return AgentFunctions(fn, value, int(n_actions), text)

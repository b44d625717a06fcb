"""A :class:`~shaprl.mdp.TabularMDP` from any gymnasium environment with a transition table.

gymnasium's toy-text environments (FrozenLake, CliffWalking, Taxi) expose their exact model
as ``env.unwrapped.P``: ``P[s][a]`` is a list of ``(probability, next_state, reward,
terminated)`` tuples over the integer states ``s``, and ``initial_state_distrib`` is the
start distribution. :func:`gym_tabular` turns that table into the MDP the exact SVERL engine
explains, with a feature decoder (state index -> feature row, e.g. (row, column)) and the
map between gymnasium's state indices and the MDP's.

How the table is read (the conventions of :mod:`shaprl.mdp`):

* A transition flagged ``terminated`` ends the episode: its probability is the mass missing
  from the row of (s, a), and its reward is counted in r(s, a) = sum_k p_k r_k.
* **Terminal states.** A state is terminal when at least one transition enters it and every
  transition that enters it is flagged ``terminated`` (FrozenLake's holes and goal,
  CliffWalking's goal), and it is not a start state. The agent never acts there, so terminal
  states are not states of the MDP. Their own rows in ``P`` (FrozenLake's terminated
  self-loops) are ignored.
* **Never-entered states** (no transition enters them and they are not start states, e.g.
  CliffWalking's cliff cells, from which gymnasium sends the agent back to the start) and
  states that cannot be reached from the start distribution are dropped with
  ``keep="reachable"`` (the default): they have zero steady-state probability, so the
  conditional explanations do not depend on them. ``keep="all"`` keeps every non-terminal
  state, reachable or not, with gymnasium's transitions: the marginal characteristic (SVERL
  Eq. 6) queries the policy at feature rows that may be such states (Taxi does this).
* MDP states keep gymnasium's order: MDP index i is gymnasium state ``gym_states[i]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..mdp.steady_state import reachable_states
from ..mdp.tabular import TabularMDP

KEEP = ("reachable", "all")
GRID_ACTIONS = {
    "FrozenLake": ("Left", "Down", "Right", "Up"),
    "CliffWalking": ("Up", "Right", "Down", "Left"),
    "Taxi": ("South", "North", "East", "West", "Pickup", "Dropoff"),
}


@dataclass(frozen=True)
class GymTabular:
    """A gymnasium environment's exact model and the index maps to and from it.

    Attributes
    ----------
    mdp:
        The :class:`TabularMDP` over the kept (non-terminal) states.
    gym_states:
        ``(S,)`` gymnasium index of each MDP state (increasing).
    terminal:
        Sorted gymnasium indices of the terminal states (see the module docstring).
    n_gym_states:
        Size of gymnasium's state space.
    decoder:
        The feature decoder, gymnasium indices ``(k,)`` -> feature rows ``(k, F)``.
    """

    mdp: TabularMDP
    gym_states: np.ndarray
    terminal: np.ndarray
    n_gym_states: int
    decoder: Callable[[np.ndarray], np.ndarray]

    def state(self, gym_state: int | Sequence[int] | np.ndarray) -> np.ndarray | int:
        """MDP index of gymnasium state(s); a ValueError says why a state has none."""
        g = np.asarray(gym_state)
        idx = np.searchsorted(self.gym_states, g.reshape(-1))
        idx = np.minimum(idx, len(self.gym_states) - 1)
        bad = self.gym_states[idx] != g.reshape(-1)
        if bad.any():
            s = int(g.reshape(-1)[np.flatnonzero(bad)[0]])
            if not 0 <= s < self.n_gym_states:
                why = f"outside gymnasium's 0..{self.n_gym_states - 1}"
            elif s in set(self.terminal.tolist()):
                why = "terminal (the agent never acts there)"
            else:
                why = 'never entered from the start states (pass keep="all" to keep it)'
            raise ValueError(f"gymnasium state {s} is not a state of the MDP: it is {why}")
        return int(idx[0]) if g.ndim == 0 else idx.reshape(g.shape)

    def observations(self, states: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """gymnasium observations (state indices) of MDP states (default: all of them)."""
        return self.gym_states if states is None else self.gym_states[np.asarray(states)]

    def observations_of(self, features: np.ndarray) -> np.ndarray:
        """gymnasium state indices of feature rows (a KeyError names a row that is no state)."""
        return self.gym_states[self.mdp.indices_of(np.atleast_2d(features))]

    def policy_table(self, policy: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``(S, A)`` table of a policy function of gymnasium observations (integer states)."""
        probs = np.asarray(policy(self.gym_states), float)
        if probs.shape != (self.mdp.n_states, self.mdp.n_actions):
            raise ValueError(
                f"the policy returned shape {probs.shape} for {self.mdp.n_states} states; it "
                f"must return action probabilities of shape (states, {self.mdp.n_actions})"
            )
        return probs

    def value_table(self, value: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``(S,)`` table of a value function of gymnasium observations."""
        v = np.asarray(value(self.gym_states), float).reshape(-1)
        if v.shape != (self.mdp.n_states,):
            raise ValueError(f"the value function returned {v.shape}; need ({self.mdp.n_states},)")
        return v

    def simulator(self, env_factory: Callable[[], object]):
        """A :class:`~shaprl.simulators.GymSimulator` on the same states, for Monte Carlo
        SVERL: feature rows in and out, reset to a state by setting ``env.unwrapped.s``."""
        from ..simulators import GymSimulator

        def set_state(env, features):
            env.unwrapped.s = int(self.observations_of(features)[0])

        def observe(env, obs):
            return self.decoder(np.asarray([int(obs)]))[0]

        return GymSimulator(env_factory, set_state=set_state, observe=observe)

    def features_policy(self, policy: Callable[[np.ndarray], np.ndarray]):
        """A policy of feature rows (what Monte Carlo SVERL queries) from one of observations."""
        return lambda rows: policy(self.observations_of(rows))


def grid_decoder(n_cols: int) -> Callable[[np.ndarray], np.ndarray]:
    """State index -> (row, column) on a grid with ``n_cols`` columns (FrozenLake, CliffWalking)."""

    def decode(states: np.ndarray) -> np.ndarray:
        s = np.asarray(states, np.int64).reshape(-1)
        return np.column_stack(np.divmod(s, n_cols))

    return decode


def taxi_decoder(states: np.ndarray) -> np.ndarray:
    """Taxi state index -> (row, column, passenger, destination), gymnasium's ``decode``."""
    s = np.asarray(states, np.int64).reshape(-1)
    d = s % 4
    p = (s // 4) % 5
    x = (s // 20) % 5
    y = s // 100
    return np.column_stack([y, x, p, d])


def default_decoder(env) -> tuple[Callable[[np.ndarray], np.ndarray], tuple[str, ...]]:
    """The decoder and feature names for FrozenLake, CliffWalking and Taxi (others: the index)."""
    u = env.unwrapped
    name = type(u).__name__
    if name == "TaxiEnv":
        return taxi_decoder, ("y", "x", "P", "D")
    if hasattr(u, "ncol"):  # FrozenLake
        return grid_decoder(int(u.ncol)), ("row", "col")
    if hasattr(u, "shape") and len(getattr(u, "shape", ())) == 2:  # CliffWalking
        return grid_decoder(int(u.shape[1])), ("row", "col")
    return (lambda s: np.asarray(s, np.int64).reshape(-1, 1)), ("state",)


def gym_tabular(
    env,
    *,
    decoder: Callable[[np.ndarray], np.ndarray] | None = None,
    feature_names: Sequence[str] | None = None,
    action_names: Sequence[str] | None = None,
    gamma: float = 1.0,
    keep: str = "reachable",
    start: np.ndarray | None = None,
    name: str | None = None,
) -> GymTabular:
    """Build the exact tabular model of a gymnasium environment that exposes ``unwrapped.P``.

    Parameters
    ----------
    env:
        A gymnasium environment (wrapped or not) whose ``unwrapped`` has ``P``.
    decoder:
        Function from gymnasium state indices ``(k,)`` to feature rows ``(k, F)``; distinct
        states must get distinct rows. Default: (row, col) for FrozenLake and CliffWalking,
        (y, x, P, D) for Taxi, the index itself otherwise.
    feature_names, action_names:
        Labels (defaults follow the decoder and the environment).
    gamma:
        Discount factor of the explained returns (gymnasium does not define one).
    keep:
        ``"reachable"`` (default) or ``"all"`` non-terminal states; see the module docstring.
    start:
        Start distribution over gymnasium states (default ``initial_state_distrib``).
    name:
        Name of the MDP (default: the environment's id).
    """
    if keep not in KEEP:
        raise ValueError(f"keep must be one of {KEEP}; got {keep!r}")
    u = env.unwrapped
    table = getattr(u, "P", None)
    if not isinstance(table, dict) or not table:
        raise TypeError(
            f"{type(u).__name__} exposes no transition table unwrapped.P; build a TabularMDP "
            "by hand, or explain the agent with Monte Carlo SVERL through a simulator"
        )
    n_gym = len(table)
    n_actions = len(table[0])
    if start is None:
        start = getattr(u, "initial_state_distrib", None)
        if start is None:
            raise ValueError("the environment has no initial_state_distrib: pass start=")
    start = np.asarray(start, float).reshape(-1)
    if start.shape != (n_gym,):
        raise ValueError(f"start must have one probability per gymnasium state ({n_gym})")
    auto_decoder, auto_names = default_decoder(env)
    if decoder is None:
        decoder, feature_names = auto_decoder, tuple(feature_names or auto_names)
    src, act, dst, prob, rew, ended = _flatten(table, n_gym, n_actions)
    entered = np.zeros(n_gym, bool)
    entered_live = np.zeros(n_gym, bool)
    entered[dst] = True
    entered_live[dst[~ended]] = True
    terminal = entered & ~entered_live & (start <= 0)
    # Non-terminal transitions between non-terminal states define the chain.
    live = ~ended & ~terminal[src]
    keep_mask = ~terminal
    if keep == "reachable":
        graph = sp.csr_matrix((np.ones(live.sum()), (src[live], dst[live])), shape=(n_gym, n_gym))
        reach = reachable_states(graph, np.flatnonzero(start > 0))
        keep_mask = np.zeros(n_gym, bool)
        keep_mask[reach] = True
        keep_mask &= ~terminal
    gym_states = np.flatnonzero(keep_mask)
    new = np.full(n_gym, -1)
    new[gym_states] = np.arange(len(gym_states))
    mine = keep_mask[src]
    rewards = np.zeros((len(gym_states), n_actions))
    np.add.at(rewards, (new[src[mine]], act[mine]), prob[mine] * rew[mine])
    moves = mine & ~ended
    if (new[dst[moves]] < 0).any():
        k = int(np.flatnonzero(moves & (new[dst] < 0))[0])
        raise AssertionError(f"kept state {src[k]} moves into dropped state {dst[k]}")
    n = len(gym_states)
    transitions = sp.csr_matrix(
        (prob[moves], (new[src[moves]] * n_actions + act[moves], new[dst[moves]])),
        shape=(n * n_actions, n),
    )
    features = np.asarray(decoder(gym_states))
    if features.ndim != 2 or len(features) != n:
        raise ValueError(f"the decoder must return one feature row per state; got {features.shape}")
    if len(np.unique(features, axis=0)) != n:
        raise ValueError(
            "the decoder gives two states the same feature row; features must identify states"
        )
    env_name = type(u).__name__.removesuffix("Env")
    if action_names is None:
        action_names = GRID_ACTIONS.get(env_name, tuple(f"a{i}" for i in range(n_actions)))
    feature_names = tuple(feature_names or (f"x{i}" for i in range(features.shape[1])))
    mass = start[gym_states].sum()
    if mass <= 0:
        raise ValueError("no start state is kept: the start distribution is empty")
    mdp = TabularMDP(
        features=features,
        transitions=transitions,
        rewards=rewards,
        valid_actions=np.ones((n, n_actions), bool),
        start=start[gym_states] / mass,
        gamma=float(gamma),
        feature_names=feature_names,
        action_names=tuple(action_names),
        state_labels=tuple(str(tuple(r.tolist())) for r in features),
        name=name or (env.spec.id if getattr(env, "spec", None) else env_name),
        info={"source": "gymnasium unwrapped.P", "keep": keep},
    )
    return GymTabular(mdp, gym_states, np.flatnonzero(terminal), n_gym, decoder)


def _flatten(table: dict, n_gym: int, n_actions: int):
    """``P`` as flat arrays (source, action, destination, probability, reward, terminated)."""
    src, act, dst, prob, rew, ended = [], [], [], [], [], []
    for s in range(n_gym):
        for a in range(n_actions):
            for p, nxt, r, done in table[s][a]:
                src.append(s)
                act.append(a)
                dst.append(nxt)
                prob.append(p)
                rew.append(r)
                ended.append(bool(done))
    prob_arr = np.asarray(prob, float)
    if not np.isfinite(prob_arr).all() or (prob_arr < 0).any():
        k = int(np.flatnonzero(~np.isfinite(prob_arr) | (prob_arr < 0))[0])
        raise ValueError(
            f"unwrapped.P[{src[k]}][{act[k]}] has transition probability {prob_arr[k]}: "
            "probabilities must be finite and non-negative"
        )
    out = (np.asarray(src), np.asarray(act), np.asarray(dst), prob_arr)
    return (*out, np.asarray(rew, float), np.asarray(ended, bool))

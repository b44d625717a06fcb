"""Mastermind(k, g, p): clues, model size, model/env agreement, the SVERL agent (SVERL Sec. 7.1)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from shaprl.domains import mastermind as mm
from shaprl.mdp import steady_state
from shaprl.sverl import SVERLExplainer

SMALL_GAMES = [(2, 2, 2), (2, 3, 2), (3, 2, 2), (2, 2, 3), (3, 3, 3)]


def brute_force_clues(guess, code):
    position = sum(g == c for g, c in zip(guess, code, strict=True))
    rest_g = [g for g, c in zip(guess, code, strict=True) if g != c]
    rest_c = [c for g, c in zip(guess, code, strict=True) if g != c]
    misplaced = 0
    for letter in rest_g:
        if letter in rest_c:
            rest_c.remove(letter)
            misplaced += 1
    return position, misplaced


@pytest.mark.parametrize("k,p", [(2, 2), (3, 3), (4, 3), (3, 4)])
def test_clues_match_brute_force(k, p):
    spec = mm.MastermindSpec(k, 1, p)
    pos, mis = mm.clue_table(spec)
    letters = mm.code_letters(spec)
    for a, n in itertools.product(range(spec.n_codes), repeat=2):
        assert (pos[a, n], mis[a, n]) == brute_force_clues(letters[a], letters[n])


def test_paper_clue_example_and_action_names():
    spec = mm.MastermindSpec(2, 3, 2)
    names = mm.action_names(spec)
    assert names == ("AA", "BA", "AB", "BB")  # first letter least significant
    pos, mis = mm.clue_table(spec)
    # Paper: hidden AB, guess AA -> position 1, misplaced 0.
    assert (
        pos[names.index("AA"), names.index("AB")],
        mis[names.index("AA"), names.index("AB")],
    ) == (1, 0)
    assert (
        pos[names.index("BA"), names.index("AB")],
        mis[names.index("BA"), names.index("AB")],
    ) == (0, 2)


def reachable_observations(k, g, p):
    """Every observation the environment can emit (terminal ones included), by brute force."""
    env = mm.MastermindEnv(k, g, p)
    seen, terminal = set(), set()
    for code in range(p**k):
        for seq in itertools.product(range(p**k), repeat=g):
            obs, _ = env.reset(options={"code": code})
            seen.add(tuple(obs))
            for a in seq:
                obs, _, done, _, _ = env.step(a)
                seen.add(tuple(obs))
                if done:
                    terminal.add(tuple(obs))
                    break
    return seen, terminal


@pytest.mark.parametrize("k,g,p", [(2, 2, 2), (2, 3, 2)])
def test_reachable_observations(k, g, p):
    seen, terminal = reachable_observations(k, g, p)
    mdp = mm.build_model(mm.MastermindSpec(k, g, p))
    non_terminal = {tuple(map(float, r)) for r in mdp.features}
    assert non_terminal == seen - terminal
    if (k, g, p) == (2, 2, 2):
        # FastSVERL's "53 reachable observations" of Mastermind-222 count terminal boards too.
        assert len(seen) == 53 and mdp.n_states == 9
    if (k, g, p) == (2, 3, 2):  # SVERL's game
        assert mdp.n_states == 37 and len(seen) == 181


@pytest.mark.parametrize("k,g,p", SMALL_GAMES)
def test_model_invariants(k, g, p):
    spec = mm.MastermindSpec(k, g, p)
    mdp = mm.build_model(spec)
    rows = np.asarray(mdp.transitions.sum(axis=1)).ravel()
    assert (rows <= 1 + 1e-12).all() and (mdp.transitions.data > 0).all()
    # Termination probability = P(correct guess), except on the last guess (always ends).
    level = mdp.info["level"]
    consistent = mdp.info["consistent"]
    p_win = consistent / consistent.sum(axis=1, keepdims=True)
    expected = np.where((level == g - 1)[:, None], 1.0, p_win)
    np.testing.assert_allclose(mdp.termination, expected, atol=1e-12)
    np.testing.assert_allclose(mdp.rewards, -1.0 + spec.win_bonus * p_win)
    # The consistent sets stored with the model equal those recomputed from the features.
    np.testing.assert_array_equal(mm.consistent_codes(spec, mdp.features), consistent)
    np.testing.assert_array_equal(mm.guesses_made(spec, mdp.features), level)


@pytest.mark.parametrize("k,g,p", SMALL_GAMES)
def test_reachable_model_matches_full_model(k, g, p):
    spec = mm.MastermindSpec(k, g, p)
    full = mm.build_model(spec)
    policy = mm.first_consistent_policy(spec)
    reach = mm.build_model(spec, policy)
    assert not reach.info["complete"] and reach.n_states <= full.n_states
    pf, pr = mm.policy_table(full, policy), mm.policy_table(reach, policy)
    df, dr = steady_state(full, pf), steady_state(reach, pr)
    idx = full.indices_of(reach.features)
    np.testing.assert_allclose(df[idx], dr, atol=1e-12)
    assert np.isclose(df[idx].sum(), 1.0)
    ef = SVERLExplainer(full, pf)
    er = SVERLExplainer(reach, pr)
    np.testing.assert_allclose(ef.values[idx][dr > 0], er.values[dr > 0], atol=1e-10)
    if spec.n_features <= 12:
        a = ef.explain(full.features[ef.support], kinds=("behaviour", "prediction"))
        b = er.explain(full.features[ef.support], kinds=("behaviour", "prediction"))
        for kind in ("behaviour", "prediction"):
            np.testing.assert_allclose(a.results[kind].phi, b.results[kind].phi, atol=1e-12)


@pytest.mark.parametrize("k,g,p", [(2, 3, 2), (3, 3, 3), (2, 4, 3)])
def test_env_and_model_agree_on_sampled_episodes(k, g, p):
    spec = mm.MastermindSpec(k, g, p, win_bonus=float(g))
    mdp = mm.build_model(spec)
    env = mm.MastermindEnv(k, g, p, win_bonus=float(g))
    rng = np.random.default_rng(0)
    returns, predicted = [], []
    for episode in range(300):
        obs, info = env.reset(seed=episode)
        s = mdp.index_of(obs.astype(np.int64))
        assert s == 0 and info["consistent"] == spec.n_codes
        total = 0.0
        while True:
            a = int(rng.integers(spec.n_codes))
            obs, reward, done, truncated, info = env.step(a)
            assert not truncated and reward in (-1.0, -1.0 + spec.win_bonus)
            assert mdp.info["consistent"][s, info["code"]]
            total += reward
            if done:
                assert mdp.termination[s, a] > 0
                break
            succ, prob = mdp.successors(s, a)
            nxt = mdp.index_of(obs.astype(np.int64))
            assert nxt in succ and prob[list(succ).index(nxt)] > 0
            assert info["consistent"] == mdp.info["consistent"][nxt].sum()
            s = nxt
        returns.append(total)
    # Expected return of the uniform random policy: model vs the sample mean.
    from shaprl.mdp import policy_evaluation, uniform_policy

    v0 = policy_evaluation(mdp, uniform_policy(mdp))[0]
    predicted = np.mean(returns)
    assert abs(predicted - v0) < 4 * np.std(returns) / np.sqrt(len(returns)) + 1e-9


def test_sverl_agent_trajectory():
    mdp = mm.build_model(mm.MastermindSpec(2, 3, 2))
    policy, q = mm.sverl_agent(mdp)
    names = mdp.action_names
    play = {
        code: [
            names[int(policy[s].argmax())]
            for s in mm.episode_states(mdp, policy, names.index(code))
        ]
        for code in names
    }
    assert play == {"AA": ["AA"], "BA": ["AA", "BA"], "AB": ["AA", "BA", "AB"], "BB": ["AA", "BB"]}
    assert np.ptp(q[0]) < 1e-9  # all first guesses tie
    assert np.isclose(q[0, 0], -1.0)  # 3/4 * (-1) + 1/2 * (-1/2)
    d = steady_state(mdp, policy)
    np.testing.assert_allclose(np.sort(d[d > 0]), [0.125, 0.125, 0.25, 0.5])


def test_sverl_fig3_signs():
    mdp = mm.build_model(mm.MastermindSpec(2, 3, 2))
    policy, _ = mm.sverl_agent(mdp)
    states = mm.episode_states(mdp, policy, mdp.action_names.index("AB"))
    expl = SVERLExplainer(mdp, policy).explain(states)
    first = expl.phi("behaviour", states[0])["AA"].to_numpy()
    assert (first[:4] > 0).all() and np.allclose(first[8:], 0)
    assert np.abs(expl.phi("outcome", states[0]).to_numpy()).max() < 1e-9
    pos = list(mdp.feature_names).index("g1 position")
    assert (
        expl.phi("prediction", states[1])["value"].iloc[pos]
        < 0
        < expl.phi("outcome", states[1])["value"].iloc[pos]
    )


def test_env_errors_and_bad_input():
    env = mm.MastermindEnv()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=1, options={"code": 3})
    with pytest.raises(ValueError, match="action"):
        env.step(7)
    with pytest.raises(ValueError, match="features"):
        mm.consistent_codes(mm.MastermindSpec(), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="value iteration"):
        mdp = mm.build_model(mm.MastermindSpec(), mm.first_consistent_policy(mm.MastermindSpec()))
        mm.sverl_agent(mdp)


def test_cached_model(tmp_path, monkeypatch):
    monkeypatch.setenv("SHAPRL_CACHE_DIR", str(tmp_path))
    a = mm.mastermind_model(2, 3, 2)
    b = mm.mastermind_model(2, 3, 2)
    np.testing.assert_array_equal(a.features, b.features)
    assert list(tmp_path.glob("mastermind_model/*.pkl"))


def test_guess_rows_match_feature_names():
    spec = mm.MastermindSpec(2, 3, 2)
    names = mm.feature_names(spec)
    rows = mm.guess_rows(spec)
    assert sorted(rows) == [1, 2, 3]
    for i, idx in rows.items():
        assert all(names[j].startswith(f"g{i} ") for j in idx)
    assert sorted(np.concatenate(list(rows.values())).tolist()) == list(range(spec.n_features))

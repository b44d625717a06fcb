"""Tests of the exact Minesweeper model (SVERL Sec. 7.2) and its explanations."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from shaprl.domains import minesweeper as ms
from shaprl.mdp import steady_state
from shaprl.sverl import SVERLExplainer


@pytest.fixture(scope="module")
def paper_model():
    mdp = ms.build_minesweeper(4, 4, 2)
    policy, q = ms.optimal_policy(mdp)
    return mdp, policy, q


# -- an independent, slow reference implementation -----------------------------------------
def brute_force_model(rows: int, cols: int, mines: int) -> dict:
    """(board, click) -> (P(mine), {next board: p}) by direct simulation of every layout."""
    n = rows * cols

    def nbrs(j):
        r, c = divmod(j, cols)
        return [
            rr * cols + cc
            for rr in range(r - 1, r + 2)
            for cc in range(c - 1, c + 2)
            if (rr, cc) != (r, c) and 0 <= rr < rows and 0 <= cc < cols
        ]

    def visible(layout, opened):
        return tuple(sum(k in layout for k in nbrs(j)) if j in opened else -1 for j in range(n))

    def click(layout, opened, j):
        opened, stack = set(opened), [j]
        while stack:
            k = stack.pop()
            if k in opened:
                continue
            opened.add(k)
            if not any(m in layout for m in nbrs(k)):
                stack.extend(nbrs(k))
        return frozenset(opened)

    layouts = [frozenset(c) for c in combinations(range(n), mines)]
    model: dict = {}
    todo, done = [tuple([-1] * n)], set()
    while todo:
        board = todo.pop()
        if board in done:
            continue
        done.add(board)
        opened = frozenset(j for j in range(n) if board[j] != -1)
        # Posterior: uniform over the layouts with no mine on an opened square that
        # reproduce the visible board.
        pairs = [lay for lay in layouts if not lay & opened and visible(lay, opened) == board]
        for j in range(n):
            if board[j] != -1:
                continue
            p_mine, succ = 0.0, {}
            for lay in pairs:
                if j in lay:
                    p_mine += 1 / len(pairs)
                    continue
                new = click(lay, opened, j)
                if len(new) == n - mines:
                    continue  # only mines left: the episode ends
                b2 = visible(lay, new)
                succ[b2] = succ.get(b2, 0.0) + 1 / len(pairs)
                todo.append(b2)
            model[(board, j)] = (p_mine, succ)
    return model


@pytest.mark.parametrize("shape", [(3, 3, 1), (2, 3, 2), (2, 4, 2)])
def test_matches_brute_force_simulation(shape):
    mdp = ms.build_minesweeper(*shape)
    ref = brute_force_model(*shape)
    boards = {tuple(int(v) for v in f) for f in mdp.features}
    assert boards == {b for b, _ in ref}
    for (board, j), (p_mine, succ) in ref.items():
        s = mdp.index_of(board)
        assert mdp.valid_actions[s, j]
        assert mdp.rewards[s, j] == pytest.approx(-p_mine, abs=1e-12)
        idx, probs = mdp.successors(s, j)
        got = {tuple(int(v) for v in mdp.features[i]): p for i, p in zip(idx, probs, strict=True)}
        assert got.keys() == succ.keys()
        for b2, p in succ.items():
            assert got[b2] == pytest.approx(p, abs=1e-12)


def test_paper_state_counts(paper_model):
    mdp, _, _ = paper_model
    assert mdp.n_states == 49_025  # the authors' enumeration
    assert mdp.info["n_terminal"] == 125_504
    assert mdp.info["n_layouts"] == 120


def test_model_invariants(paper_model):
    mdp, _, _ = paper_model
    assert mdp.n_actions == mdp.n_features == 16
    assert np.array_equal(mdp.valid_actions, mdp.features == ms.UNOPENED)
    assert (mdp.features[0] == ms.UNOPENED).all() and mdp.start[0] == 1.0
    mass = np.asarray(mdp.transitions.sum(axis=1)).reshape(mdp.n_states, -1)
    # Every valid click either continues, explodes (reward -1) or finishes the board.
    assert (mass + (-mdp.rewards) <= 1 + 1e-12).all()
    assert np.allclose(mass[~mdp.valid_actions], 0) and np.allclose(
        mdp.rewards[~mdp.valid_actions], 0
    )
    # Each click opens at least one square: successors have strictly more opened squares.
    opened = (mdp.features != ms.UNOPENED).sum(axis=1)
    rows, cols = mdp.transitions.nonzero()
    assert (opened[cols] > opened[rows // mdp.n_actions]).all()
    # -reward is the posterior mine probability of the clicked square.
    for s in (0, 100, 20_000, mdp.n_states - 1):
        p = ms.mine_probability(mdp.features[s])
        v = mdp.valid_actions[s]
        assert np.allclose(-mdp.rewards[s, v], p[v])
        assert mdp.info["n_consistent"][s] == len(ms.consistent_layouts(mdp.features[s]))


def test_two_by_two_value_known():
    # On 2x2 with one mine every clue reads 1, so the agent can only guess: win prob 1/4.
    mdp = ms.build_minesweeper(2, 2, 1)
    _, q = ms.optimal_policy(mdp)
    assert q[0].max() == pytest.approx(-0.75)


def test_flood_fill_opens_zero_region():
    board = ms.Board()
    layout = np.zeros((1, 16), bool)
    layout[0, [7, 10]] = True
    counts = ms.adjacent_counts(layout, board)
    flood = ms.flood_masks(layout, counts, board)[0]
    opened = [j for j in range(16) if flood[0] >> j & 1]
    assert opened == [0, 1, 2, 4, 5, 6, 8, 9, 12, 13]
    assert counts[0, 6] == 2 and counts[0, 11] == 2 and counts[0, 15] == 1


def test_paper_boards_and_moves(paper_model):
    mdp, policy, q = paper_model
    d = steady_state(mdp, policy)
    s1 = mdp.index_of(ms.parse_board(ms.PAPER_S1))
    s2 = mdp.index_of(ms.parse_board(ms.PAPER_S2))
    assert d[s1] > 0 and d[s2] > 0
    assert policy[s1, 11] == 1.0 and policy[s2, 3] == 1.0
    assert q[s1, 11] == pytest.approx(0.0) and q[s1, 10] == pytest.approx(-1.0)
    assert q[s1, 3] == pytest.approx(-0.5) and q[s1, 7] == pytest.approx(-0.5)
    assert list(ms.certain_mines(ms.parse_board(ms.PAPER_S1))) == [10]
    assert list(ms.certain_mines(ms.parse_board(ms.PAPER_S2))) == [7, 10]
    assert mdp.feature_names[11] == "(4,2)" and mdp.feature_names[3] == "(4,4)"


def test_explanations_of_first_paper_board(paper_model):
    mdp, policy, _ = paper_model
    explainer = SVERLExplainer(mdp, policy)
    s1 = mdp.index_of(ms.parse_board(ms.PAPER_S1))
    expl = explainer.explain([s1])
    behaviour = expl.phi("behaviour", s1)["(4,2)"]
    table = explainer.behaviour_table(s1)
    # Efficiency: the attributions sum to v(full) - v(empty).
    assert behaviour.sum() == pytest.approx(table[-1, 11] - table[0, 11])
    assert table[-1, 11] == pytest.approx(1.0)
    assert behaviour.idxmax() == "(4,2)"
    outcome = expl.phi("outcome", s1)["value"]
    out_table = explainer.outcome_table(s1)
    assert out_table[-1, 0] == pytest.approx(0.0)  # full information: V(S1) = 0
    assert outcome.sum() == pytest.approx(out_table[-1, 0] - out_table[0, 0])
    prediction = expl.phi("prediction", s1)["value"]
    unopened = mdp.features[s1] == ms.UNOPENED
    assert (prediction[unopened] < 0).all() and (prediction[~unopened] > 0).all()


def test_board_text_round_trip_and_errors():
    f = ms.parse_board(ms.PAPER_S1)
    assert ms.board_text(f) == ms.PAPER_S1
    assert list(f[[3, 7, 10, 11]]) == [-1] * 4
    with pytest.raises(ValueError, match="4 rows"):
        ms.parse_board("001u/012u")
    with pytest.raises(ValueError, match="unknown square"):
        ms.parse_board("001x/012u/01uu/0111")
    with pytest.raises(ValueError, match="exceeds"):
        ms.Board(5, 5, 2)
    with pytest.raises(ValueError, match="mines"):
        ms.Board(2, 2, 4)


def test_play_episode_small_board():
    mdp = ms.build_minesweeper(3, 3, 1)
    policy, _ = ms.optimal_policy(mdp)
    stages = ms.play_episode(mdp, policy, [5])
    labels = [mdp.label(s) for s, _ in stages]
    assert labels[0] == "uuu/uuu/uuu"
    assert labels[-2:] == ["01u/01u/01u", "011/01u/01u"]  # the smoke profile's boards
    assert all(policy[s, a] > 0 for s, a in stages)

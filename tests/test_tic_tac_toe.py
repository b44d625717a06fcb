"""Tic-Tac-Toe against a minimax opponent (SVERL Sec. 6.4): opponent, model, explanations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from shaprl.domains import tic_tac_toe as t3
from shaprl.mdp import policy_evaluation, steady_state
from shaprl.sverl import SVERLExplainer

E, X, O = t3.EMPTY, t3.X, t3.O  # noqa: E741


def brute_force_value(board: tuple[int, ...], mover: int) -> int:
    """Unmemoised full-tree minimax (the authors' approach), value for ``mover``."""
    other = X + O - mover
    scores = []
    for sq in t3.empty_squares(board):
        child = t3.place(board, sq, mover)
        if t3.winner(child) == mover:
            scores.append(1)
        elif E not in child:
            scores.append(0)
        else:
            scores.append(-brute_force_value(child, other))
    return max(scores)


@pytest.fixture(scope="module")
def solved():
    mdp = t3.tic_tac_toe()
    policy, q, v = t3.optimal_policy(mdp)
    return mdp, policy, q, v, steady_state(mdp, policy)


# -- rules and opponent ---------------------------------------------------------------------
def test_winner_detects_every_line_and_nothing_else():
    for line in t3.LINES:
        board = tuple(O if i in line else E for i in range(9))
        assert t3.winner(board) == O
    assert t3.winner((X, O, X, X, O, O, O, X, X)) == E  # a full drawn board
    assert t3.board_label(t3.FIG2_STATE) == "___/_X_/O_O"
    with pytest.raises(ValueError, match="not empty"):
        t3.place(t3.FIG2_STATE, 4, O)


def test_opponent_takes_a_win_and_blocks_a_threat():
    # O can complete the top row at TR.
    board = (O, O, E, X, X, E, X, E, E)
    assert 2 in t3.opponent_replies(board)
    assert t3.move_scores(board)[2] == t3.WIN
    # X threatens the middle row at MR and O has no line to finish: only the block draws.
    board = (O, E, E, X, X, E, E, E, E)
    scores = t3.move_scores(board)
    assert t3.opponent_replies(board) == [5]
    assert scores[5] == t3.DRAW and all(v == t3.LOSS for sq, v in scores.items() if sq != 5)


def test_opponent_has_no_preference_for_faster_wins():
    # Search positions where O has an immediate win and also a slower forced win.
    found = False
    for board in _live_boards(O, max_marks=5):
        scores = t3.move_scores(board)
        immediate = [sq for sq in scores if t3.winner(t3.place(board, sq, O)) == O]
        if immediate and set(t3.opponent_replies(board)) - set(immediate):
            found = True
            break
    assert found, "expected a position where a slower win ties with an immediate one"


def test_memoised_minimax_matches_brute_force():
    rng = np.random.default_rng(0)
    boards = list(_live_boards(O, max_marks=7))
    for i in rng.choice(len(boards), size=60, replace=False):
        board = boards[i]
        for sq, score in t3.move_scores(board).items():
            child = t3.place(board, sq, O)
            if t3.winner(child) == O:
                expected = 1
            elif E not in child:
                expected = 0
            else:
                expected = -brute_force_value(child, X)
            assert score == expected, (t3.board_label(board), sq)
    # Perfect play from the empty board is a draw.
    assert t3._negamax((E,) * 9, X) == 0 == t3._negamax((E,) * 9, O)


def test_move_scores_rejects_finished_boards():
    with pytest.raises(ValueError, match="finished"):
        t3.move_scores((O, O, O, X, X, E, X, E, E))
    with pytest.raises(ValueError, match="9 values"):
        t3.move_scores((0, 1, 2))


# -- the MDP --------------------------------------------------------------------------------
def test_model_invariants(solved):
    mdp, *_ = solved
    rows = np.asarray(mdp.transitions.sum(axis=1)).ravel()
    assert (rows <= 1 + 1e-12).all()
    assert np.array_equal(mdp.valid_actions, mdp.features == E)
    n_x, n_o = (mdp.features == X).sum(1), (mdp.features == O).sum(1)
    assert np.all((n_x == n_o) | (n_o == n_x + 1)), "agent must be to move in every state"
    assert all(t3.winner(b) == E for b in mdp.features.tolist())
    # Invalid actions never move and never pay.
    flat_invalid = np.flatnonzero(~mdp.valid_actions.ravel())
    assert mdp.transitions[flat_invalid].nnz == 0
    assert np.all(mdp.rewards[~mdp.valid_actions] == 0)
    # Minimax never leaves the agent a completed line: no move on any board pays +1.
    assert mdp.rewards.max() == 0 and mdp.rewards.min() == t3.LOSS
    # Every successor has two more marks (the agent's and the reply).
    coo = mdp.transitions.tocoo()
    marks = (mdp.features != E).sum(1)
    assert np.all(marks[coo.col] == marks[coo.row // 9] + 2)
    # Start: 1/2 on the empty board, 1/18 on each single-O board.
    assert np.isclose(mdp.start[mdp.index_of((E,) * 9)], 0.5)
    for sq in range(9):
        assert np.isclose(mdp.start[mdp.index_of(t3.place((E,) * 9, sq, O))], 1 / 18)
    assert mdp.gamma == 1.0 and np.count_nonzero(mdp.start) == 10


def test_step_matches_the_rules_on_the_fig2_state(solved):
    mdp, _, q, *_ = solved
    s = mdp.index_of(t3.FIG2_STATE)
    for a in np.flatnonzero(mdp.valid_actions[s]):
        if a == t3.FIG2_BLOCK:
            # After the block O must stop X's centre column: TC is its only drawing reply.
            succ, p = mdp.successors(s, a)
            assert mdp.rewards[s, a] == 0 and np.isclose(p.sum(), 1)
            assert [mdp.label(i) for i in succ] == ["_O_/_X_/OXO"]
        else:
            # Certain loss; the opponent wins at once or (no preference for speed) later.
            assert q[s, a] == t3.LOSS and mdp.rewards[s, a] < 0


def test_steady_state_support_is_868_states_and_all_draws(solved):
    mdp, policy, q, v, d = solved
    support = np.flatnonzero(d > 0)
    assert support.size == 868
    assert np.allclose(v[support], 0.0, atol=1e-12)
    assert np.allclose(v[mdp.start > 0], 0.0)
    assert v.max() == 0  # no reachable board is a win for the agent
    assert np.allclose(policy_evaluation(mdp, policy)[support], 0.0, atol=1e-12)
    rates = t3.result_rates(mdp, policy)
    assert rates["win"] == pytest.approx(0, abs=1e-12)
    assert rates["loss"] == pytest.approx(0, abs=1e-12)
    assert rates["draw"] == pytest.approx(1)


def test_result_rates_of_a_uniform_agent_lose_sometimes(solved):
    mdp, *_ = solved
    uniform = mdp.valid_actions / mdp.valid_actions.sum(1, keepdims=True)
    rates = t3.result_rates(mdp, uniform)
    assert rates["win"] == pytest.approx(0, abs=1e-12)  # minimax never lets X win
    assert 0 < rates["loss"] < 1 and rates["draw"] == pytest.approx(1 - rates["loss"])
    v = policy_evaluation(mdp, uniform)
    assert np.dot(mdp.start, v) == pytest.approx(-rates["loss"])


# -- explanations (Fig. 2) ------------------------------------------------------------------
def test_fig2_explanations(solved):
    mdp, policy, q, v, d = solved
    s = mdp.index_of(t3.FIG2_STATE)
    assert d[s] > 0
    assert np.flatnonzero(q[s] == 0).tolist() == [t3.FIG2_BLOCK]
    assert np.all(q[s][mdp.valid_actions[s]] <= 0)
    assert policy[s, t3.FIG2_BLOCK] == 1
    ex = SVERLExplainer(mdp, policy, steady_state=d)
    exp = ex.explain([s])
    out = exp.phi("outcome", s)["value"].to_numpy()
    pred = exp.phi("prediction", s)["value"].to_numpy()
    beh = exp.phi("behaviour", s)["BC"].to_numpy()
    assert np.allclose(pred, 0, atol=1e-12)
    assert set(np.argsort(out)[-2:]) == {6, 8}  # the opponent's two squares
    assert out[6] == pytest.approx(out[8])  # left-right mirror symmetry
    # Efficiency: phi sums to v(all) - v(none) = Q(s, BC) - v(none).
    table = ex.outcome_table(s)
    assert out.sum() == pytest.approx(table[-1, 0] - table[0, 0])
    # Q(s, .) is 0 for the block and -1 otherwise, so outcome = P_valid(block) - 1 for every
    # coalition, where P_valid is renormalised over the valid squares (Remark 35). Its
    # Shapley values therefore equal those of the *renormalised* behaviour for BC, not
    # those of Def. 17's behaviour, which leaves mass on occupied squares.
    renorm = SVERLExplainer(mdp, policy, steady_state=d, renormalise=True).explain([s])
    assert np.allclose(out, renorm.phi("behaviour", s)["BC"].to_numpy(), atol=1e-12)
    assert np.abs(out - beh).max() > 1e-3


def test_draw_attributions_checks_input():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    t3.draw_attributions(ax, t3.FIG2_STATE, np.linspace(-1, 1, 9), highlight=7, title="t")
    assert len(ax.patches) == 10
    with pytest.raises(ValueError, match="one Shapley value per square"):
        t3.draw_attributions(ax, t3.FIG2_STATE, np.zeros(3))
    plt.close(fig)


def _live_boards(mover: int, max_marks: int):
    """Legal unfinished boards with ``mover`` to move (X moves first), up to ``max_marks``."""
    for board in itertools.product((E, X, O), repeat=9):
        n_x, n_o = board.count(X), board.count(O)
        if n_x + n_o > max_marks or t3.winner(board) != E or E not in board:
            continue
        if (mover == O and n_x == n_o + 1) or (mover == X and n_x == n_o):
            yield board

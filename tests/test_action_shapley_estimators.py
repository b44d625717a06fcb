"""Action Shapley estimators: Algorithms 1 and 2, the hybrid, and the library baselines."""

from itertools import combinations
from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shaprl.action_shapley import FunctionGame, TableGame, exact_action_shapley
from shaprl.action_shapley.estimators import (
    SHAPIQ_APPROXIMATORS,
    PenaltyGame,
    accuracy,
    algorithm1,
    algorithm2,
    exact_banzhaf,
    exact_penalty_shapley,
    exact_reference,
    hybrid,
    printed_algorithm2_expectation,
    pydvl_msr_banzhaf,
    pydvl_stratified_shapley,
    pydvl_tmc_shapley,
    select_training_set,
    shapiq_shapley,
    spearman,
)
from shaprl.shapley import exact_shapley


# ------------------------------------------------------------------------------------ games
def voting_table(weights, quota):
    n = len(weights)
    return np.array(
        [float(sum(w for k, w in enumerate(weights) if m >> k & 1) >= quota) for m in range(1 << n)]
    )


def vm_like_table():
    """n = 5; null unless points 2, 3, 4 are all present (the paper's VM shape)."""
    rng = np.random.default_rng(7)
    table = rng.normal(size=32)
    required = 0b11100
    table[[m for m in range(32) if m & required != required]] = np.nan
    return table


def random_null_table(n, seed, p_null=0.3):
    rng = np.random.default_rng(seed)
    table = rng.normal(size=1 << n)
    table[rng.random(1 << n) < p_null] = np.nan
    return table


def brute_force_eq1(table, n, min_size=0):
    """Eq. 1 by itertools, null pairs dropped, only sizes |d| >= min_size."""
    phi = np.zeros(n)
    for k in range(n):
        others = [j for j in range(n) if j != k]
        for i in range(min_size, n):
            for d in combinations(others, i):
                m = sum(1 << j for j in d)
                delta = table[m | 1 << k] - table[m]
                if not np.isnan(delta):
                    phi[k] += delta / comb(n - 1, i) / n
    return phi


def counting_game(table):
    seen = []

    def fn(masks):
        seen.extend(masks.tolist())
        return np.asarray(table)[masks]

    return FunctionGame(int(np.log2(len(table))), fn), seen


# ------------------------------------------------------------------------------ algorithm 1
def test_algorithm1_on_vm_like_game():
    table = vm_like_table()
    res = algorithm1(TableGame(table))
    assert res.theta.tolist() == [4, 4, 5, 5, 5]
    assert res.global_theta == 4 and res.indispensable == (2, 3, 4)
    assert res.pcomp == pytest.approx(0.5)  # Eq. 2: 1 - 2**4 / 2**5
    # Point 0: level |d| = 4 kept, stop at the first size-3 subset ({1,2,3}: null).
    assert res.values[0] == pytest.approx((table[31] - table[30]) / 5)
    # Early-stop bias in closed form: the size-3 pair ({2,3,4}, {0,2,3,4}) is lost.
    exact = exact_action_shapley(TableGame(table))
    lost = (table[0b11101] - table[0b11100]) / comb(4, 3) / 5
    assert exact[0] - res.values[0] == pytest.approx(lost)
    assert res.values[2:].tolist() == [0.0, 0.0, 0.0] and np.allclose(exact[2:], 0.0)


def test_algorithm1_never_visits_sizes_0_and_1():
    table = np.random.default_rng(3).normal(size=16)  # no nulls
    res = algorithm1(TableGame(table))
    np.testing.assert_allclose(res.values, brute_force_eq1(table, 4, min_size=2))
    assert res.theta.tolist() == [1, 1, 1, 1] and res.global_theta == 1
    # The voting game [49, 49, 2]: every pivotal pair sits at sizes 0 and 1.
    assert np.allclose(algorithm1(TableGame(voting_table([49, 49, 2], 51))).values, 0.0)


@settings(max_examples=25, deadline=None)
@given(st.integers(3, 6), st.integers(0, 10_000))
def test_algorithm1_without_early_stop_is_eq1_above_size_1(n, seed):
    table = random_null_table(n, seed)
    res = algorithm1(TableGame(table), epsilon=1 << n)  # never reaches epsilon nulls
    np.testing.assert_allclose(res.values, brute_force_eq1(table, n, min_size=2), atol=1e-12)


def test_epsilon_counts_null_pairs_per_level():
    # n = 3: level 2 has one pair per point; level... only i = 2 is visited.
    # n = 4, point 0: level 3 {1,2,3} fine; level 2 has 3 pairs, one null ({1,2}).
    table = np.arange(16, dtype=float)
    table[0b0110] = np.nan  # U({1,2}) null
    strict = algorithm1(TableGame(table), epsilon=1)
    loose = algorithm1(TableGame(table), epsilon=2)
    assert strict.theta[0] == 3 and loose.theta[0] == 1
    np.testing.assert_allclose(loose.values, brute_force_eq1(table, 4, min_size=2))
    with pytest.raises(ValueError, match="epsilon"):
        algorithm1(TableGame(table), epsilon=0)


def test_algorithm1_evaluations_equal_calls_and_short_circuit():
    game, seen = counting_game(vm_like_table())
    res = algorithm1(game)
    assert res.evaluations == game.evaluations == len(seen) == len(set(seen))
    shuffled, seen_shuffled = counting_game(vm_like_table())
    assert algorithm1(shuffled, order_seed=1).evaluations == len(seen_shuffled)
    # n = 3 with U(D) null: each point's first pair is (D, D minus k); U(D) is null, so
    # "U(d + k) = null or U(d) = null" never asks for U(d).
    table = np.arange(8, dtype=float)
    table[7] = np.nan
    short, seen_short = counting_game(table)
    res = algorithm1(short)
    assert seen_short == [7] and res.evaluations == 1 and res.theta.tolist() == [3, 3, 3]
    assert res.global_theta == 3 and res.indispensable == (0, 1, 2)


# ------------------------------------------------------------------------------ algorithm 2
@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.integers(0, 10_000))
def test_corrected_algorithm2_exhaustive_is_exact(n, seed):
    table = random_null_table(n, seed)
    res = algorithm2(TableGame(table), comb(n - 1, (n - 1) // 2), seed=0, replace=False)
    np.testing.assert_allclose(res.values, exact_action_shapley(TableGame(table)), atol=1e-12)
    np.testing.assert_allclose(res.stderr, 0.0, atol=1e-12)
    assert res.evaluations == 1 << n


def test_null_pair_convention():
    table = np.array([np.nan, 2.0, np.nan, 5.0])
    res = algorithm2(TableGame(table), 1, seed=0, replace=False)
    np.testing.assert_allclose(res.values, [0.0, 1.5])
    assert res.indispensable == (0,)


def test_printed_algorithm2_bias_in_closed_form():
    # Additive game: every marginal of k is w_k, so Eq. 1 gives w_k and the printed
    # algorithm gives w_k / n * sum_i 1 / C(n-1, i), whatever the draws.
    n, w = 5, np.array([1.0, -2.0, 0.5, 3.0, 0.25])
    table = np.array([sum(w[k] for k in range(n) if m >> k & 1) for m in range(1 << n)])
    factor = sum(1 / comb(n - 1, i) for i in range(n)) / n
    game = TableGame(table)
    np.testing.assert_allclose(printed_algorithm2_expectation(game), w * factor)
    printed = algorithm2(game, 3, seed=1, variant="printed")
    corrected = algorithm2(game, 3, seed=1)
    np.testing.assert_allclose(printed.values, w * factor)
    np.testing.assert_allclose(corrected.values, w)
    np.testing.assert_allclose(corrected.stderr, 0.0, atol=1e-12)
    assert factor < 1  # the printed estimator shrinks every value


def test_corrected_algorithm2_is_unbiased_and_its_stderr_calibrated():
    table = vm_like_table()
    table[0b00011] = 1.0  # a non-null pocket below the cut-off
    game = TableGame(table)
    exact = exact_action_shapley(game)
    runs = [algorithm2(game, 4, seed=s) for s in range(300)]
    values = np.array([r.values for r in runs])
    stderr = np.mean([r.stderr for r in runs], axis=0)
    spread = values.std(axis=0, ddof=1)
    assert np.all(np.abs(values.mean(axis=0) - exact) <= 4 * spread / np.sqrt(300) + 1e-12)
    keep = spread > 0
    np.testing.assert_allclose(stderr[keep], spread[keep], rtol=0.25)
    printed_mean = np.mean(
        [algorithm2(game, 4, seed=s, variant="printed").values for s in range(300)], 0
    )
    expect = printed_algorithm2_expectation(game)
    assert np.all(np.abs(printed_mean - expect) <= 4 * spread / np.sqrt(300) + 1e-12)


def test_algorithm2_evaluations_equal_calls():
    game, seen = counting_game(random_null_table(6, 1))
    res = algorithm2(game, 3, seed=4)
    assert res.evaluations == game.evaluations == len(seen)
    assert res.counts.tolist() == [6 * 3] * 6


def test_algorithm2_bad_arguments():
    game = TableGame(np.zeros(8))
    with pytest.raises(ValueError, match="variant"):
        algorithm2(game, 2, seed=0, variant="paper")
    with pytest.raises(ValueError, match="samples_per_size"):
        algorithm2(game, 0, seed=0)
    with pytest.raises(TypeError, match="ValuationGame"):
        algorithm2(np.zeros(8), 2, seed=0)


# ----------------------------------------------------------------------------------- hybrid
def test_hybrid_levels_and_cost():
    table = vm_like_table()
    game = TableGame(table)
    exact = exact_action_shapley(game)
    a1 = algorithm1(game)
    full = hybrid(game, 10, seed=0, replace=False)  # |d| >= theta_k - 1, each level exact
    np.testing.assert_allclose(full.values, exact)
    assert full.global_theta == a1.global_theta and full.indispensable == a1.indispensable
    above = hybrid(game, 10, seed=0, replace=False, cutoff_level="exclude")
    np.testing.assert_allclose(above.values, a1.values)  # Alg. 1 stopped at its first pair
    assert above.evaluations == a1.evaluations  # those levels were all enumerated already
    counted, seen = counting_game(table)
    assert hybrid(counted, 2, seed=3).evaluations == len(seen) == counted.evaluations


def test_hybrid_is_biased_when_nulls_hide_non_null_pairs():
    table = vm_like_table()
    table[0b00011], table[0b00001] = 2.0, 1.0  # a non-null pair below the cut-off for point 1
    game = TableGame(table)
    res = hybrid(game, 10, seed=0, replace=False)
    exact = exact_action_shapley(game)
    assert res.values[1] != pytest.approx(exact[1])
    np.testing.assert_allclose(res.values[1] - exact[1], -(table[0b11] - table[0b01]) / 4 / 5)


# -------------------------------------------------------------------------------- baselines
def test_exact_banzhaf_and_penalty_game():
    np.testing.assert_allclose(exact_banzhaf(TableGame(voting_table([49, 49, 2], 51))), 0.5)
    table = vm_like_table()
    pen = PenaltyGame(TableGame(table), penalty=-3.0)
    filled = np.where(np.isnan(table), -3.0, table)
    np.testing.assert_allclose(pen.table(), filled)
    np.testing.assert_allclose(exact_penalty_shapley(pen), exact_shapley(filled))
    with pytest.raises(ValueError, match="PenaltyGame"):
        exact_banzhaf(TableGame(table))
    with pytest.raises(ValueError, match="finite"):
        PenaltyGame(TableGame(table), penalty=np.nan)


def test_baselines_refuse_nulls():
    with pytest.raises(ValueError, match="PenaltyGame"):
        pydvl_tmc_shapley(TableGame(vm_like_table()), 20, seed=0)


@pytest.mark.parametrize("approximator", SHAPIQ_APPROXIMATORS)
def test_shapiq_counts_and_full_budget(approximator):
    weights_game = TableGame(voting_table([2, 1, 1], 3))
    res = shapiq_shapley(weights_game, 8, seed=0, approximator=approximator)
    assert res.evaluations <= 8
    if approximator == "KernelSHAP":  # the whole power set: exact
        np.testing.assert_allclose(res.values, [2 / 3, 1 / 6, 1 / 6], atol=1e-8)
    base, seen = counting_game(vm_like_table())
    res = shapiq_shapley(PenaltyGame(base, -3.0), 12, seed=1, approximator=approximator)
    assert res.evaluations == base.evaluations == len(seen)
    assert res.game.startswith("penalty game")


@pytest.mark.parametrize(
    "estimator", [pydvl_tmc_shapley, pydvl_stratified_shapley, pydvl_msr_banzhaf]
)
def test_pydvl_counts_budget_and_convergence(estimator):
    table = random_null_table(6, 5)
    base, seen = counting_game(table)
    res = estimator(PenaltyGame(base, -3.0), 20, seed=2)
    assert res.evaluations == base.evaluations == len(seen)
    assert 20 <= res.evaluations <= 20 + 7  # one sample (a permutation at most) past the budget
    # Additive game (values = weights for Shapley and Banzhaf): points map to the right bits.
    w = np.array([0.0, 2.0, 4.0, 6.0, 8.0, 10.0])
    additive = TableGame([sum(w[k] for k in range(6) if m >> k & 1) for m in range(64)])
    res = estimator(additive, 64, seed=3)
    assert spearman(res.values, w) > 0.9
    if estimator is pydvl_stratified_shapley:  # every marginal is exactly w_k
        np.testing.assert_allclose(res.values, w, atol=1e-9)


# ---------------------------------------------------------------------- selection, accuracy
def test_selection_policy():
    values = np.array([-3.96, -1.84, 0.0, 0.0, 0.0])
    assert select_training_set(values, 4, (2, 3, 4)) == (1, 2, 3, 4)
    assert select_training_set(values, 4, (2, 3, 4), best=False) == (0, 2, 3, 4)
    assert select_training_set(np.array([0.57, 1.02, 8.31, 3.61, 5.55]), 3) == (2, 3, 4)
    with pytest.raises(ValueError, match="theta"):
        select_training_set(values, 0)


def test_exact_reference_and_accuracy():
    game = TableGame(vm_like_table())
    ref = exact_reference(game)
    assert ref.evaluations == 32 and ref.indispensable == (2, 3, 4) and ref.global_theta == 4
    same = accuracy(ref, ref)
    assert same["mae"] == 0 and same["same_selection"] == 1 and same["top_k"] == 1
    a1 = accuracy(algorithm1(game), ref)
    assert a1["evaluations"] == algorithm1(game).evaluations and a1["mae"] > 0


# ------------------------------------------------------------------------- study, summary
def test_estimator_study_rows_and_scores():
    from shaprl.action_shapley.estimators import study

    game = TableGame(vm_like_table())
    frame = study.estimator_study(
        game, seeds=(0, 1), samples_per_size=(1, 50), evaluation_budgets=[12]
    )
    per_est = frame.groupby("estimator").size()
    assert per_est["algorithm 1"] == 1 and per_est["algorithm 2 (corrected)"] == 4
    assert per_est["pyDVL TMC Shapley"] == 2 and len(per_est) == len(study.ESTIMATORS)
    exhaustive = frame[(frame.estimator == "algorithm 2 (corrected)") & (frame.budget == 50)]
    assert exhaustive["evaluations"].eq(32).all()  # 50 draws per size reach every subset
    summary = study.summarise(frame)
    assert {"mae_se", "spearman_se", "seeds"} <= set(summary.columns)
    with pytest.raises(ValueError, match="unknown estimators"):
        study.estimator_study(game, estimators=["magic"])


def test_game_from_frame_checks_the_table():
    import pandas as pd

    from shaprl.action_shapley.estimators.study import game_from_frame

    table = vm_like_table()
    frame = pd.DataFrame({"mask": np.arange(32)[::-1], "utility": table[::-1]})
    np.testing.assert_array_equal(game_from_frame(frame).table(), table)
    with pytest.raises(ValueError, match="every subset"):
        game_from_frame(frame.iloc[:-1])
    with pytest.raises(ValueError, match="columns"):
        game_from_frame(frame.rename(columns={"utility": "u"}))


def test_validation_from_table_and_pcomp_rows():
    from shaprl.action_shapley.estimators import summary

    table = vm_like_table()
    game = TableGame(table)
    ref = exact_reference(game)
    row = summary.validation_from_table("vm_right_sizing", game, ref)
    best = select_training_set(ref.values, 4, (2, 3, 4))
    assert row["U(best)"] == table[sum(1 << k for k in best)] and row["U(all data)"] == table[31]
    assert row["sets of size theta"] == 5 and row["null among them"] == pytest.approx(3 / 5)
    assert row["data reduction 1-theta/n"] == pytest.approx(0.2)
    t7 = summary.table7_row("vm_right_sizing", ref, algorithm1(game))
    assert (
        t7["Pcomp (Eq. 2)"] == 0.5
        and t7["Pcomp measured"] == 1 - t7["Algorithm 1 evaluations"] / 32
    )
    assert summary.eq2_pcomp(5, 15) == pytest.approx(1 - 2**-10)


def test_selection_candidates_and_episode_table():
    from shaprl.action_shapley.estimators import validation

    ref = exact_reference(TableGame(vm_like_table()))
    named, pool = validation.candidate_sets(ref, pool_size=10, seed=0)
    assert named["all data"] == 31 and bin(named["best"]).count("1") == 4
    assert named["best"] & 0b11100 == 0b11100 and named["worst"] & 0b11100 == 0b11100
    assert sorted(pool.tolist()) == [15, 23, 27, 29, 30]  # all 5 sets of size 4
    sizes = np.array([bin(m).count("1") for m in range(256)])
    big = exact_reference(TableGame(np.where(sizes < 4, np.nan, 0.0)))  # theta = 4, 70 sets
    _, sampled = validation.candidate_sets(big, 20, seed=1)
    assert sampled.size == 20 and np.unique(sampled).size == 20
    masks = np.array([15, 23, 27, 29, 30, 31])
    reward = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]])
    runs = {"masks": masks, "reward": reward}
    named = {"best": 30, "worst": 15, "all data": 31}
    table = validation.episode_table(runs, named, masks[:5], per_episode=5, seed=0)
    assert table["best"].tolist() == [5.0, 2.0] and table["all data"].tolist() == [6.0, 1.0]
    # 5 draws with replacement from the pool of 5; the fraction below best is consistent
    assert ((table["random below best"] >= 0) & (table["random below best"] <= 1)).all()
    assert table.loc[0, "best random"] <= 5.0 and table.attrs["per_episode"] == 5


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 7), st.integers(0, 10_000), st.floats(0.05, 0.6))
def test_algorithm1_never_beats_its_evaluation_bound(n, seed, p_null):
    from shaprl.action_shapley.estimators.summary import algorithm1_evaluation_bound

    res = algorithm1(TableGame(random_null_table(n, seed, p_null)))
    if 1 < res.global_theta < n:
        assert res.evaluations >= algorithm1_evaluation_bound(n, res.global_theta)


def test_every_estimator_selects_a_set_of_size_theta():
    from shaprl.action_shapley.estimators import study, validation

    game = TableGame(vm_like_table())
    ref = exact_reference(game)
    chosen = validation.estimator_selections(game, ref, samples_per_size=4)
    assert set(chosen) == {"exact", *study.ESTIMATORS}
    for mask in chosen.values():  # theta = 4 points, the indispensable 2, 3, 4 always in
        assert bin(mask).count("1") == 4 and mask & 0b11100 == 0b11100
    best = select_training_set(ref.values, 4, (2, 3, 4))
    assert chosen["exact"] == sum(1 << k for k in best)


def test_case_by_case_verdict():
    from shaprl.action_shapley.estimators.summary import verdict

    assert verdict([True, True]) is True and verdict([False, False]) is False
    assert verdict([True, False]) == "partly" and verdict([]) is False
    assert verdict(np.array([1.0, 0.0]) > 0.5) == "partly"


def test_printed_vs_corrected_on_the_kubernetes_sample(monkeypatch):
    # Notebook 25's Kubernetes comparison reads the stratified sample from the committed table.
    # On an additive stand-in table (every marginal of k is w_k, no nulls) the corrected
    # estimate is w_k exactly and the printed one w_k / n * sum_i 1 / C(n-1, i), whatever the
    # draws; a null on one side of a pair contributes nothing but still counts as drawn.
    import pandas as pd

    from shaprl.action_shapley import tables, utility
    from shaprl.action_shapley.case_studies import KUBERNETES
    from shaprl.action_shapley.estimators.summary import sampled_printed_vs_corrected

    n = KUBERNETES.n
    w = np.linspace(-1.0, 2.0, n)
    pairs = utility.stratified_pairs(n, 1, 0)
    masks = sorted({m for _, d, dk in pairs for m in (d, dk)})
    util = [float(sum(w[k] for k in range(n) if m >> k & 1)) for m in masks]
    frame = pd.DataFrame({"mask": masks, "utility": util})
    monkeypatch.setattr(tables, "load_table", lambda case, algo, seed: (frame, {}))
    out, info = sampled_printed_vs_corrected("kubernetes", "sac")
    factor = sum(1 / comb(n - 1, i) for i in range(n)) / n
    np.testing.assert_allclose(out["corrected"], w, atol=1e-12)
    np.testing.assert_allclose(out["printed"], w * factor, atol=1e-12)
    assert (out["levels sampled"] == n).all()
    assert info["spearman"] == pytest.approx(1.0)
    assert info["corrected picks"] == tuple(KUBERNETES.points[k] for k in range(n - 5, n))
    # a null subset: its pair's delta drops out, the level's denominator stays
    k0, d0, dk0 = next(p for p in pairs if p[0] == n - 1 and bin(p[1]).count("1") == 3)
    nulled = frame.assign(utility=np.where(frame["mask"] == dk0, np.nan, frame["utility"]))
    monkeypatch.setattr(tables, "load_table", lambda case, algo, seed: (nulled, {}))
    out2, _ = sampled_printed_vs_corrected("kubernetes", "sac")
    shared = sum(1 for k, d, dk in pairs if k == k0 and bin(d).count("1") == 3)
    assert out2["corrected"].iloc[k0] == pytest.approx(w[k0] - w[k0] / shared / n)


def test_legacy_tables_decide_no_claim():
    import pandas as pd

    from shaprl.action_shapley.estimators import summary as S

    assert S.verdict([], ["kubernetes/sac"]) is None  # nothing left to decide on: indicative
    assert S.verdict([True], ["kubernetes/sac"]) is True and S.verdict([], []) is False
    note = S.legacy_note(["kubernetes/sac"])
    assert "kubernetes/sac" in note and "`make action-shapley-kubernetes`" in note
    assert "make action-shapley-tables" in S.legacy_note(["vm_right_sizing/ppo", "kubernetes"])
    assert S.legacy_note([]) == "" and S.measured_text(["a", "b"]) == "a; b"
    assert S.measured_text([], ["kubernetes/sac"]).startswith(S.NO_CURRENT)

    # a current VM-like table and a legacy table whose all-data agent fails (theta = n)
    vm = TableGame(vm_like_table())
    dead = TableGame(np.where(np.arange(32) == 31, np.nan, vm_like_table()))
    games = {"vm_right_sizing/sac": vm, "kubernetes/sac": dead}
    refs = {c: exact_reference(g) for c, g in games.items()}
    assert refs["kubernetes/sac"].global_theta == 5  # the legacy row alone would fail claims
    kind = {"vm_right_sizing/sac": S.CURRENT, "kubernetes/sac": S.LEGACY}
    rows = pd.DataFrame([S.validation_from_table(c, g, refs[c]) for c, g in games.items()])
    val = S.with_table_kind(rows, kind)
    assert list(val.columns[:2]) == ["case study", "table"]  # right after the label
    assert val.set_index("case study")["table"].to_dict() == kind
    with pytest.raises(KeyError, match="no table kind"):
        S.with_table_kind(rows, {"vm_right_sizing/sac": S.CURRENT})
    names = {c: tuple("abcde") for c in games}
    marked = {c["key"]: c for c in S.selection_claims(val, names)}
    alone = {c["key"]: c for c in S.selection_claims(rows.iloc[[0]], names)}
    unmarked = {c["key"]: c for c in S.selection_claims(rows, names)}
    for key, claim in marked.items():
        assert claim["holds"] == alone[key]["holds"]  # decided on the current row alone
        assert "kubernetes/sac: " not in claim["measured"].split("; left out")[0]
        assert claim["measured"].endswith(note) and "vm_right_sizing/sac" in claim["measured"]
    # without the marks the legacy row counts (and fails: best = worst = all data)
    assert unmarked["s42_best_beats_worst"]["holds"] != marked["s42_best_beats_worst"]["holds"]
    only = {c["key"]: c for c in S.selection_claims(val.iloc[[1]], names)}
    assert all(c["holds"] is None and c["measured"].startswith(S.NO_CURRENT) for c in only.values())
    t7 = S.with_table_kind(
        pd.DataFrame([S.table7_row(c, refs[c], algorithm1(g)) for c, g in games.items()]), kind
    )
    eq2 = S.eq2_claims(t7)[0]
    assert "kubernetes/sac: Eq. 2" not in eq2["measured"] and eq2["measured"].endswith(note)
    assert eq2["holds"] == S.eq2_claims(t7.iloc[[0]])[0]["holds"]


def test_episode_claims_leave_legacy_case_studies_out():
    import pandas as pd

    from shaprl.action_shapley.estimators import summary as S
    from shaprl.action_shapley.estimators import validation

    named = {"best": 1, "worst": 2, "all data": 3}
    res = {"load_balancing": {"named": named},
           "kubernetes": {"named": {"best": 7, "worst": 7, "all data": 7}}}  # fmt: skip
    val = pd.DataFrame(
        {
            "case study": ["load_balancing", "kubernetes"],
            "reward best": [-1.0, -5.0],
            "reward worst": [-2.0, -5.0],
            "reward all data": [-3.0, -5.0],
            "random below best": [0.8, 0.0],
            "random above best": ["0 of 100", "750 of 750"],
        }
    )
    per_episode = {"load_balancing": 4, "kubernetes": 30}
    plain = {c["key"]: c for c in validation.episode_claims(val, res, per_episode)}
    assert all(c["holds"] == "partly" for c in plain.values())  # kubernetes fails each one
    kind = {"load_balancing": S.CURRENT, "kubernetes": S.LEGACY}
    marked = validation.episode_claims(S.with_table_kind(val, kind), res, per_episode)
    for claim in marked:
        assert claim["holds"] is True, claim
        assert "kubernetes:" not in claim["measured"]
        assert claim["measured"].endswith(S.legacy_note(["kubernetes"]))

"""Paired comparisons: Holm's correction, the signed-rank test, significance maps, podium ranks,
bootstrap taus, and their place on the published board.

Oracles: the published Holm example (R's ``p.adjust``), Holm's step-down procedure written out,
statsmodels' ``multipletests``; R's documented ``wilcox.test`` example, the exact
null distribution by enumerating every sign pattern, the normal approximation by hand; the
test-based ranking's wins; scipy's ``kendalltau`` on resamples drawn here.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.errors import StoreError
from evaluator.store import Store
from leaderboards import ranking
from leaderboards.board import Leaderboard, compute_leaderboard
from leaderboards.comparisons import (
    bootstrap_tau,
    compute_comparisons,
    holm,
    paired_tests,
    pairwise_significance,
    podium_ranks,
    signed_rank_p,
)
from leaderboards.data import load_leaderboard_data
from leaderboards.ranking import aggregate_then_rank
from leaderboards.site import publish_leaderboard
from leaderboards.statistics import bootstrap_ranks
from tests.leaderboards.conftest import HOSTILE, PhantomBoard

# ---------------------------------------------------------------------------------------------
# Holm-Bonferroni
# ---------------------------------------------------------------------------------------------


def test_holm_on_the_textbook_example() -> None:
    """Four hypotheses, p = (0.01, 0.04, 0.03, 0.005), alpha = 0.05 (the example of Holm's
    method on Wikipedia): sorted 0.005 < 0.01 < 0.03 < 0.04 against 0.05/4, 0.05/3, 0.05/2, 0.05/1
    rejects H4 and H1 and stops at 0.03 > 0.025. Adjusted by hand (as R's
    ``p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm")`` prints): 4 * 0.005 = 0.02, 3 * 0.01 = 0.03,
    2 * 0.03 = 0.06, max(1 * 0.04, 0.06) = 0.06."""
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    assert list(adjusted <= 0.05) == [True, False, False, True]


def test_holm_caps_at_one_and_leaves_nan_out_of_the_count() -> None:
    # m = 2 (NaN not counted, as R's p.adjust with n = sum(!is.na(p)))
    np.testing.assert_allclose(holm([0.01, math.nan, 0.04]), [0.02, math.nan, 0.04])
    np.testing.assert_allclose(holm([0.6, 0.7]), [1.0, 1.0])
    assert holm([]).size == 0
    assert np.isnan(holm([math.nan])).all()


def _step_down(p: np.ndarray, alpha: float) -> np.ndarray:
    """Holm (1979) as written: reject H_(1..k-1), k the first index with p_(k) > alpha/(m-k+1)."""
    m = p.size
    reject = np.zeros(m, dtype=bool)
    for k, i in enumerate(np.argsort(p, kind="stable")):
        if p[i] > alpha / (m - k):
            break
        reject[i] = True
    return reject


@pytest.mark.parametrize("seed", range(6))
def test_holm_rejects_exactly_as_the_step_down_procedure(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.choice([0.001, 0.004, 0.01, 0.02, 0.03, 0.2, 0.5], size=rng.integers(1, 9))
    p = np.where(rng.random(p.size) < 0.5, rng.random(p.size) * 0.06, p)  # ties and near-alpha
    adjusted = holm(p)
    assert np.all(adjusted >= p) and np.all(adjusted <= np.minimum(1.0, p.size * p) + 1e-15)
    for alpha in (0.01, 0.025, 0.05, 0.1):
        assert list(adjusted <= alpha) == list(_step_down(p, alpha)), (seed, alpha, p)


@pytest.mark.parametrize("seed", range(4))
def test_holm_equals_statsmodels(seed: int) -> None:
    from statsmodels.stats import multitest

    p = np.random.default_rng(seed).random(7) ** 3
    reject, corrected, _, _ = multitest.multipletests(p, alpha=0.05, method="holm")
    np.testing.assert_allclose(holm(p), corrected)
    assert list(holm(p) <= 0.05) == list(reject)


# ---------------------------------------------------------------------------------------------
# Wilcoxon signed-rank
# ---------------------------------------------------------------------------------------------

#: R's ``?wilcox.test`` example (Hollander & Wolfe, depression scale before and after therapy):
#: ``wilcox.test(x, y, paired = TRUE, alternative = "greater")`` prints V = 40, p-value = 0.01953.
R_X = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
R_Y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]


def test_signed_rank_reproduces_the_r_documentation_example() -> None:
    diff = np.subtract(R_X, R_Y)
    assert signed_rank_p(diff, alternative="greater") == pytest.approx(0.01953, abs=5e-6)
    assert signed_rank_p(diff) == pytest.approx(2 * 0.01953125)  # 10 / 2**9 * 2


def _exact_by_enumeration(diff: np.ndarray) -> float:
    """Two-sided exact p: every one of the 2**n sign patterns of the ranks, equally likely."""
    ranks = np.argsort(np.argsort(np.abs(diff))) + 1  # distinct |d|: ranks 1..n
    observed = ranks[diff > 0].sum()
    totals = np.array(
        [
            sum(r for r, s in zip(ranks, signs, strict=True) if s)
            for signs in itertools.product([False, True], repeat=diff.size)
        ]
    )
    lower, upper = np.mean(totals <= observed), np.mean(totals >= observed)
    return float(min(1.0, 2 * min(lower, upper)))


@pytest.mark.parametrize("seed", range(8))
def test_exact_signed_rank_equals_enumerating_every_sign_pattern(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 11))
    magnitudes = rng.permutation(np.arange(1, n + 1)) * 0.1  # distinct: the exact branch
    diff = magnitudes * rng.choice([-1.0, 1.0], size=n)
    assert signed_rank_p(diff) == pytest.approx(_exact_by_enumeration(diff))


def test_tied_differences_use_the_normal_approximation_by_hand() -> None:
    """d = (1, 2, 3, 4, -5, 2, 6, 2): |d| ranks 1, 3, 5, 6, 7, 3, 8, 3 (three 2s share 2-4), so
    V+ = 1 + 3 + 5 + 6 + 3 + 8 + 3 = 29; E = n(n+1)/4 = 18; Var = n(n+1)(2n+1)/24 - (3^3 - 3)/48
    = 51 - 0.5; z = (29 - 18 - 0.5) / sqrt(50.5) with continuity correction."""
    z = (29 - 18 - 0.5) / math.sqrt(50.5)
    two_sided = math.erfc(z / math.sqrt(2))
    assert signed_rank_p([1, 2, 3, 4, -5, 2, 6, 2]) == pytest.approx(two_sided)
    assert two_sided == pytest.approx(0.13953, abs=1e-5)


def test_zero_differences_are_dropped_and_no_difference_is_p_one() -> None:
    assert signed_rank_p([0, 0, 1, 2, 3, 4, 5]) == signed_rank_p([1, 2, 3, 4, 5]) == 0.0625
    assert signed_rank_p([0.0, 0.0, 0.0]) == 1.0
    assert signed_rank_p([]) == 1.0


def test_paired_tests_named_case() -> None:
    """Leader ahead on six cases (one NaN case dropped); 'same' identical to the leader."""
    nan = math.nan
    scores = pd.DataFrame(
        {
            "leader": [0.9, 0.8, 0.7, 0.6, 0.5, 0.9, nan],
            "behind": [0.1, 0.2, 0.3, 0.4, 0.45, 0.0, 0.9],
            "same": [0.9, 0.8, 0.7, 0.6, 0.5, 0.9, 0.2],
        }
    )
    table = paired_tests(scores, "leader", alpha=0.0625)
    assert list(table.index) == ["behind", "same"]
    assert list(table["n"]) == [6, 6]
    assert table.loc["behind", "mean_difference"] == pytest.approx(
        -(0.8 + 0.6 + 0.4 + 0.2 + 0.05 + 0.9) / 6
    )
    assert table.loc["same", "mean_difference"] == 0.0
    assert table.loc["behind", "p"] == pytest.approx(2 / 2**6)  # exact, every sign negative
    assert table.loc["same", "p"] == 1.0
    assert table.loc["behind", "p_holm"] == pytest.approx(2 * 2 / 2**6)
    assert list(table["significant"]) == [True, False]  # 0.0625 <= alpha = 0.0625
    assert not paired_tests(scores, "leader", alpha=0.05)["significant"].any()
    with pytest.raises(StoreError, match="'nobody' is not an entry"):
        paired_tests(scores, "nobody")


@pytest.mark.parametrize("seed", range(6))
def test_significance_map_counts_the_test_based_rankings_wins(seed: int) -> None:
    """The dark cells of a row are that entry's wins in the test-based ranking, with ties, NaN
    and infinite values (an empty prediction's HD95) in the data."""
    rng = np.random.default_rng(seed)
    entries = ["a", "b", "c", "d"]
    base = rng.normal(0.0, 1.0, size=(14, 1))
    values = base + rng.normal([0.0, 0.4, 0.9, 0.9], 0.5, size=(14, 4))
    scores = pd.DataFrame(np.round(values, 1), columns=entries)
    scores.iloc[0, 1] = math.nan
    scores.iloc[1, 2] = math.inf
    scores.iloc[1, 3] = math.inf
    for higher in (True, False):
        p = pairwise_significance(scores, higher_is_better=higher)
        wins = (p < 0.05).sum(axis=1)
        expected = ranking.test_based_rank(scores, higher_is_better=higher)["score"]
        assert wins.to_dict() == expected.reindex(entries).to_dict(), (seed, higher)
        assert np.isnan(np.diag(p.to_numpy())).all()


def test_podium_ranks_lower_is_better_with_ties() -> None:
    scores = pd.DataFrame({"a": [1.0, 5.0], "b": [1.0, math.inf], "c": [0.5, math.nan]})
    assert podium_ranks(scores, higher_is_better=False).to_dict("list") == {
        "a": [2, 1],
        "b": [2, 2],
        "c": [1, 3],
    }


# ---------------------------------------------------------------------------------------------
# Bootstrap Kendall's tau
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_bootstrap_tau_is_scipys_tau_on_the_boards_resamples(seed: int) -> None:
    """Oracle: draw the resamples here (numpy's default_rng(seed).integers(0, n, (B, n)), the
    board's resampling), rank each by the mean, and ask scipy for tau on every resample."""
    rng = np.random.default_rng(100 + seed)
    entries = ["a", "b", "c", "d", "e"]
    # dyadic values: every mean is exact, so ties are ties in both summation orders
    std = pd.DataFrame(rng.choice([0.25, 0.5, 0.75, 0.875], size=(9, 5)), columns=entries)
    cc = std + pd.DataFrame(rng.choice([-0.125, 0.0, 0.125], size=(9, 5)), columns=entries)
    n_resamples = 60
    taus = bootstrap_tau(
        bootstrap_ranks(std, higher_is_better=True, n_resamples=n_resamples, seed=seed),
        bootstrap_ranks(cc, higher_is_better=True, n_resamples=n_resamples, seed=seed),
    )
    samples = np.random.default_rng(seed).integers(0, 9, size=(n_resamples, 9))
    for b, rows in enumerate(samples):
        ra = aggregate_then_rank(std.iloc[rows], higher_is_better=True)["rank"].reindex(entries)
        rb = aggregate_then_rank(cc.iloc[rows], higher_is_better=True)["rank"].reindex(entries)
        expected = kendalltau(ra.to_numpy(), rb.to_numpy()).statistic
        if math.isnan(expected):
            assert math.isnan(taus[b]), b
        else:
            assert taus[b] == pytest.approx(expected), b


def test_bootstrap_tau_of_identical_and_reversed_rankings() -> None:
    ranks = pd.DataFrame({"x": [1, 2], "y": [2, 1], "z": [3, 3]})
    np.testing.assert_allclose(bootstrap_tau(ranks, ranks), [1.0, 1.0])
    reversed_ = pd.DataFrame({"z": [1, 1], "y": [2, 3], "x": [3, 2]})  # columns aligned by name
    np.testing.assert_allclose(bootstrap_tau(ranks, reversed_), [-1.0, -1.0])
    assert np.isnan(bootstrap_tau(ranks[["x"]], ranks[["x"]])).all()


# ---------------------------------------------------------------------------------------------
# On the phantom board and the published site
# ---------------------------------------------------------------------------------------------


def _board(board: PhantomBoard) -> Leaderboard:
    with Store.open(workspace=board.workspace) as db:
        data = load_leaderboard_data(board.task, board.split, store=db)
    return compute_leaderboard(data, n_resamples=40, seed=0)


def test_phantom_board_comparisons(phantom_board: PhantomBoard) -> None:
    lb = _board(phantom_board)
    comp = compute_comparisons(lb, reference_entry="fair")
    assert comp.leader == "perfect" and comp.reference == "fair"
    roles = [(t.metric, t.role, t.against) for t in comp.paired]
    assert roles[:2] == [("dice", "leader", "perfect"), ("dice", "reference", "fair")]
    assert len(roles) == 2 * len(lb.data.metrics)
    vs_leader = {t.metric: t.table for t in comp.paired if t.role == "leader"}
    assert list(vs_leader["dice"].index) == phantom_board.order[1:]
    assert (vs_leader["dice"]["mean_difference"] < 0).all()  # every entry below the perfect one
    assert (vs_leader["hd95"]["mean_difference"] > 0).all()
    for metric, p in comp.significance.items():
        wins = (p < lb.alpha).sum(axis=1)
        assert wins.to_dict() == lb.per_metric[metric]["wins"].reindex(p.index).to_dict()
    assert set(comp.tau) == {(c.standard, c.cc) for c in lb.cc}
    assert all(t.shape == (40,) for t in comp.tau.values())
    with pytest.raises(StoreError, match="reference entry 'nobody' is not an entry"):
        compute_comparisons(lb, reference_entry="nobody")


@pytest.fixture(scope="module")
def site(phantom_board: PhantomBoard, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return publish_leaderboard(
        phantom_board.task,
        phantom_board.split,
        workspace=phantom_board.workspace,
        out=tmp_path_factory.mktemp("comparisons-site"),
        n_resamples=30,
        reference_entry=HOSTILE,
    )


def test_site_shows_paired_tests_maps_podiums_and_taus(
    site: Path, phantom_board: PhantomBoard
) -> None:
    board = site.parent / f"{phantom_board.task}--{phantom_board.split}"
    page = (board / "index.html").read_text()
    assert "Paired comparisons" in page and "Holm-adjusted p" in page
    assert "mean difference (reference)" in page and "mean difference (leader)" in page
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for stem in ("significance_dice", "podium_dice", "significance_fp_volume_ml", "tau_bootstrap"):
        for suffix in (".png", ".svg"):
            assert (board / "plots" / f"{stem}{suffix}").stat().st_size > 1000, stem
        assert f'src="plots/{stem}.png"' in page
    assert page.index("Standard vs CC-Metrics") < page.index("plots/tau_bootstrap.png")
    assert page.index("plots/tau_bootstrap.png") < page.index("<h2>Per metric</h2>")
    tests = pd.read_csv(board / "downloads" / "paired_tests.csv")
    dice = tests[(tests["metric"] == "dice") & (tests["role"] == "leader")].set_index("entry")
    assert list(dice.index) == phantom_board.order[1:]
    lb = _board(phantom_board)
    expected = paired_tests(lb.data.scores["dice"], "perfect", alpha=lb.alpha)
    np.testing.assert_allclose(dice["p_holm"], expected["p_holm"])
    taus = pd.read_csv(board / "downloads" / "tau_bootstrap.csv", index_col="resample")
    assert len(taus) == 30 and "dice_vs_cc_dice" in taus
    assert "paired_tests.csv" in page and "tau_bootstrap.csv" in page


def test_site_cites_papers_and_marks_incomparable_rows(site: Path) -> None:
    page = (site.parent / "autopet-phantom--all" / "index.html").read_text()
    assert "Source text:" not in page and "001_ef03" not in page
    assert "Anatomy-guided Pathology Segmentation" in page and "(2024), Table 2." in page
    assert "Leveraging Anatomical Knowledge" in page and "(2025), Table 16." in page
    assert page.count("not directly comparable") >= 2
    assert "Protocol: AutoPET FDG-PET/CT cut into 2D axial slices" in page
    payload = json.loads(
        (site.parent / "autopet-phantom--all" / "downloads" / "leaderboard.json").read_text()
    )
    assert "nnUNet" not in payload["entries"]


def test_cli_reference_entry(phantom_board: PhantomBoard, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["leaderboard", "--task", phantom_board.task, "--split", "all", "--resamples", "10"]
    args += ["--workspace", str(phantom_board.workspace.root), "--out", str(tmp_path / "s")]
    bad = runner.invoke(app, [*args, "--reference-entry", "nobody"])
    assert bad.exit_code == 1
    assert "reference entry 'nobody' is not an entry" in bad.output
    assert not (tmp_path / "s" / "index.html").exists()
    good = runner.invoke(app, [*args, "--reference-entry", "good"])
    assert good.exit_code == 0, good.output
    page = (tmp_path / "s" / "autopet-phantom--all" / "index.html").read_text()
    assert "against the reference entry <strong>good</strong>" in page

"""Verdicts on the paper's claims: the statistics against hand computations, the verdict
rules on constructed rows (each shown to flip on a wrong input), and the quick command."""

import math

import numpy as np
import pytest
from cli_helpers import run_cli

from neurosim import verdicts as V
from neurosim.claims import pilot_choice


def test_rank_biserial_and_cohens_d_match_hand_computations():
    a, b = np.array([3.0, 4.0, 5.0]), np.array([1.0, 2.0, 3.5])
    # pairs (a_i > b_j): 3>1,3>2, 4>all 3, 5>all 3 = 8 of 9, no ties: U = 8, r = 2*8/9 - 1
    assert V.mwu(a, b)["r"] == pytest.approx(2 * 8 / 9 - 1)
    sd = math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
    assert V.welch(a, b)["d"] == pytest.approx((a.mean() - b.mean()) / sd)
    assert V.mwu(b, a)["r"] == pytest.approx(-(2 * 8 / 9 - 1))
    assert math.isnan(V.mwu(a, np.array([]))["p"]) and math.isnan(V.welch(a[:1], b)["p"])


def _net(cell, gain, lr, seed, **kw):
    return {
        "cell": cell,
        "backend": "float",
        "rule": "eprop",
        "gain": gain,
        "lr": lr,
        "seed": seed,
        "alpha": 0.5,
        "flossing": "off",
        "best_lr": True,
        "diverged": False,
        **kw,
    }


def _claim1_data(small_scale: float, n: int = 10):
    """Curves flat at 0.01·scale (gain 0.2) and 0.01 (gain 1.0) with seed jitter."""
    rng = np.random.default_rng(0)
    summary, curves = [], []
    for g, scale in ((0.2, small_scale), (1.0, 1.0)):
        for s in range(n):
            level = 0.01 * scale * (1 + 0.05 * rng.standard_normal())
            summary.append(_net("c", g, 1e-3, s, final_loss=level))
            curves += [
                {**_net("c", g, 1e-3, s), "phase": "train", "iteration": i, "loss": level}
                for i in range(0, 2001, 50)
            ]
    return summary, curves


@pytest.mark.parametrize(
    ("scale", "verdict"), [(3.0, "reproduces"), (1.2, "partly"), (1.0, "does not"), (0.5, "does not")]
)
def test_claim1_verdict_follows_the_stated_rule(scale, verdict):
    summary, curves = _claim1_data(scale)
    rows = V.claim1_rows(summary, curves, 0.5, "eprop")
    assert [r["measure"] for r in rows] == [
        "loss at it. 500",
        "loss at it. 1000",
        "loss at it. 2000",
        "final loss",
    ]
    assert all(len(r["a"]) == 10 for r in rows)
    assert V.claim1_verdict(rows) == verdict


def test_loss_at_iteration_averages_the_window_before_it():
    curves = [
        {**_net("c", 0.2, 1e-3, 0), "phase": "train", "iteration": i, "loss": float(i)}
        for i in range(0, 1001, 50)
    ]
    rows = [_net("c", 0.2, 1e-3, 0, final_loss=1.0)]
    # (1000 - 250, 1000] holds 800, 850, 900, 950, 1000
    assert V.loss_at(curves, rows, 1000).tolist() == [900.0]


def _le_rows(before_small, after_small, before_ref, after_ref, n=10):
    rng = np.random.default_rng(1)
    out = []
    for g, bef, aft in ((0.2, before_small, after_small), (1.0, before_ref, after_ref)):
        for s in range(n):
            j = 0.01 * rng.standard_normal(2)
            out.append(
                _net(
                    "c",
                    g,
                    1e-3,
                    s,
                    final_loss=0.01,
                    le_before=bef + j[0],
                    le_after=aft + j[1],
                    le_before_tr=bef + j[0],
                    le_after_tr=aft + j[1],
                )
            )
    return out


def test_claim2_reproduces_only_when_before_is_far_below_and_after_is_near_zero():
    log_a = math.log(0.5)
    good = V.claim2_rows(_le_rows(0.9 * log_a, -0.01, -0.2, -0.02), 0.5, "eprop", "")
    assert V.claim2_verdict(good) == "reproduces"
    after_far = V.claim2_rows(_le_rows(0.9 * log_a, -0.3, -0.2, -0.02), 0.5, "eprop", "")
    assert V.claim2_verdict(after_far) == "partly"
    assert [r["verdict"] for r in after_far][1] == "does not"  # |−0.3| / 0.69 > 0.25
    not_below = V.claim2_rows(_le_rows(-0.2, -0.01, -0.2, -0.01), 0.5, "eprop", "")
    assert not_below[0]["verdict"] == "does not" and not_below[-1]["verdict"] == "does not"


def test_claim3_reproduces_when_flossing_helps_most_at_the_small_gain():
    def data(factor_small, factor_ref):
        rows, curves = [], []
        for g, f in ((0.2, factor_small), (1.0, factor_ref)):
            for s in range(10):
                for flossing, level in (("off", 0.03), ("local100@0.001", 0.03 / f)):
                    level *= 1 + 0.02 * np.sin(s)
                    rows.append(_net(flossing, g, 1e-3, s, flossing=flossing, final_loss=level))
                    curves += [
                        {**rows[-1], "phase": "train", "iteration": i, "loss": level}
                        for i in range(0, 1001, 50)
                    ]
        return rows, curves

    assert V.claim3_verdict(V.claim3_rows(*data(2.0, 1.2), 0.5))[0] == "reproduces"
    assert V.claim3_verdict(V.claim3_rows(*data(1.2, 2.0), 0.5))[0] == "partly"  # helps more at 1.0
    verdict, which = V.claim3_verdict(V.claim3_rows(*data(1.0, 1.0), 0.5))
    assert verdict == "does not" and which == []
    worse = V.claim3_rows(*data(0.5, 0.5), 0.5)
    assert {r["verdict"] for r in worse} == {"worse"}


def test_pilot_choice_is_the_smallest_lr_with_small_exponents_at_every_gain():
    rows = [
        {"alpha": 0.5, "flossing": f"local100@{lr:g}", "gain": g, "le_after": lam}
        for lr, lams in ((1e-4, (-0.4, -0.05)), (3e-4, (-0.05, -0.01)), (1e-3, (0.0, 0.0)))
        for g, lam in zip((0.2, 1.0), lams, strict=True)
        for _ in range(3)
    ]
    assert pilot_choice(rows) == {0.5: 3e-4}  # 1e-4 fails at gain 0.2 (0.16 > 0.01)
    # none reaches the target: the lowest mean λ₁² among the lrs that stay finite (1e-3 has a NaN)
    far = [{**r, "le_after": {1e-4: 0.5, 3e-4: 0.3, 1e-3: math.nan}[float(r["flossing"][9:])]} for r in rows]
    assert pilot_choice(far) == {0.5: 3e-4}
    assert pilot_choice([{**r, "le_after": math.nan} for r in rows]) == {0.5: None}


def test_claims_quick_writes_every_table_and_the_three_figures(tmp_path, capsys):
    out = tmp_path / "claims"
    code, stdout, err = run_cli(["claims", "--quick", "--out", str(out), "--executor", "serial"], capsys)
    assert code == 0, err
    text = (out / "claims.md").read_text()
    for heading in ("## Claim 1", "## Claim 2", "## Claim 3", "## Flossing's own lr (pilot)", "## Runs"):
        assert heading in text
    assert "Every sweep is complete." in text and "α=0.8, eprop" in text and "local5@0.001+every5" in text
    for name in ("fig1_alpha", "fig3_alpha", "fig4_alpha"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
    code, _, _ = run_cli(["claims", "--quick", "--out", str(out), "--tables-only"], capsys)
    assert code == 0 and (out / "claims.md").read_text() == text  # rebuilt from the cells alone


def test_tables_only_without_sweeps_is_one_line_and_exit_2(tmp_path, capsys):
    code, _, err = run_cli(["claims", "--tables-only", "--out", str(tmp_path / "none")], capsys)
    assert code == 2 and "no claims sweep" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "none").exists()


def test_claim3_compares_within_one_optimizer():
    """An SGD sweep's no-flossing rows are not the Adam flossing rows' baseline."""
    rows = []
    for opt, off_level, fl_level in (("adam", 0.03, 0.03), ("sgd", 0.06, 0.03)):
        for s in range(10):
            for flossing, level in (("off", off_level), ("local100@0.001", fl_level)):
                rows.append(
                    {
                        **_net(f"{opt}-{flossing}", 0.2, 1e-3, s, flossing=flossing),
                        "optimizer": opt,
                        "final_loss": level * (1 + 0.01 * s),
                    }
                )
    adam, sgd = V.claim3_rows(rows, [], 0.5, "adam"), V.claim3_rows(rows, [], 0.5, "sgd")
    assert [r["verdict"] for r in adam] == ["no difference"] and adam[0]["setting"] == "α=0.5, adam, gain 0.2"
    assert [r["verdict"] for r in sgd] == ["improves"] and sgd[0]["factor"] == pytest.approx(2.0)

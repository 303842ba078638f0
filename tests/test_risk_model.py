"""End-to-end risk model on a small synthetic panel: build, save/load, no look-ahead, monthly
regression, factor tools (orthogonalise, pure factor return / FWL, residual labels) and
planted factor-return recovery."""

from __future__ import annotations

import numpy as np
import pytest

from deepalpha.data.panel import Panel
from deepalpha.risk.factor_tools import (
    forward_returns,
    orthogonalize,
    pure_factor_return,
    residual_labels,
)
from deepalpha.risk.industries import GROUP_KEYS
from deepalpha.risk.model import (
    RiskConfig,
    RiskModel,
    build_risk_model,
    listed_age,
    month_end_rows,
)
from deepalpha.risk.regression import design_chunk, regress

FIELDS = ("close", "volume", "mktcap", "shares", "pb", "pe", "dv_ratio", "ebit",
          "debt_to_assets", "roe", "roa")  # fmt: skip
CFG = RiskConfig(min_listed_days=20, eigen_sims=20, min_cov_obs=40, chunk=32)


def make_panel(T=330, N=90, P=5, seed=0):
    """Prices from a one-factor market + industry + specific noise; quarterly fundamentals."""
    rng = np.random.default_rng(seed)
    dates = np.busday_offset("2015-01-01", np.arange(T), roll="forward").astype("datetime64[D]")
    ind = rng.integers(0, P, N)
    beta = rng.uniform(0.5, 1.5, N)
    mkt = rng.standard_normal(T) * 0.012
    fi = rng.standard_normal((T, P)) * 0.005
    r = beta * mkt[:, None] + fi[:, ind] + rng.standard_t(4, (T, N)) * 0.015
    r[0] = 0.0
    close = 10 * np.exp(np.cumsum(r, axis=0))
    shares = np.exp(rng.normal(20, 1, N))
    listed = np.ones((T, N), dtype=bool)
    late = rng.random(N) < 0.1
    listed[: T // 3, late] = False
    close[~listed] = np.nan
    susp = (rng.random((T, N)) < 0.01) & listed
    for t in range(1, T):  # suspended: price carried, volume 0
        close[t, susp[t]] = close[t - 1, susp[t]]
    vol = np.where(listed, shares * np.exp(rng.normal(-4.5, 0.5, (T, N))), np.nan)
    vol[susp] = 0.0
    q = np.arange(T) // 63
    nq = q.max() + 1

    def quarterly(mu, sd):
        v = rng.normal(mu, sd, (nq, N))
        return np.where(listed, v[q], np.nan)

    f = {
        "close": close, "volume": vol, "mktcap": close * shares, "shares": np.where(listed, shares, np.nan),
        "pb": quarterly(2.0, 0.8), "pe": quarterly(20, 15), "dv_ratio": quarterly(1.5, 1.0),
        "ebit": quarterly(1e8, 5e7), "debt_to_assets": quarterly(50, 15), "roe": quarterly(8, 5),
        "roa": quarterly(4, 3),
    }  # fmt: skip
    data = np.stack([np.asarray(f[k], dtype=np.float32) for k in FIELDS])
    masks = {"listed": listed, "suspended": susp, "tradable": listed & ~susp}
    assets = np.array([f"SH{600000 + i}" for i in range(N)])
    panel = Panel(data, dates, assets, FIELDS, masks)
    groups = np.array([GROUP_KEYS[i] for i in ind], dtype=object)
    return panel, groups


@pytest.fixture(scope="module")
def built():
    panel, groups = make_panel()
    return panel, groups, build_risk_model(panel, groups, config=CFG)


def test_build_shapes_and_constraints(built):
    panel, _, m = built
    T, N, _ = panel.shape
    K = len(m.factor_names)
    assert m.factor_names[0] == "country" and len(m.industry_names) == 5
    assert m.styles.shape == (T, N, 15) and m.styles.dtype == np.float32
    assert m.factor_returns.shape == (T, K) and np.isnan(m.factor_returns[-1]).all()
    assert m.industry_ids.dtype == np.int16
    ok = np.isfinite(m.factor_returns).all(axis=1)
    assert ok[25:-1].all()
    # constraint: cap-weighted industry returns sum to zero over the regression sample
    r_next = np.full((T, N), np.nan)
    c = panel.field("close").astype(np.float64)
    r_next[:-1] = c[1:] / c[:-1] - 1
    r_next[:-1][panel.masks["suspended"][1:]] = np.nan
    w = np.where(np.isfinite(r_next) & np.isfinite(m.styles).all(axis=2), m.weights, 0.0) ** 2
    P = m.n_industries
    for t in np.nonzero(ok)[0]:
        wi = np.bincount(m.industry_ids[t][w[t] > 0], weights=w[t][w[t] > 0], minlength=P)
        assert abs((wi * m.factor_returns[t, 1 : 1 + P]).sum()) < 1e-6 * wi.sum() * 1e-3
    # Size is standardised: cap-weighted mean 0, equal-weighted std 1 over the ESTU
    t = 200
    e = m.weights[t] > 0
    s = m.styles[t, e, 0].astype(np.float64)
    cap = m.weights[t, e].astype(np.float64) ** 2
    assert (s * cap).sum() / cap.sum() == pytest.approx(0.0, abs=1e-5)
    assert s.std(ddof=1) == pytest.approx(1.0, abs=1e-5)
    # every listed stock with a cap has all exposures (missing ones filled)
    assert np.isfinite(m.styles[t][panel.masks["listed"][t]]).all()
    assert np.nanmean(m.r2) > 0.05
    assert m.factor_cov.shape == (len(m.cov_dates), K, K)
    C = m.factor_cov[-1].astype(np.float64)
    assert np.linalg.eigvalsh(C).min() > -1e-12 and np.allclose(C, C.T)
    assert m.specific_var.shape == (len(m.cov_dates), N)
    assert np.isfinite(m.specific_var[-1][m.weights[-1] > 0]).all()


def test_save_load_roundtrip(built, tmp_path):
    _, _, m = built
    m.save(tmp_path / "rm")
    m.save(tmp_path / "rm")  # overwrite is atomic and leaves no temp dirs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rm"]
    m2 = RiskModel.load(tmp_path / "rm")
    for k in ("styles", "industry_ids", "weights", "factor_returns", "specific_returns", "tstats",
              "r2", "factor_cov", "specific_var"):  # fmt: skip
        np.testing.assert_array_equal(np.asarray(getattr(m2, k)), getattr(m, k), err_msg=k)
    np.testing.assert_array_equal(m2.dates, m.dates)
    np.testing.assert_array_equal(m2.cov_dates, m.cov_dates)
    assert m2.factor_names == m.factor_names and (m2.assets == m.assets).all()


@pytest.mark.slow
def test_no_lookahead(built):
    panel, groups, m = built
    D = 250
    data = panel.data.copy()
    rng = np.random.default_rng(9)
    for k in ("close", "mktcap"):
        i = panel.fields.index(k)
        data[i, D + 1 :] *= np.exp(rng.normal(0, 0.05, data[i, D + 1 :].shape)).astype(np.float32)
    for k in ("volume", "pb", "pe", "ebit", "roe"):
        i = panel.fields.index(k)
        data[i, D + 1 :] *= 3.0
    p2 = Panel(data, panel.dates, panel.assets, panel.fields, panel.masks)
    m2 = build_risk_model(p2, groups, config=CFG)
    np.testing.assert_array_equal(m2.styles[: D + 1], m.styles[: D + 1])
    np.testing.assert_array_equal(m2.weights[: D + 1], m.weights[: D + 1])
    # row t is the return over t -> t+1: rows < D are unchanged, row D is not
    np.testing.assert_array_equal(m2.factor_returns[:D], m.factor_returns[:D])
    np.testing.assert_array_equal(m2.specific_returns[:D], m.specific_returns[:D])
    assert not np.array_equal(m2.factor_returns[D], m.factor_returns[D])
    ci = m.cov_index()
    early = ci <= D
    np.testing.assert_array_equal(m2.factor_cov[early], m.factor_cov[early])
    np.testing.assert_array_equal(m2.specific_var[early], m.specific_var[early])


@pytest.mark.slow
def test_monthly_regression(built):
    panel, groups, _ = built
    mm = build_risk_model(panel, groups, freq="monthly", config=CFG)
    rows = month_end_rows(panel.dates)
    np.testing.assert_array_equal(mm.dates, panel.dates[rows])
    c = panel.field("close").astype(np.float64)
    r = c[rows[1:]] / c[rows[:-1]] - 1  # compounded next-month return on month-end exposures
    X = design_chunk(mm.styles[:-1], mm.industry_ids[:-1], mm.n_industries)
    fit = np.einsum("tnk,tk->tn", X, np.nan_to_num(mm.factor_returns[:-1].astype(np.float64)))
    ok = np.isfinite(mm.specific_returns[:-1])
    assert ok[3:].sum() > 100
    np.testing.assert_allclose((fit + mm.specific_returns[:-1])[ok], r[ok], atol=2e-6)
    assert np.isnan(mm.factor_returns[-1]).all()


# ------------------------------------------------------------------ factor tools on arrays


def array_model(T=8, N=400, P=4, S=3, seed=0):
    rng = np.random.default_rng(seed)
    ind = np.broadcast_to(rng.integers(0, P, N), (T, N)).astype(np.int16)
    styles = rng.standard_normal((T, N, S)).astype(np.float32)
    cap = np.exp(rng.normal(3, 1, (T, N)))
    w = np.sqrt(cap).astype(np.float32)
    w[:, :20] = 0.0  # outside the ESTU
    K = 1 + P + S
    X = design_chunk(styles, ind, P)
    r = np.einsum("tnk,tk->tn", X, rng.normal(0, 0.01, (T, K))) + rng.normal(0, 0.02, (T, N))
    res = regress(styles, ind, P, r, w)
    m = RiskModel(
        dates=np.arange(T).astype("datetime64[D]"), assets=np.array([f"S{i}" for i in range(N)]),
        style_names=("A", "B", "C"), industry_names=tuple(GROUP_KEYS[:P]), styles=styles,
        industry_ids=ind, weights=w, factor_returns=res.factor_returns.astype(np.float32),
        specific_returns=res.specific_returns, tstats=res.tstats, r2=res.r2,
        cov_dates=np.array([], dtype="datetime64[D]"), factor_cov=np.zeros((0, K, K), np.float32),
        specific_var=np.zeros((0, N), np.float32),
    )  # fmt: skip
    return m, rng


def test_orthogonalize_removes_exposures_and_restandardizes():
    m, rng = array_model()
    X = m.design(0, len(m.dates))
    a = X[:, :, -1] * 2 + X[:, :, 2] + rng.standard_normal(X.shape[:2])
    v = m.weights.astype(np.float64)
    for inds, cols in ((False, [0, 5, 6, 7]), (True, list(range(8)))):
        ap = orthogonalize(a, m, industries=inds, restandardize=False)
        np.testing.assert_allclose(np.einsum("tnk,tn,tn->tk", X[:, :, cols], v, ap), 0, atol=1e-8)
    z = orthogonalize(a, m, industries=True)
    e = v > 0
    cap = v**2
    np.testing.assert_allclose((z * cap * e).sum(1) / (cap * e).sum(1), 0, atol=1e-10)
    np.testing.assert_allclose([z[t, e[t]].std(ddof=1) for t in range(len(z))], 1.0)


def test_pure_factor_return_fwl():
    m, rng = array_model()
    X = m.design(0, len(m.dates))
    a = 0.8 * X[:, :, -2] + 0.5 * X[:, :, 1] + rng.standard_normal(X.shape[:2])
    f_raw = pure_factor_return(a, m)
    f_orth = pure_factor_return(orthogonalize(a, m, industries=True, restandardize=False), m)
    np.testing.assert_allclose(f_raw, f_orth, rtol=1e-9, atol=1e-13)
    assert np.all(np.isfinite(f_raw))
    # a signal equal to next period's specific return earns a positive pure return every date
    nxt = np.nan_to_num(m.specific_returns.astype(np.float64))
    assert np.all(pure_factor_return(nxt, m) > 0)


def test_residual_labels(built):
    panel, _, m = built
    h = 5
    lab = residual_labels(m, panel, h)
    c = panel.field("close").astype(np.float64)
    fwd = forward_returns(panel, np.arange(len(panel.dates)), h)
    t = 100
    assert fwd[t, 3] == pytest.approx(c[t + 1 + h, 3] / c[t + 1, 3] - 1) or np.isnan(fwd[t, 3])
    assert np.isnan(lab[-h - 1 :]).all()
    # orthogonal to the exposures at t over the regression sample
    X = m.design(t, t + 1)[0]
    w = np.where(np.isfinite(lab[t]), m.weights[t], 0.0)
    lt = np.nan_to_num(lab[t].astype(np.float64))
    assert np.abs(X.T @ (w * lt)).max() < 1e-6 * (w * np.abs(lt)).sum()
    # the label at t does not depend on prices after t + 1 + h
    data = panel.data.copy()
    data[panel.fields.index("close"), t + 2 + h :] *= 2.0
    p2 = Panel(data, panel.dates, panel.assets, panel.fields, panel.masks)
    np.testing.assert_array_equal(residual_labels(m, p2, h)[: t + 1], lab[: t + 1])
    labm = residual_labels(m, panel, "month")
    assert np.isfinite(labm[100]).sum() > 50 and np.isnan(labm[-1]).all()


# ------------------------------------------------------------ planted factor-return recovery


def test_planted_factor_returns_recovered():
    """Planted exposures + factor returns obeying the constraint -> the batched regression
    recovers each style's return series (corr >= 0.95) and the specific-return scale."""
    rng = np.random.default_rng(11)
    T, N, P, S = 120, 2500, 10, 15
    ind = rng.integers(0, P, N)
    styles = rng.standard_normal((T, N, S))
    cap = np.exp(rng.normal(3, 1.2, (T, N)))
    w_ind = np.stack([np.bincount(ind, weights=cap[t], minlength=P) for t in range(T)])
    f = np.c_[
        rng.normal(0, 0.012, (T, 1)), rng.normal(0, 0.005, (T, P)), rng.normal(0, 0.003, (T, S))
    ]
    f[:, 1 : 1 + P] -= ((w_ind * f[:, 1 : 1 + P]).sum(1) / w_ind.sum(1))[:, None]  # constraint
    u = rng.standard_t(4, (T, N)) * 0.015 / np.sqrt(2)
    X = design_chunk(styles, np.broadcast_to(ind, (T, N)), P)
    r = np.einsum("tnk,tk->tn", X, f) + u
    res = regress(styles, ind, P, r, np.sqrt(cap))
    for k in range(S):
        assert np.corrcoef(res.factor_returns[:, 1 + P + k], f[:, 1 + P + k])[0, 1] >= 0.95
    np.testing.assert_allclose(res.factor_returns[:, 0], f[:, 0], atol=2e-3)
    assert np.std(res.specific_returns) / np.std(u) == pytest.approx(1.0, abs=0.02)


def test_listed_age_counts_days_before_the_panel():
    dates = np.busday_offset("2020-01-01", np.arange(10), roll="forward").astype("datetime64[D]")
    listed = np.ones((10, 3), dtype=bool)
    listed[:4, 2] = False
    ld = np.array(["2019-12-25", "NaT", dates[4]], dtype="datetime64[D]")
    age = listed_age(listed, dates, ld)
    before = np.busday_count(np.datetime64("2019-12-25"), dates[0])
    assert age[:, 0].tolist() == list(range(1 + before, 11 + before))
    assert age[:, 1].tolist() == list(range(1, 11))  # unknown: counted from the panel
    assert age[:, 2].tolist() == [0, 0, 0, 0, 1, 2, 3, 4, 5, 6]

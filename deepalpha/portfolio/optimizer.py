"""Tracking-error-constrained index-enhancement optimiser (one rebalance date).

Shapes: ``N`` candidate stocks of the date, ``K`` risk factors (country + industries + styles).

The problem (DESIGN section 7), a second-order cone programme solved by cvxpy + Clarabel::

    max  α'w
    s.t. ‖F^½ y‖² + ‖Δ^½ (w − w_b)‖² ≤ TE² / H,     y = X'(w − w_b)          (ex-ante TE)
         |y_k| ≤ ε_ind  for industry columns,  |y_k| ≤ ε_sty  for style columns
         max(0, w_b − s) ≤ w ≤ min(w_max, w_b + s)                         (per-stock bounds)
         Σ_{i ∈ index} w_i ≥ m                                              (index share, 0.8)
         ‖w − w_prev‖₁ ≤ 2τ                                                 (τ one-sided turnover)
         1'w = 1;   w_i = w_prev_i  for untradable i (suspended, limit-locked)

Units: ``F`` (``[K, K]``) and ``Δ`` (``[N]``, specific variances) are in the units of the risk
model's returns -- daily for our risk model -- and ``H`` (``periods_per_year``, 252 for daily) turns
the annual TE limit into those units: the constraint is ``w'Σw ≤ TE²/H``. The N x N covariance
``Σ = XFX' + Δ`` is never formed: the cone holds ``F^½ y`` (``K`` entries) and ``Δ^½(w − w_b)``
(``N`` entries).

Speed: each date's problem is built with its data as constants (``X'`` sparse: the industry
block is one-hot); only the limits the relaxation loop changes (TE, turnover, factor bounds,
index share) vary between solves of a date, so a relaxation step re-solves without rebuilding.
Two backends state the same problem: ``backend="cvxpy"`` (readable, the reference the tests
compare against) and the default ``"clarabel"``, which assembles Clarabel's sparse ``A, b`` and
cones directly and skips cvxpy's canonicalisation (about a third of the time of a solve; a
relaxation step only updates ``b``). We also measured the cvxpy alternative of every array as a
Parameter (DPP) re-solved for a fixed universe: it is slower -- compiling takes 4 s (N = 800) /
15 s (N = 1,800) and each re-solve 0.1 / 0.3 s, against 0.12 / 0.2 s to build *and* solve with
constants (K = 47, 2 cores at low load; ``benchmarks/bench_portfolio.py`` times both backends).

Infeasibility: when the problem is infeasible the optimiser relaxes, in order, the turnover
limit (x2, x4, off), then the TE limit (x1.5, x2, x4, off), then the industry/style bounds
(x2, x4, off), then the index-member share, until a solve succeeds. It then tightens the
dimensions relaxed before that last step again (TE, factor bounds, index share, then turnover), keeping the tightest level
that stays feasible -- so an infeasibility caused by, say, frozen positions breaking the index
share does not leave the TE switched off. ``OptimResult.relaxed`` records the final level of
each relaxed dimension (e.g. ``["turnover x2"]``). If nothing works the previous
weights are kept (``status = "failed"``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import clarabel
import cvxpy as cp
import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from deepalpha.errors import DataError

__all__ = [
    "OptimResult",
    "OptimizerConfig",
    "check_constraints",
    "ex_ante_te",
    "infer_factor_kind",
    "optimize",
    "stock_bounds",
]


class OptimizerConfig(BaseModel):
    """Index-enhancement optimiser settings (defaults close to Chinese practice).

    All weights are fractions of NAV; ``te`` is annualised; style bounds are in exposure units
    (styles are standardised, so 0.3 means 0.3 cross-sectional σ).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    te: float = Field(0.05, gt=0, description="annual ex-ante tracking-error limit")
    periods_per_year: float = Field(
        252.0, gt=0, description="H: periods a year in the covariance's units (252 = daily)"
    )
    industry_bound: float | None = Field(0.02, ge=0, description="|active industry weight|")
    style_bound: float | None = Field(0.3, ge=0, description="|active style exposure| in σ")
    stock_active_bound: float | None = Field(0.015, gt=0, description="|w_i − w_b,i|")
    w_max: float | None = Field(None, gt=0, le=1, description="absolute cap on w_i")
    min_index_weight: float = Field(0.8, ge=0, le=1, description="Σ over index members")
    turnover: float | None = Field(
        0.30, gt=0, description="one-sided turnover limit per rebalance (½‖w − w_prev‖₁)"
    )
    relax_turnover: tuple[float, ...] = (2.0, 4.0)
    relax_te: tuple[float, ...] = (1.5, 2.0, 4.0)
    relax_bounds: tuple[float, ...] = (2.0, 4.0)
    solver_tol: float = Field(1e-8, gt=0, description="Clarabel feasibility/gap tolerance")
    backend: Literal["clarabel", "cvxpy"] = Field(
        "clarabel",
        description="clarabel: the cone programme built directly for Clarabel (fast); "
        "cvxpy: the same problem stated in cvxpy (the readable reference), solved by Clarabel",
    )


@dataclass
class OptimResult:
    """Solution of one rebalance.

    Attributes
    ----------
    weights : float64[N]
        Target weights (sum 1, non-negative; for ``failed``: ``w_prev`` as given).
    status : str
        ``optimal``, ``relaxed`` (solved after relaxing something) or ``failed`` (kept w_prev).
    relaxed : list[str]
        Relaxation steps taken, e.g. ``["turnover x2", "te x1.5"]``.
    ex_ante_te : float
        Annualised ex-ante tracking error of the returned weights, √(H·(w−w_b)'Σ(w−w_b)).
    te_limit, turnover_limit : float
        Limits in force at the solution (annual TE; one-sided turnover, ``inf`` when off).
    turnover : float
        One-sided turnover ½‖w − w_prev‖₁.
    objective : float
        α'w with the alpha as given.
    solve_time : float
        Seconds spent in cvxpy/Clarabel (all attempts).
    attempts : int
        Number of solves.
    """

    weights: np.ndarray
    status: str
    relaxed: list[str] = field(default_factory=list)
    ex_ante_te: float = float("nan")
    te_limit: float = float("nan")
    turnover_limit: float = float("inf")
    turnover: float = float("nan")
    objective: float = float("nan")
    solve_time: float = 0.0
    attempts: int = 0
    bound_scale: float = 1.0


# ----------------------------------------------------------------------------- problem


class _Problem:
    """One date's cone programme. Data enter as constants (sparse ``X'``); the limits that the
    relaxation loop changes (TE, turnover, factor bounds) are cvxpy Parameters, so a relaxation
    step re-solves without rebuilding."""

    def __init__(
        self,
        alpha: np.ndarray,
        w_bench: np.ndarray,
        w_prev: np.ndarray,
        X: np.ndarray,
        Fhalf: np.ndarray,
        delta: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
        member: np.ndarray,
        min_member: float,
    ) -> None:
        n, k = X.shape
        self.w = w = cp.Variable(n)
        self.y = y = cp.Variable(k)
        self.te = cp.Parameter(nonneg=True)  # TE / √H, in the covariance's units
        self.tau2 = cp.Parameter(nonneg=True)  # limit on ‖w − w_prev‖₁ (= 2 × one-sided)
        self.ybound = cp.Parameter(k, nonneg=True)
        self.min_member = cp.Parameter(nonneg=True)
        sd = np.sqrt(delta)
        XT = sp.csr_matrix(X.T)
        cons = [
            y == XT @ w - X.T @ w_bench,
            cp.norm(cp.hstack([Fhalf @ y, cp.multiply(sd, w) - sd * w_bench]), 2) <= self.te,
            cp.abs(y) <= self.ybound,
            w >= lo,
            w <= hi,
            cp.sum(w) == 1,
        ]
        if member.any():
            cons.append(member.astype(np.float64) @ w >= self.min_member)
        if w_prev.sum() > 0:
            cons.append(cp.norm1(w - w_prev) <= self.tau2)
        self.problem = cp.Problem(cp.Maximize(alpha @ w), cons)

    def solve(self, tol: float) -> str:
        try:
            self.problem.solve(
                solver=cp.CLARABEL,
                tol_feas=tol,
                tol_gap_abs=tol,
                tol_gap_rel=tol,
                max_iter=200,
            )
        except cp.SolverError:
            return "solver_error"
        return str(self.problem.status)


class _Value:
    """Holder with a ``.value`` (mirrors a cvxpy Parameter / Variable for `_DirectProblem`)."""

    def __init__(self, value: object = None) -> None:
        self.value = value


class _DirectProblem:
    """The same cone programme handed to Clarabel directly (no cvxpy canonicalisation).

    Variables ``x = [w (N), y (K), t (N, only with a turnover limit)]``; Clarabel's form
    ``min q'x  s.t.  A x + s = b, s ∈ cones`` with, in order: a zero cone (``y − X'w = −X'w_b``,
    ``1'w = 1``), a non-negative cone (stock bounds, factor bounds, index share, turnover
    ``|w − w_prev| ≤ t``, ``1't ≤ 2τ``) and one second-order cone
    ``(TE/√H, F^½ y, √Δ∘(w − w_b))``. Only ``b`` changes between relaxation steps.
    """

    def __init__(
        self,
        alpha: np.ndarray,
        w_bench: np.ndarray,
        w_prev: np.ndarray,
        X: np.ndarray,
        Fhalf: np.ndarray,
        delta: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
        member: np.ndarray,
        min_member: float,
    ) -> None:
        n, k = X.shape
        self.n, self.k = n, k
        self.te, self.tau2 = _Value(), _Value()
        self.ybound, self.min_member = _Value(), _Value()
        self.w = _Value()
        self.has_turn = bool(w_prev.sum() > 0)
        self.has_member = bool(member.any())
        nt = n if self.has_turn else 0
        nv = n + k + nt
        I_n = sp.identity(n, format="csc")
        I_k = sp.identity(k, format="csc")
        Z = lambda r, c: sp.csc_matrix((r, c))  # noqa: E731
        XT = sp.csc_matrix(X.T)
        blocks: list[list[sp.spmatrix | None]] = []
        b: list[np.ndarray] = []
        # zero cone
        blocks.append([-XT, I_k, Z(k, nt)])
        b.append(-(X.T @ w_bench))
        blocks.append([sp.csc_matrix(np.ones((1, n))), Z(1, k), Z(1, nt)])
        b.append(np.ones(1))
        n_zero = k + 1
        # non-negative cone: A x <= b
        rows: list[list[sp.spmatrix | None]] = [
            [I_n, Z(n, k), Z(n, nt)],
            [-I_n, Z(n, k), Z(n, nt)],
            [Z(k, n), I_k, Z(k, nt)],
            [Z(k, n), -I_k, Z(k, nt)],
        ]
        self._b_hi, self._b_lo = hi, -lo
        if self.has_member:
            rows.append([sp.csc_matrix(-member.astype(np.float64)[None, :]), Z(1, k), Z(1, nt)])
        if self.has_turn:
            rows += [
                [I_n, Z(n, k), -I_n],
                [-I_n, Z(n, k), -I_n],
                [Z(1, n), Z(1, k), sp.csc_matrix(np.ones((1, n)))],
            ]
        blocks += rows
        n_nonneg = 2 * n + 2 * k + int(self.has_member) + (2 * n + 1 if self.has_turn else 0)
        # second-order cone: s = (te, F^½ y, √Δ∘w − √Δ∘w_b)
        sd = np.sqrt(delta)
        blocks.append([Z(1, n), Z(1, k), Z(1, nt)])
        blocks.append([Z(k, n), sp.csc_matrix(-Fhalf), Z(k, nt)])
        blocks.append([sp.diags(-sd, format="csc"), Z(n, k), Z(n, nt)])
        if nt == 0:
            blocks = [blk[:2] for blk in blocks]
        self.A = sp.bmat(blocks, format="csc")
        self._b_fixed = (np.concatenate(b), -sd * w_bench)
        self.w_prev = w_prev
        self.q = np.r_[-alpha, np.zeros(k + nt)]
        self.P = sp.csc_matrix((nv, nv))
        self.cones = [
            clarabel.ZeroConeT(n_zero),
            clarabel.NonnegativeConeT(n_nonneg),
            clarabel.SecondOrderConeT(1 + k + n),
        ]
        self._solver: object = None

    def _b(self) -> np.ndarray:
        zero, soc_tail = self._b_fixed
        yb = np.asarray(self.ybound.value, np.float64)
        parts = [zero, self._b_hi, self._b_lo, yb, yb]
        if self.has_member:
            parts.append(np.array([-float(self.min_member.value)]))
        if self.has_turn:
            parts += [self.w_prev, -self.w_prev, np.array([float(self.tau2.value)])]
        parts += [np.array([float(self.te.value)]), np.zeros(self.k), soc_tail]
        return np.concatenate(parts)

    def solve(self, tol: float) -> str:
        b = self._b()
        if self._solver is None:
            st = clarabel.DefaultSettings()
            st.verbose = False
            st.tol_feas = st.tol_gap_abs = st.tol_gap_rel = tol
            st.max_iter = 200
            self._solver = clarabel.DefaultSolver(self.P, self.q, self.A, b, self.cones, st)
        else:
            self._solver.update(b=b)
        sol = self._solver.solve()
        status = str(sol.status)
        if status in ("Solved", "AlmostSolved"):
            self.w.value = np.asarray(sol.x[: self.n])
            return "optimal" if status == "Solved" else "optimal_inaccurate"
        self.w.value = None
        return status.lower()


# ----------------------------------------------------------------------------- helpers


def _matrix_sqrt(F: np.ndarray) -> np.ndarray:
    """``M`` with ``M'M = F`` for a symmetric PSD ``F`` (eigenvalues clipped at 0)."""
    F = 0.5 * (F + F.T)
    lam, V = np.linalg.eigh(F)
    return (np.sqrt(np.clip(lam, 0.0, None))[:, None] * V.T).astype(np.float64)


def ex_ante_te(
    w: np.ndarray,
    w_bench: np.ndarray,
    X: np.ndarray,
    F: np.ndarray,
    delta: np.ndarray,
    periods_per_year: float = 252.0,
) -> float:
    """Annualised ex-ante tracking error √(H·(a'XFX'a + a'Δa)), ``a = w − w_b`` (no N x N)."""
    a = np.asarray(w, np.float64) - np.asarray(w_bench, np.float64)
    y = np.asarray(X, np.float64).T @ a
    var = float(y @ np.asarray(F, np.float64) @ y + np.sum(np.asarray(delta, np.float64) * a * a))
    return float(np.sqrt(max(var, 0.0) * periods_per_year))


def _validate(
    alpha: np.ndarray,
    w_bench: np.ndarray,
    w_prev: np.ndarray,
    X: np.ndarray,
    F: np.ndarray,
    delta: np.ndarray,
    tradable: np.ndarray,
    in_index: np.ndarray,
    factor_kind: np.ndarray,
) -> None:
    n = alpha.shape[0]
    k = X.shape[1] if X.ndim == 2 else -1
    shapes = {
        "w_bench": (w_bench, (n,)),
        "w_prev": (w_prev, (n,)),
        "X": (X, (n, k)),
        "F": (F, (k, k)),
        "delta": (delta, (n,)),
        "tradable": (tradable, (n,)),
        "in_index": (in_index, (n,)),
        "factor_kind": (factor_kind, (k,)),
    }
    for name, (a, shp) in shapes.items():
        if a.shape != shp:
            raise DataError(
                f"optimiser input {name} has shape {a.shape}, expected {shp}", field=name
            )
    for name, a in (("w_bench", w_bench), ("w_prev", w_prev), ("X", X), ("F", F), ("delta", delta)):
        if not np.all(np.isfinite(a)):
            raise DataError(f"optimiser input {name} has non-finite values", field=name)
    if (delta < 0).any():
        raise DataError("specific variance delta is negative", field="delta")
    if (w_prev < -1e-9).any() or (w_bench < -1e-9).any():
        raise DataError("weights must be non-negative", field="w_prev/w_bench")


def check_constraints(
    w: np.ndarray,
    *,
    w_bench: np.ndarray,
    w_prev: np.ndarray,
    X: np.ndarray,
    F: np.ndarray,
    delta: np.ndarray,
    tradable: np.ndarray,
    in_index: np.ndarray,
    factor_kind: np.ndarray,
    config: OptimizerConfig,
    te_limit: float | None = None,
    turnover_limit: float | None = None,
    bound_scale: float = 1.0,
) -> dict[str, float]:
    """Largest violation of each constraint at ``w`` (0 or negative = satisfied).

    ``te_limit`` / ``turnover_limit`` / ``bound_scale`` override the config (to check a relaxed
    solution against the limits in force). Returns ``{name: violation}``.
    """
    cfg = config
    te = cfg.te if te_limit is None else te_limit
    a = w - w_bench
    y = X.T @ a
    viol: dict[str, float] = {}
    viol["budget"] = abs(float(w.sum()) - 1.0)
    viol["long_only"] = float(-w.min())
    if cfg.w_max is not None:
        viol["w_max"] = float((w - cfg.w_max)[tradable].max(initial=-np.inf))
    if cfg.stock_active_bound is not None:
        viol["stock_bound"] = float(
            (np.abs(a) - cfg.stock_active_bound)[tradable].max(initial=-np.inf)
        )
    viol["untradable_fixed"] = float(np.abs(w - w_prev)[~tradable].max(initial=0.0))
    viol["index_share"] = float(cfg.min_index_weight - w[in_index].sum())
    if cfg.industry_bound is not None:
        ind = factor_kind == 1
        viol["industry"] = float(
            (np.abs(y[ind]) - cfg.industry_bound * bound_scale).max(initial=-np.inf)
        )
    if cfg.style_bound is not None:
        sty = factor_kind == 2
        viol["style"] = float((np.abs(y[sty]) - cfg.style_bound * bound_scale).max(initial=-np.inf))
    viol["te"] = ex_ante_te(w, w_bench, X, F, delta, cfg.periods_per_year) - te
    tl = cfg.turnover if turnover_limit is None else turnover_limit
    if tl is not None and np.isfinite(tl) and w_prev.sum() > 0.5:
        viol["turnover"] = 0.5 * float(np.abs(w - w_prev).sum()) - tl
    return viol


# ----------------------------------------------------------------------------- optimise


def optimize(
    alpha: np.ndarray,
    w_bench: np.ndarray,
    w_prev: np.ndarray,
    X: np.ndarray,
    F: np.ndarray,
    delta: np.ndarray,
    tradable: np.ndarray,
    in_index: np.ndarray,
    config: OptimizerConfig | None = None,
    *,
    factor_kind: np.ndarray | None = None,
) -> OptimResult:
    """Solve one rebalance.

    Parameters
    ----------
    alpha : float[N]
        Expected-return score (any scale: the objective is linear; NaN = no view, treated as the
        cross-sectional mean).
    w_bench : float[N]
        Benchmark weights (≥ 0, normally summing to 1 over the candidates).
    w_prev : float[N]
        Current (drifted) weights; all zeros for the first build, when turnover is not limited.
    X : float[N, K]
        Exposures: country, industry one-hot, styles (the risk model's column order).
    F : float[K, K]
        Factor covariance, in the units of ``config.periods_per_year`` (daily for our risk model).
    delta : float[N]
        Specific variances, same units.
    tradable : bool[N]
        False for suspended / limit-locked names: they keep ``w_prev``.
    in_index : bool[N]
        Index members (for the minimum index share).
    config : OptimizerConfig
    factor_kind : int[K], optional
        0 = unconstrained (country), 1 = industry, 2 = style. Default `infer_factor_kind(X)`.

    Returns
    -------
    OptimResult
    """
    cfg = config or OptimizerConfig()
    alpha = np.asarray(alpha, np.float64)
    w_bench = np.asarray(w_bench, np.float64)
    w_prev = np.asarray(w_prev, np.float64)
    X = np.asarray(X, np.float64)
    F = np.asarray(F, np.float64)
    delta = np.asarray(delta, np.float64)
    tradable = np.asarray(tradable, bool)
    in_index = np.asarray(in_index, bool)
    if alpha.ndim != 1 or X.ndim != 2:
        raise DataError(
            f"alpha must be [N] and X [N, K]; got {alpha.shape}, {X.shape}", field="alpha"
        )
    factor_kind = infer_factor_kind(X) if factor_kind is None else np.asarray(factor_kind)
    _validate(alpha, w_bench, w_prev, X, F, delta, tradable, in_index, factor_kind)
    n = X.shape[0]
    H = cfg.periods_per_year

    # alpha: z-score over finite values, NaN -> 0 (no view). The objective is linear: scale-free.
    fin = np.isfinite(alpha)
    z = np.zeros(n)
    if fin.any():
        sd = alpha[fin].std()
        z[fin] = (alpha[fin] - alpha[fin].mean()) / (sd if sd > 0 else 1.0)

    lo, hi = stock_bounds(w_bench, w_prev, tradable, cfg)
    first_build = w_prev.sum() < 0.5
    base_tau = np.inf if (cfg.turnover is None or first_build) else cfg.turnover

    t0 = time.perf_counter()
    Problem = _DirectProblem if cfg.backend == "clarabel" else _Problem
    P = Problem(
        z, w_bench, w_prev, X, _matrix_sqrt(F), delta, lo, hi, in_index, cfg.min_index_weight
    )
    # relaxation ladders, one per dimension: (label, value); level 0 = the configured limit
    ladders = _relaxation_ladders(cfg, base_tau)
    level = dict.fromkeys(ladders, 0)
    attempts = 0

    def attempt() -> bool:
        nonlocal attempts
        tau = ladders["turnover"][level["turnover"]][1]
        te = ladders["te"][level["te"]][1]
        P.tau2.value = 2.0 * tau if np.isfinite(tau) else 4.0  # ‖w − w_prev‖₁ ≤ 2 always
        P.te.value = te / np.sqrt(H) if np.isfinite(te) else 1e3
        P.ybound.value = _factor_bounds(factor_kind, cfg, ladders["bounds"][level["bounds"]][1])
        P.min_member.value = ladders["share"][level["share"]][1]
        attempts += 1
        status = P.solve(cfg.solver_tol)
        return status in ("optimal", "optimal_inaccurate") and P.w.value is not None

    # pass 1: walk up the ladders in order (turnover, then TE, then factor bounds, then share)
    ok = attempt()
    for dim in ladders:
        while not ok and level[dim] + 1 < len(ladders[dim]):
            level[dim] += 1
            ok = attempt()
        if ok:
            break
    if ok and any(level.values()):
        # pass 2: the last step made it feasible; tighten the dimensions relaxed before it
        # again, most important first (TE, factor bounds, index share, turnover), keeping the
        # tightest level that works
        w_ok = np.asarray(P.w.value, np.float64)
        last = last_relaxed(level)
        for dim in ("te", "bounds", "share", "turnover"):
            if dim == last or level[dim] == 0:
                continue
            top = level[dim]
            for lv in range(top):
                level[dim] = lv
                if attempt():
                    w_ok = np.asarray(P.w.value, np.float64)
                    break
            else:
                level[dim] = top
        # w_ok solved the final levels: every later attempt failed and was reverted
        P.w.value = w_ok
    if ok:
        w = np.clip(np.asarray(P.w.value, np.float64), lo, hi)  # snap 1e-9 round-off
        relaxed = [ladders[d][level[d]][0] for d in ladders if level[d] > 0]
        return OptimResult(
            weights=w,
            status="optimal" if not relaxed else "relaxed",
            relaxed=relaxed,
            ex_ante_te=ex_ante_te(w, w_bench, X, F, delta, H),
            te_limit=ladders["te"][level["te"]][1],
            turnover_limit=ladders["turnover"][level["turnover"]][1],
            turnover=0.5 * float(np.abs(w - w_prev).sum()),
            objective=float(alpha[fin] @ w[fin]),
            solve_time=time.perf_counter() - t0,
            attempts=attempts,
            bound_scale=ladders["bounds"][level["bounds"]][1],
        )
    relaxed = [ladders[d][level[d]][0] for d in ladders if level[d] > 0]
    # nothing works: keep the current holdings (the rest stays cash), or hold the benchmark
    w = w_prev.copy() if not first_build else w_bench / max(w_bench.sum(), 1e-12)
    return OptimResult(
        weights=w,
        status="failed",
        relaxed=[*relaxed, "kept previous weights" if not first_build else "held the benchmark"],
        ex_ante_te=ex_ante_te(w, w_bench, X, F, delta, H),
        te_limit=np.inf,
        turnover_limit=np.inf,
        turnover=0.5 * float(np.abs(w - w_prev).sum()),
        objective=float(alpha[fin] @ w[fin]),
        solve_time=time.perf_counter() - t0,
        attempts=attempts,
        bound_scale=np.inf,
    )


def stock_bounds(
    w_bench: np.ndarray, w_prev: np.ndarray, tradable: np.ndarray, config: OptimizerConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Per-stock ``lo, hi`` (float64[N]): ``max(0, w_b − s) ≤ w ≤ min(w_max, w_b + s)`` for
    tradable names, ``w = w_prev`` for untradable ones."""
    n = w_bench.shape[0]
    lo, hi = np.zeros(n), np.ones(n)
    if config.w_max is not None:
        hi = np.minimum(hi, config.w_max)
    if config.stock_active_bound is not None:
        lo = np.maximum(lo, w_bench - config.stock_active_bound)
        hi = np.minimum(hi, w_bench + config.stock_active_bound)
    lo[~tradable] = w_prev[~tradable]
    hi[~tradable] = w_prev[~tradable]
    return lo, hi


def _factor_bounds(kind: np.ndarray, cfg: OptimizerConfig, scale: float) -> np.ndarray:
    """Bounds on |y_k| (float64[K]); 'off' is a large finite number (Clarabel wants finite)."""
    free = 1e3
    yb = np.full(kind.shape[0], free)
    if cfg.industry_bound is not None and np.isfinite(scale):
        yb[kind == 1] = cfg.industry_bound * scale
    if cfg.style_bound is not None and np.isfinite(scale):
        yb[kind == 2] = cfg.style_bound * scale
    return yb


def _relaxation_ladders(
    cfg: OptimizerConfig, base_tau: float
) -> dict[str, list[tuple[str, float]]]:
    """Per dimension, in relaxation order: ``[(label, value), ...]``, level 0 = configured.

    turnover: one-sided limit; te: annual TE; bounds: factor-bound scale; share: minimum
    index-member weight."""
    lad: dict[str, list[tuple[str, float]]] = {"turnover": [("", base_tau)]}
    if np.isfinite(base_tau):
        lad["turnover"] += [(f"turnover x{f:g}", base_tau * f) for f in cfg.relax_turnover]
        lad["turnover"].append(("turnover off", np.inf))
    lad["te"] = [("", cfg.te)] + [(f"te x{f:g}", cfg.te * f) for f in cfg.relax_te]
    lad["te"].append(("te off", np.inf))
    lad["bounds"] = [("", 1.0)]
    if cfg.industry_bound is not None or cfg.style_bound is not None:
        lad["bounds"] += [(f"factor bounds x{f:g}", f) for f in cfg.relax_bounds]
        lad["bounds"].append(("factor bounds off", np.inf))
    lad["share"] = [("", cfg.min_index_weight), ("index share off", 0.0)]
    return lad


def last_relaxed(level: dict[str, int]) -> str | None:
    """The last dimension (in ladder order) that is relaxed."""
    out = None
    for d, lv in level.items():
        if lv > 0:
            out = d
    return out


def infer_factor_kind(X: np.ndarray) -> np.ndarray:
    """0 for column 0 (country) and all-ones columns, 1 for 0/1 columns (industries), 2 else."""
    X = np.asarray(X)
    kind = np.full(X.shape[1], 2, dtype=np.int8)
    for j in range(X.shape[1]):
        col = X[:, j]
        if np.all(col == 1):
            kind[j] = 0
        elif np.all((col == 0) | (col == 1)):
            kind[j] = 1
    return kind

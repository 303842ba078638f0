"""Degenerate-input rules, one function per rule.

Each rule either passes quietly or raises `DataError` / `ConfigError` naming the file, date,
universe or key, so the CLI prints one line and exits 2. The stages call these functions instead
of repeating the checks, so a threshold lives in exactly one place:

=========================  ==========================================================  =========
rule                       checked where                                               error
=========================  ==========================================================  =========
`check_span`               a run's ``data.start`` / ``data.end`` against the calendar  Config/Data
`check_risk_stocks`        the risk regression's estimation universe (build)            DataError
`check_universe_size`      a universe before IC / groups (evaluation, run pre-flight)  DataError
`check_members`            index members on every rebalance date (backtest)             DataError
`finite_scores`            prediction files (backtest): refuse, or drop and count       DataError
`load_risk_dir`            a risk-model folder (risk info, backtest --risk)             DataError
=========================  ==========================================================  =========
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from deepalpha.errors import ConfigError, DataError

#: A run span needs at least this many trading days (labels, one training window).
MIN_RUN_DAYS = 20
#: Residual degrees of freedom the risk regression needs beyond its free factors on a date.
MIN_RISK_DOF = 10
#: IC needs at least this many stocks on a date (Pearson/Spearman of 3 points is the least).
MIN_IC_STOCKS = 3


def check_span(
    calendar: np.ndarray,
    start: Any = None,
    end: Any = None,
    *,
    file: str | Path | None = None,
    keys: tuple[str, str] = ("data.start", "data.end"),
    min_days: int = MIN_RUN_DAYS,
) -> int:
    """Trading days of ``calendar`` (``datetime64[D][T]``, sorted) inside ``[start, end]``.

    Raises `ConfigError` when ``start`` is after ``end`` (naming ``keys``) and `DataError` (naming
    ``file``, the span and the calendar's range) when fewer than ``min_days`` days fall inside.
    """
    cal = np.asarray(calendar, dtype="datetime64[D]")
    s = None if start is None else np.datetime64(start, "D")
    e = None if end is None else np.datetime64(end, "D")
    if s is not None and e is not None and s > e:
        raise ConfigError(f"{keys[0]} ({s}) is after {keys[1]} ({e})")
    lo = 0 if s is None else int(np.searchsorted(cal, s, "left"))
    hi = len(cal) if e is None else int(np.searchsorted(cal, e, "right"))
    n = max(hi - lo, 0)
    if n < min_days:
        have = f"{cal[0]}..{cal[-1]}" if len(cal) else "empty"
        span = f"{s or 'first day'}..{e or 'last day'}"
        raise DataError(
            f"run span {span} holds {n} trading day(s); at least {min_days} needed "
            f"(calendar {have}; set {keys[0]} / {keys[1]} inside it)",
            file=file,
        )
    return n


def check_risk_stocks(
    n_estu: np.ndarray,
    dates: np.ndarray,
    n_factors: int,
    *,
    file: str | Path | None = None,
    min_dof: int = MIN_RISK_DOF,
) -> int:
    """Refuse a risk model whose regression never has enough stocks.

    ``n_estu`` ``int[T]``: estimation-universe size on each regression date; ``n_factors`` K
    (country + industries + styles; one industry is fixed by the cap-weighted constraint, so
    K - 1 are free). A date needs ``K - 1 + min_dof`` stocks; the model needs at least one such
    date (early dates of a panel legitimately have none: the ESTU wants 252 listed days). Returns
    the number of dates that pass.
    """
    n = np.asarray(n_estu)
    need = int(n_factors) - 1 + int(min_dof)
    ok = int((n >= need).sum())
    if ok == 0:
        best = int(n.max()) if n.size else 0
        at = dates[int(n.argmax())] if n.size else None
        raise DataError(
            f"too few stocks for the risk regression: the estimation universe has at most {best} "
            f"stock(s) on any date; {n_factors} factors need at least {need} (K - 1 + {min_dof})",
            file=file,
            date=at,
        )
    return ok


def check_universe_size(
    valid: np.ndarray,
    universe: str,
    *,
    need: int,
    what: str = "IC and groups",
    file: str | Path | None = None,
) -> None:
    """Refuse a universe that never holds ``need`` usable stocks.

    ``valid`` ``bool[T, N]``: usable stock-days (in the universe, signal and label finite). Single
    dates below the minimum are NaN in the per-date series; a universe below it on *every* date
    would give an evaluation of nothing, so it raises `DataError` naming the universe.
    """
    v = np.asarray(valid, dtype=bool)
    best = int(v.sum(axis=1).max()) if v.size else 0
    if best < need:
        raise DataError(
            f"universe {universe!r} has at most {best} usable stock(s) on any date; {what} need "
            f"at least {need}",
            file=file,
        )


def check_members(
    n_members: np.ndarray,
    dates: np.ndarray,
    rebalances: np.ndarray,
    index: str,
    *,
    file: str | Path | None = None,
) -> None:
    """Every rebalance date needs index members with a price (the benchmark).

    ``n_members`` ``int[T]``: members with a price per date; ``rebalances`` ``int[R]`` signal rows.
    Raises `DataError` naming the index, the first empty rebalance date and the count.
    """
    n = np.asarray(n_members)[np.asarray(rebalances, dtype=np.int64)]
    empty = np.flatnonzero(n <= 0)
    if empty.size:
        t = int(np.asarray(rebalances)[empty[0]])
        raise DataError(
            f"{index} has no members with a price on {empty.size} of {n.size} rebalance date(s): "
            "the benchmark is empty (check the membership file)",
            file=file,
            date=dates[t],
        )


def finite_scores(
    df: pl.DataFrame, *, file: str | Path | None = None, drop: bool = False
) -> tuple[pl.DataFrame, int]:
    """Rows of a ``date, asset, score`` frame with a finite score, and how many were dropped.

    NaN / inf / -inf scores raise `DataError` naming the file, the first code and date and the
    count, unless ``drop`` (an explicit option: ``--drop-nonfinite``): then they are removed and
    counted. A file with no rows, or no finite score at all, raises either way.
    """
    if df.height == 0:
        raise DataError("the prediction file has no rows", file=file)
    bad = (~df["score"].is_finite()).fill_null(True)
    nbad = int(bad.sum())
    if nbad == 0:
        return df, 0
    if nbad == df.height:
        raise DataError(f"every one of the {nbad} scores is NaN or infinite", file=file)
    if not drop:
        row = df.filter(bad).row(0, named=True)
        raise DataError(
            f"{nbad} of {df.height} scores are NaN or infinite (e.g. {row['score']}); fix the "
            "file or pass --drop-nonfinite to drop them",
            file=file,
            code=row["asset"],
            date=row["date"],
        )
    return df.filter(~bad), nbad


def load_risk_dir(path: str | Path, **kw: Any) -> Any:
    """`deepalpha.risk.model.RiskModel.load`, with a damaged folder (unreadable ``meta.json``,
    a missing or truncated array file) as one `DataError` naming the folder instead of a
    JSON / Parquet / NumPy traceback."""
    from deepalpha.errors import DeepAlphaError
    from deepalpha.risk.model import RiskModel

    try:
        return RiskModel.load(path, **kw)
    except DeepAlphaError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError, pl.exceptions.PolarsError) as e:
        msg = str(e).splitlines()[0] if str(e) else ""
        raise DataError(
            f"damaged risk model directory ({type(e).__name__}: {msg})", file=path
        ) from None

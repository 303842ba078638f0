"""The paired-difference section of the HTML compare page (`deepalpha compare --paired BASE
--html OUT`): the same figures as the terminal and markdown tables of
`deepalpha.workflows.paired`, one summary table of RankIC differences per universe, then one
table per (signal, universe)."""

from __future__ import annotations

import polars as pl

from deepalpha.report.html import note, table
from deepalpha.workflows.paired import NOTE, fmt_value, groups, headers, table_cells

#: Columns of the summary table (after universe, signal, base).
SUMMARY = ("mean", "mean_base", "mean_diff", "win_rate", "t_nw")


def summary_rows(frame: pl.DataFrame, metric: str = "rank_ic") -> list[list[str]]:
    """One row per (universe, signal) of ``metric``: universe, signal, base, signal mean, base
    mean, diff, win, t (HAC), 95% CI, n."""
    rows = []
    for r in frame.filter(pl.col("metric") == metric).iter_rows(named=True):
        lo, hi = (
            fmt_value(metric, "ci_low", r["ci_low"]),
            fmt_value(metric, "ci_high", r["ci_high"]),
        )
        rows.append(
            [r["universe"], r["key"], r["base"]]
            + [fmt_value(metric, c, r[c]) for c in SUMMARY]
            + ["-" if lo == "-" else f"[{lo}, {hi}]", fmt_value(metric, "n", r["n"])]
        )
    return rows


def paired_section(frame: pl.DataFrame, base: str) -> tuple[str, str, str]:
    """``(id, title, body)`` of the compare page's paired section for a `paired_frame`."""
    body = note(f"Every signal minus {base}, date by date, over the dates both have. " + NOTE)
    rows = summary_rows(frame)
    if rows:
        body += table(
            ["universe", "signal", "base", "RankIC", "RankIC base", "diff", "win", "t (HAC)",
             "95% CI", "n"],
            rows,
            left=3,
            caption="RankIC: every signal against the base",
        )  # fmt: skip
    for key, b, u, grp in groups(frame):
        body += table(headers(key, b), [table_cells(r) for r in grp],
                      caption=f"{key} vs {b} — {u}")  # fmt: skip
    return ("paired", f"Paired vs {base}", body)

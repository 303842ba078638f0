"""One self-contained HTML page per run (and one comparing several runs).

The page has inline CSS, its plots as base64 PNG ``<img>`` (matplotlib, `deepalpha.report.plots`)
and no JavaScript and no external URL of any kind (no CDN, font or remote link): it opens
offline, from a mail attachment or a shared drive. Every section carries an ``id`` (``overview``,
``data``, ``models``, ``comparison``, ``pure-factor``, ``amax``, ``training``, ``per-model``,
``portfolio``, ``risk``, ``config``, ``log``) so tests and links can find it.

Public API: `write_report` (``run_dir/report.html``) and `write_compare_report`.
"""

from __future__ import annotations

import base64
import html
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepalpha.report import plots
from deepalpha.report.eval_notes import HEADLINE_NOTE, conventions_text
from deepalpha.report.load import ORACLE, PortfolioView, RiskView, RunData, load_run
from deepalpha.report.portfolio_tables import benchmark_table, cost_table
from deepalpha.report.risk_sections import portfolio_risk
from deepalpha.workflows.results import A_COLUMNS, B_COLUMNS, fmt, signal_file, table_rows

SYSTEMS = {
    "barra_ml": "System A — Barra ML factor (monthly; MLP / mHC-MLP / HC-MLP on style exposures)",
    "decompgrn": "System B — daily price-volume sequence models (GRU / RNN-LIN / DecompGRN)",
}

CSS = """
:root{--fg:#1d232a;--mut:#5f6b76;--bd:#dde2e7;--bg:#f6f8fa;--acc:#1f5f99;--neg:#b3261e;}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:var(--fg);background:#fff}
header.top{background:#15324f;color:#fff;padding:18px 28px 14px}
header.top h1{margin:0 0 4px;font-size:22px;font-weight:600}
header.top .sub{color:#c9d6e3;font-size:13px}
nav{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--bd);
 padding:6px 28px;font-size:13px;white-space:nowrap;overflow-x:auto}
nav a{color:var(--acc);text-decoration:none;margin-right:14px}
nav a:hover{text-decoration:underline}
main{max-width:980px;margin:0 auto;padding:8px 28px 40px}
section{margin:26px 0 10px;scroll-margin-top:40px}
section>h2{font-size:18px;margin:0 0 8px;padding-bottom:4px;border-bottom:2px solid var(--bd)}
h3{font-size:15px;margin:18px 0 6px}
p.note,div.note{color:var(--mut);font-size:12.5px;margin:4px 0 8px}
.kv{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:6px 18px;
 margin:6px 0 8px}
.kv div{border-left:3px solid var(--bd);padding:2px 8px}
.kv b{display:block;font-size:11px;color:var(--mut);font-weight:500;text-transform:uppercase;
 letter-spacing:.03em}
.scroll{overflow-x:auto;margin:6px 0 10px}
table{border-collapse:collapse;font-size:12.5px;font-variant-numeric:tabular-nums}
th,td{padding:4px 9px;border-bottom:1px solid var(--bd);white-space:nowrap}
th{background:var(--bg);font-weight:600;text-align:right}
th:first-child,td:first-child{text-align:left}
td{text-align:right}
td.l,th.l{text-align:left}
th.grp{text-align:center;border-bottom:2px solid var(--bd);background:#fff}
tr.oracle td{color:var(--mut);font-style:italic}
tr.best td{background:#eef6ee}
td.neg{color:var(--neg)}
caption{caption-side:top;text-align:left;font-weight:600;padding:4px 0;font-size:13px}
img.plot{display:block;max-width:100%;height:auto;margin:6px 0 14px;border:1px solid #eef0f2}
.caveats{background:#fff8e6;border:1px solid #f0d9a0;border-radius:4px;padding:8px 14px 8px 30px;
 margin:8px 0;font-size:12.5px}
.caveats li{margin:2px 0}
.warn{background:#fff8e6;border-left:4px solid #e0a800;padding:6px 12px;margin:8px 0;
 font-size:13px}
details{margin:6px 0}
summary{cursor:pointer;color:var(--acc)}
pre{background:var(--bg);border:1px solid var(--bd);padding:10px;font-size:12px;
 overflow-x:auto;max-height:480px}
article.model{border-top:1px solid var(--bd);padding-top:4px}
.tag{display:inline-block;font-size:11px;padding:1px 7px;border-radius:9px;background:#e8eef5;
 color:var(--acc);margin-left:6px;vertical-align:middle}
footer{color:var(--mut);font-size:12px;border-top:1px solid var(--bd);margin-top:30px;
 padding:12px 0}
"""

FOOTER = (
    "Plots: matplotlib, rendered to static PNG images embedded in this file (base64). "
    "Chosen over interactive plotly because the page then needs no JavaScript and no network, "
    "shows no console errors, stays small and looks the same in every browser, mail client "
    "and PDF printer."
)


# ------------------------------------------------------------------------------ formatting
def esc(x: Any) -> str:
    """HTML-escape text; ``://`` is broken so no text in the page reads as an external URL."""
    return html.escape(str(x)).replace("://", ":&#8203;//")


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def pct(v: Any, d: int = 1) -> str:
    """Percent with ``d`` decimals (``-`` when missing)."""
    return f"{100 * v:.{d}f}%" if _finite(v) else "-"


def num(v: Any, d: int = 2) -> str:
    """Plain number with ``d`` decimals and thousands separators."""
    return f"{v:,.{d}f}" if _finite(v) else "-"


def count(v: Any) -> str:
    """Whole count with thousands separators."""
    return f"{round(v):,}" if _finite(v) else "-"


def seconds(v: Any) -> str:
    """A duration in s, min or h."""
    if not _finite(v):
        return "-"
    if v < 120:
        return f"{v:.0f} s"
    return f"{v / 60:.1f} min" if v < 7200 else f"{v / 3600:.1f} h"


def slug(x: str) -> str:
    """An HTML id fragment of a key (``mhc_mlp/ic`` -> ``mhc-mlp-ic``)."""
    return re.sub(r"[^a-z0-9]+", "-", x.lower()).strip("-") or "x"


def img(fig: Any, alt: str) -> str:
    """A figure as an inline ``<img>`` (PNG, base64)."""
    data = base64.b64encode(plots.png(fig)).decode("ascii")
    return f'<img class="plot" alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    caption: str | None = None,
    row_class: Sequence[str] | None = None,
    left: int = 1,
    groups: Sequence[tuple[str, int]] | None = None,
) -> str:
    """A table of pre-formatted strings; the first ``left`` columns are left-aligned, numbers
    right-aligned, negative figures red. ``groups``: an upper header row of (label, span)."""
    rows = list(rows)
    out = ['<div class="scroll"><table>']
    if caption:
        out.append(f"<caption>{esc(caption)}</caption>")
    out.append("<thead>")
    if groups:
        out.append(
            "<tr>"
            + "".join(f'<th class="grp" colspan="{n}">{esc(g)}</th>' for g, n in groups)
            + "</tr>"
        )
    out.append(
        "<tr>"
        + "".join(f'<th class="l">{esc(h)}</th>' if i < left else f"<th>{esc(h)}</th>"
                  for i, h in enumerate(headers))
        + "</tr></thead><tbody>"
    )  # fmt: skip
    for j, r in enumerate(rows):
        cls = row_class[j] if row_class else ""
        cells = []
        for i, c in enumerate(r):
            s = str(c)
            if i < left:
                cells.append(f'<td class="l">{esc(s)}</td>')
            elif s.startswith("-") and len(s) > 1:
                cells.append(f'<td class="neg">{esc(s)}</td>')
            else:
                cells.append(f"<td>{esc(s)}</td>")
        out.append(f'<tr class="{cls}">' + "".join(cells) + "</tr>" if cls else
                   "<tr>" + "".join(cells) + "</tr>")  # fmt: skip
    out.append("</tbody></table></div>")
    return "".join(out)


def kv(items: Iterable[tuple[str, str]]) -> str:
    """A grid of label/value pairs."""
    return '<div class="kv">' + "".join(
        f"<div><b>{esc(k)}</b>{esc(v)}</div>" for k, v in items
    ) + "</div>"  # fmt: skip


def section(sid: str, title: str, body: str) -> str:
    """A ``<section>`` with its id and heading."""
    return f'<section id="{sid}"><h2>{esc(title)}</h2>{body}</section>'


def note(text: str) -> str:
    """A small grey paragraph."""
    return f'<p class="note">{esc(text)}</p>'


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole document: header, in-page navigation, sections (id, title, body), footer."""
    nav = "".join(f'<a href="#{sid}">{esc(t)}</a>' for sid, t, _ in sections)
    body = "".join(section(sid, t, b) for sid, t, b in sections)
    from deepalpha import __version__

    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f'<header class="top" id="top"><h1>{esc(title)}</h1><div class="sub">{esc(subtitle)}'
        f"</div></header><nav>{nav}</nav><main>{body}"
        f"<footer>Generated by deepalpha {esc(__version__)} on {stamp}. {esc(FOOTER)}</footer>"
        "</main></body></html>"
    )


# ------------------------------------------------------------------------------ run pieces
def _lines(run: RunData, keys: Sequence[str], universe: str, metric: str,
           label: Callable[[str], str] = str) -> list[plots.Line]:  # fmt: skip
    out = []
    for k in keys:
        s = run.get(k, universe, metric)
        if s is not None:
            out.append(plots.Line(label(k), s[0], s[1], oracle=k == ORACLE))
    return out


def overview(run: RunData) -> str:
    """Key facts of the run, the best model, problems and the caveat banner."""
    m, d = run.metrics, run.data
    keys = [k for k in run.keys if k != ORACLE]
    first = [m["models"][k].get("first_date") for k in run.keys]
    last = [m["models"][k].get("last_date") for k in run.keys]
    items = [
        ("run", run.name),
        ("system", SYSTEMS.get(run.system, run.system)),
        ("data", f"{d.get('kind', '-')}"),
        ("data period", f"{d.get('first_date', '-')} → {d.get('last_date', '-')}"),
        ("stocks / trading days", f"{count(d.get('stocks'))} / {count(d.get('days'))}"),
        ("evaluated", f"{min(filter(None, first), default='-')} → {max(filter(None, last), default='-')}"),
        ("models", ", ".join(keys) or "-"),
        ("universes", ", ".join(run.universes) or "-"),
        ("wall time", seconds(m.get("wall_seconds"))),
        ("machine", str(m.get("machine", "-"))),
    ]  # fmt: skip
    if _finite(m.get("risk_r2")):
        items.append(("risk model mean R²", pct(m["risk_r2"])))
    body = kv(items)
    if ORACLE in run.keys:
        body += note(
            "'oracle (truth)' is the signal planted in the synthetic market, the yardstick for "
            "every model (a model can beat it by also learning the market's other structure); "
            "shown in italics and as dashed black lines."
        )
    best = _best_line(run)
    if best:
        body += f"<p>{esc(best)}</p>"
    for msg in run.problems:
        body += f'<div class="warn">Could not read {esc(msg)}</div>'
    cav = run.data.get("caveats") or []
    if cav:
        first = "; ".join(c.split(":")[0] for c in cav[:3])
        body += (f'<div class="warn">{len(cav)} data caveats apply ({esc(first)}; …): '
                 'see <a href="#data">Data</a>.</div>')  # fmt: skip
    return body


def _best_line(run: RunData) -> str:
    """One sentence: the best model by RankIC in the first universe vs the oracle."""
    if not run.universes:
        return ""
    u = run.universes[0]
    rows = [r for r in table_rows(run.metrics, u) if r["model"] != ORACLE]
    rows = [r for r in rows if _finite(r.get("rank_ic"))]
    if not rows:
        return ""
    b = max(rows, key=lambda r: r["rank_ic"])
    s = f"Best model by RankIC in '{u}': {b['model']} (RankIC {fmt('rank_ic', b['rank_ic'])}"
    if _finite(b.get("rank_ic_t_nw")):
        s += f", NW t {num(b['rank_ic_t_nw'])}"
    if _finite(b.get("ls_ann_return")):
        s += f", long-short {pct(b['ls_ann_return'])} a year"
    o = run.metrics["models"].get(ORACLE, {}).get("summary", {}).get(u, {})
    if _finite(o.get("rank_ic")):
        s += f"; oracle RankIC {fmt('rank_ic', o['rank_ic'])}"
    return s + ")."


def data_section(run: RunData) -> str:
    """The data summary (data.json) and every caveat."""
    d = run.data
    items = [
        (k.replace("_", " "), count(v) if isinstance(v, int) else str(v))
        for k, v in d.items()
        if k not in ("caveats",) and not isinstance(v, dict | list)
    ]
    body = kv(items)
    cav = d.get("caveats") or []
    if cav:
        body += "<h3>Data caveats</h3><ul class=\"caveats\">" + "".join(
            f"<li>{esc(c)}</li>" for c in cav
        ) + "</ul>"  # fmt: skip
    else:
        body += note("The data summary lists no caveats.")
    return body


def headline_tables(run: RunData) -> str:
    """One headline table per universe (the terminal table's columns)."""
    cols = A_COLUMNS if run.system == "barra_ml" else B_COLUMNS
    out = []
    for u in run.universes:
        rows = table_rows(run.metrics, u)
        best = _best_key(rows)
        out.append(table(
            ["model", *[h for _, h in cols]],
            [[r["model"], *[fmt(k, r.get(k)) for k, _ in cols]] for r in rows],
            caption=f"universe: {u}",
            row_class=["oracle" if r["model"] == ORACLE else "best" if r["model"] == best else ""
                       for r in rows],
        ))  # fmt: skip
    conv = _conventions(run)
    if conv:
        out.append(note(conv))
    out.append(note(HEADLINE_NOTE))
    return "".join(out)


def _best_key(rows: Sequence[dict[str, Any]]) -> str | None:
    ok = [r for r in rows if r["model"] != ORACLE and _finite(r.get("rank_ic"))]
    return max(ok, key=lambda r: r["rank_ic"])["model"] if len(ok) > 1 else None


def _conventions(run: RunData) -> str:
    for k in run.keys:
        for u in run.universes:
            c = run.detail(k, u).get("conventions")
            if c:
                return conventions_text(c)
    return ""


def universe_matrix(run: RunData) -> str:
    """System B: model x universe matrix of the headline figures."""
    us = run.universes
    figs = (("rank_ic", "RankIC"), ("rank_icir_ann", "ICIR ann."), ("ls_ann_return", "L-S"),
            ("ls_ann_net", "L-S net"))  # fmt: skip
    heads = ["model", "params"] + [h for _ in us for _, h in figs]
    rows, cls = [], []
    for k in run.keys:
        rec = run.metrics["models"][k]
        row = [k, fmt("n_params", rec.get("n_params"))]
        for u in us:
            row += [fmt(key, rec["summary"].get(u, {}).get(key)) for key, _ in figs]
        rows.append(row)
        cls.append("oracle" if k == ORACLE else "")
    groups = [("", 2)] + [(u, len(figs)) for u in us]
    return table(heads, rows, caption="per-universe headline figures", row_class=cls,
                 groups=groups)  # fmt: skip


def comparison_section(run: RunData) -> str:
    """Models side by side: a table and one overlay figure per universe."""
    keys = run.keys
    out = []
    if run.system == "barra_ml":
        out.append(note("MLP vs mHC-MLP vs HC-MLP side by side: each model family's composite "
                        "signal (equal-weight and IC-weighted combination of the rolling windows)."))  # fmt: skip
        out.append(family_table(run))
    else:
        out.append(universe_matrix(run))
    for u in run.universes:
        out.append(img(overlay_figure(run, keys, u), f"models overlaid, universe {u}"))
    return "".join(out)


def overlay_figure(run: RunData, keys: Sequence[str], u: str,
                   label: Callable[[str], str] = str) -> Any:  # fmt: skip
    """Overlay figure of ``keys`` in universe ``u`` (labels via ``label``)."""
    top = []
    for k in keys:
        g = run.n_groups(k, u)
        if g:
            s = run.get(k, u, f"group_{g - 1}")
            top.append(plots.Line(label(k), s[0], s[1], oracle=k == ORACLE))
    ann = {}
    for k in keys:
        ar = run.detail(k, u).get("groups", {}).get("annual_return")
        if ar:
            ann[label(k)] = ar
    return plots.overlay(
        _lines(run, keys, u, "rank_ic", label),
        _lines(run, keys, u, "long_short", label),
        top,
        ann,
        title=f"universe: {u}",
    )


def family_table(run: RunData) -> str:
    """System A: one row per model family, its combinations side by side."""
    fams: dict[str, dict[str, str]] = {}
    for k in run.keys:
        if k == ORACLE or "/" not in k:
            continue
        fam, comb = k.split("/", 1)
        fams.setdefault(fam, {})[comb] = k
    combs = list(dict.fromkeys(c for f in fams.values() for c in f))
    if not fams or not run.universes:
        return ""
    u = run.universes[0]
    figs = (("rank_ic", "RankIC"), ("rank_ic_t_nw", "t NW"), ("pf_t", "PureF t"),
            ("ls_ann_return", "L-S ann."), ("ls_ann_net", "L-S net"))  # fmt: skip
    rows_by = {r["model"]: r for r in table_rows(run.metrics, u)}
    heads = ["model", "params"] + [f"{h} · {c}" for c in combs for _, h in figs]
    rows = []
    for fam, ks in fams.items():
        any_k = next(iter(ks.values()))
        row = [fam, fmt("n_params", rows_by.get(any_k, {}).get("n_params"))]
        for c in combs:
            r = rows_by.get(ks.get(c, ""), {})
            row += [fmt(key, r.get(key)) for key, _ in figs]
        rows.append(row)
    if ORACLE in rows_by:
        r = rows_by[ORACLE]
        rows.append([ORACLE, "-"] + [fmt(key, r.get(key)) for c in combs for key, _ in figs])
    return table(heads, rows, caption=f"model families side by side (universe: {u})",
                 row_class=["oracle" if r[0] == ORACLE else "" for r in rows])  # fmt: skip


def pure_factor_section(run: RunData) -> str:
    """System A: the pure factor return table and figure."""
    stats = {k: run.metrics["models"][k].get("pure_factor") or {} for k in run.keys}
    stats = {k: v for k, v in stats.items() if v}
    lines = [
        plots.Line(k, s[0], s[1], oracle=k == ORACLE)
        for k in run.keys
        if (s := run.get(k, "-", "pure_factor_returns")) is not None
    ]
    if not stats and not lines:
        return note("No pure factor returns in this run.")
    rows = [
        [k, pct(s.get("cumulative_return")), pct(s.get("annual_return")), pct(s.get("std"), 2),
         num(s.get("t_stat")), num(s.get("t_nw")), num(s.get("ir_annualised")),
         pct(s.get("win_rate"), 0), pct(s.get("max_drawdown")), count(s.get("n"))]
        for k, s in stats.items()
    ]  # fmt: skip
    body = table(
        ["model", "cumulative", "annual", "std / period", "t", "t (NW)", "IR ann.", "win rate",
         "max DD", "periods"],
        rows,
        row_class=["oracle" if k == ORACLE else "" for k in stats],
    )  # fmt: skip
    body += note("Pure factor return: the composite (orthogonalised to the styles) added to the "
                 "risk model's cross-sectional regression as an extra style; its coefficient per "
                 "period. |t| > 2 (dotted lines) is the usual significance bar.")  # fmt: skip
    return body + img(plots.pure_factor(lines, stats), "pure factor return")


def amax_section(run: RunData) -> str:
    """System A: Amax gain per epoch of HC vs mHC, or why it is missing."""
    tr = run.training
    if tr is None:
        return note("No training logs in this run directory (rolling/jobs is absent).")
    hc = {m: c for m, c in tr.amax.items() if "hc" in m.lower()} or tr.amax
    if not hc:
        models = sorted(set(tr.jobs["model"].to_list()))
        return note(
            "The mHC Amax gain was not logged by this run's training: no 'amax_gain' key in "
            f"rolling/jobs/*/train_log.jsonl (models: {', '.join(models)}; logged keys: "
            f"{', '.join(tr.log_keys) or 'none'})."
        )
    rows = []
    for m, cs in hc.items():
        last = np.array([c[-1] for c in cs if len(c)], float)
        rows.append([m, count(len(cs)), num(np.nanmedian(last), 3), num(np.nanmax(last), 3)])
    body = note("Amax gain = largest absolute row/column sum of the composite residual mapping "
                "H_res^L···H_res^1 (1 = no amplification). mHC projects each H_res onto doubly "
                "stochastic matrices (Sinkhorn), so it stays near 1; unconstrained HC may blow up.")  # fmt: skip
    body += table(["model", "jobs", "final gain (median)", "final gain (max)"], rows)
    return body + img(plots.amax_gain(hc), "Amax gain over training")


def training_section(run: RunData) -> str:
    """Parameter counts and a per-model summary of the rolling jobs."""
    params = {k: run.metrics["models"][k].get("n_params") for k in run.keys}
    tr = run.training
    if tr is None:
        rows = [[k, count(v)] for k, v in params.items() if v is not None]
        return table(["model", "params"], rows) + note("No rolling-training jobs found.")
    import polars as pl

    agg = (
        tr.jobs.group_by("model", maintain_order=True)
        .agg(
            pl.len().alias("jobs"),
            pl.col("window").n_unique().alias("windows"),
            pl.col("retrain").n_unique().alias("retrains"),
            pl.col("seed").n_unique().alias("seeds"),
            pl.col("n_params").max(),
            pl.col("best_epoch").mean(),
            pl.col("epochs").mean(),
            pl.col("best_valid_rank_ic").mean().alias("valid_ric"),
            pl.col("seconds").sum(),
        )
        .with_columns(
            pl.col("model").map_elements(_key_rank(run), return_dtype=pl.Int64).alias("o")
        )
        .sort("o", "model")
    )
    rows = [
        [r["model"], count(r["n_params"]), count(r["jobs"]), count(r["windows"]),
         count(r["retrains"]), count(r["seeds"]), num(r["best_epoch"], 1), num(r["epochs"], 1),
         fmt("rank_ic", r["valid_ric"]), seconds(r["seconds"])]
        for r in agg.iter_rows(named=True)
    ]  # fmt: skip
    body = table(
        ["model", "params", "jobs", "windows", "retrain dates", "seeds", "best epoch (mean)",
         "epochs (mean)", "valid RankIC (mean)", "train time (sum)"],
        rows,
        caption="parameter counts and rolling training",
    )  # fmt: skip
    body += note("One job = (model, window, retrain date, seed); best epoch chosen on the "
                 "validation RankIC; train time summed over jobs (they may run in parallel).")  # fmt: skip
    return body


def _key_rank(run: RunData) -> Callable[[str], int]:
    """Order of a job folder's model in the run's signal keys (``mlp`` of ``mlp/equal``)."""
    fams = list(dict.fromkeys(k.split("/")[0] for k in run.keys))
    return lambda m: fams.index(m) if m in fams else len(fams)


def per_model_section(run: RunData) -> str:
    """One article per signal with its six-to-seven panel figure."""
    if not run.universes:
        return note("No evaluated universes.")
    u = run.universes[0]
    monthly = run.system == "barra_ml"
    out = [note(f"Plots for universe '{u}' (the first evaluated); the tables above cover every "
                f"universe. Per-period = {'monthly' if monthly else 'daily'}.")]  # fmt: skip
    for k in run.keys:
        rec = run.metrics["models"][k]
        s = rec.get("summary", {}).get(u, {})
        det = run.detail(k, u)
        G = run.n_groups(k, u)
        fig = plots.model_detail(
            ic=run.get(k, u, "ic"),
            rank_ic=run.get(k, u, "rank_ic"),
            groups=[run.get(k, u, f"group_{g}") for g in range(G)],
            long_short=run.get(k, u, "long_short"),
            decay=det.get("ic_decay"),
            turnover=det.get("groups", {}).get("turnover"),
            group_annual=det.get("groups", {}).get("annual_return"),
            monthly=monthly,
            oracle=k == ORACLE,
        )
        facts = (f"RankIC {fmt('rank_ic', s.get('rank_ic'))} · IC {fmt('ic', s.get('ic'))} · "
                 f"RankIC>0 {fmt('rank_ic_win', s.get('rank_ic_win'))} · NW t "
                 f"{num(s.get('rank_ic_t_nw'))} · top {pct(s.get('top_ann_return'))} a year · "
                 f"long-short {pct(s.get('ls_ann_return'))} (net {pct(s.get('ls_ann_net'))}, "
                 f"MDD {pct(s.get('ls_max_dd'))}) · "
                 f"top turnover {pct(s.get('top_turnover'))} · {count(s.get('n_dates'))} dates"
                 f" · {rec.get('first_date', '-')} → {rec.get('last_date', '-')}")  # fmt: skip
        tag = '<span class="tag">planted</span>' if k == ORACLE else ""
        out.append(f'<article class="model" id="model-{slug(k)}"><h3>{esc(k)}{tag}</h3>'
                   f"{note(facts)}{img(fig, f'{k}: IC, groups, long-short, decay, turnover')}"
                   "</article>")  # fmt: skip
    return "".join(out)


PORTFOLIO_FIGS = (
    ("annual_return", "ann. return", pct), ("bench_annual_return", "bench ann.", pct),
    ("excess_return", "excess ann.", pct), ("tracking_error", "TE", pct),
    ("information_ratio", "IR", num), ("excess_max_drawdown", "excess MDD", pct),
    ("monthly_win_rate", "monthly win", lambda v: pct(v, 0)),
    ("turnover_annual", "turnover / yr", lambda v: pct(v, 0)), ("cost_annual", "cost / yr", pct),
)  # fmt: skip


def portfolio_section(run: RunData) -> str:
    """Index enhancement: table, NAV figure and per-year table per backtest."""
    if not run.portfolios:
        return note("No index-enhancement portfolio was run for this run (no portfolio/ folder; "
                    "enable the config's portfolio section to get NAV vs the index).")  # fmt: skip
    rows = [[_signal_key(run, p), p.index] + [f(p.metrics.get(k)) for k, _, f in PORTFOLIO_FIGS]
            for p in run.portfolios]  # fmt: skip
    out = [table(["signal", "index"] + [h for _, h, _ in PORTFOLIO_FIGS], rows, left=2,
                 caption="index enhancement, whole period")]  # fmt: skip
    for p in run.portfolios:
        out.append(f'<h3 id="portfolio-{slug(p.name)}">{esc(_signal_key(run, p))} on '
                   f"{esc(p.index or '-')}</h3>")  # fmt: skip
        bench = p.info.get("benchmark")
        if bench:
            out.append(note(f"benchmark: {bench}; risk model: {p.info.get('risk_model', '-')}"))
        out.append(benchmark_table(p) + cost_table(p))
        out.append(img(portfolio_figure(p), f"portfolio {p.name}"))
        if p.yearly is not None and p.yearly.height:
            out.append(yearly_table(p))
        out.append(portfolio_risk(p))
    return "".join(out)


def _signal_key(run: RunData, p: PortfolioView) -> str:
    """The run's signal key of a portfolio folder (``mlp__equal`` -> ``mlp/equal``)."""
    return {signal_file(k): k for k in run.keys}.get(p.key, p.key)


def portfolio_figure(p: PortfolioView) -> Any:
    """NAV vs index, excess NAV and its drawdown of one backtest."""
    nav = p.nav
    proxy = nav["proxy_nav"].to_numpy() if "proxy_nav" in nav.columns else None
    used = p.info.get("benchmark_used") or ""
    price = nav["price_nav"].to_numpy() if "price_nav" in nav.columns and used != "index" else None
    return plots.portfolio(
        nav["date"].to_numpy().astype("datetime64[D]"),
        nav["nav"].to_numpy(),
        nav["bench_nav"].to_numpy(),
        nav["excess_nav"].to_numpy(),
        proxy,
        (p.index or "index")
        + {"total_return": " (total return)", "index": " (price)"}.get(used, ""),
        price=price,
    )


def yearly_table(p: PortfolioView) -> str:
    """The per-year table of one backtest."""
    y = p.yearly
    spec = [
        ("period_return", "return", pct), ("bench_period_return", "bench", pct),
        ("excess_period_return", "excess", pct),
        ("price_excess_period_return", "excess vs price index", pct),
        ("tracking_error", "TE", pct),
        ("information_ratio", "IR", num), ("excess_max_drawdown", "excess MDD", pct),
        ("monthly_win_rate", "monthly win", lambda v: pct(v, 0)),
        ("turnover_annual", "turnover / yr", lambda v: pct(v, 0)),
        ("cost_annual", "cost / yr", pct),
    ]  # fmt: skip
    spec = [s for s in spec if s[0] in y.columns]
    rows = [[str(r.get("year", "-"))] + [f(r.get(k)) for k, _, f in spec]
            for r in y.iter_rows(named=True)]  # fmt: skip
    return table(["year"] + [h for _, h, _ in spec], rows, caption="per year")


def risk_section(run: RunData) -> str:
    """Every saved risk model (monthly, daily), or a line saying there is none."""
    if not run.risk:
        return note("No saved risk model in this run directory (risk_monthly/ or risk_daily/).")
    return "".join(risk_view(r) for r in run.risk)


def risk_view(r: RiskView) -> str:
    """R² and cumulative style returns figure plus a style summary table."""
    ppy = r.periods_per_year
    rows = []
    for j, n in enumerate(r.style_names):
        x = r.style_returns[:, j]
        x = x[np.isfinite(x)]
        t = np.abs(r.style_tstats[:, j])
        t = t[np.isfinite(t)]
        ann = float(np.prod(1 + x) ** (ppy / len(x)) - 1) if len(x) else float("nan")
        vol = float(x.std(ddof=1) * math.sqrt(ppy)) if len(x) > 1 else float("nan")
        rows.append([n, pct(ann, 2), pct(vol, 2), num(float(t.mean()) if len(t) else None),
                     pct(float((t > 2).mean()) if len(t) else None, 0)])  # fmt: skip
    r2 = r.r2[np.isfinite(r.r2)]
    head = (f"{r.freq} risk model: {len(r.dates):,} cross-sections "
            f"{r.dates[0]} → {r.dates[-1]}, mean R² {pct(float(r2.mean()) if len(r2) else None)}"
            if len(r.dates) else f"{r.freq} risk model (empty)")  # fmt: skip
    body = f'<h3 id="risk-{r.freq}">{esc(head)}</h3>'
    body += img(plots.risk_model(r.dates, r.r2, r.style_names, r.style_returns, r.freq),
                f"{r.freq} risk model")  # fmt: skip
    body += table(["style", "ann. return", "ann. vol", "mean |t|", "|t| > 2"], rows,
                  caption="style factor returns")  # fmt: skip
    return body


def text_block(text: str, what: str) -> str:
    """A collapsed <pre> block (config, log)."""
    if not text:
        return note(f"No {what} in the run directory.")
    return f"<details><summary>{esc(what)}</summary><pre>{esc(text)}</pre></details>"


# ------------------------------------------------------------------------------ pages
def render_report(run: RunData) -> str:
    """The HTML page of one run."""
    a = run.system == "barra_ml"
    secs: list[tuple[str, str, str]] = [
        ("overview", "Overview", overview(run)),
        ("models", "Headline figures", headline_tables(run)),
        ("comparison", "MLP vs mHC-MLP vs HC-MLP" if a else "Models compared",
         comparison_section(run)),
    ]  # fmt: skip
    if a:
        secs.append(("pure-factor", "Pure factor return", pure_factor_section(run)))
        secs.append(("amax", "mHC Amax gain", amax_section(run)))
    secs += [
        ("training", "Parameters and training", training_section(run)),
        ("per-model", "Per model", per_model_section(run)),
        ("portfolio", "Index enhancement", portfolio_section(run)),
        ("risk", "Risk model", risk_section(run)),
        ("data", "Data", data_section(run)),
        ("config", "Config", text_block(run.config_text, "config.yaml (resolved)")),
        ("log", "Run log", text_block(run.log_text, "run.log")),
    ]
    d = run.data
    sub = (f"{SYSTEMS.get(run.system, run.system)} · {d.get('kind', '')} · "
           f"{d.get('first_date', '')} → {d.get('last_date', '')} · {run.path}")  # fmt: skip
    return page(f"deepalpha report — {run.name}", sub, secs)


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of a finished run directory (default ``run_dir/report.html``);
    returns its path."""
    run = load_run(run_dir)
    path = Path(out) if out is not None else Path(run_dir) / "report.html"
    _write(path, render_report(run))
    return path


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# ------------------------------------------------------------------------------ compare
def _run_labels(runs: Sequence[RunData]) -> list[str]:
    """Run names, numbered where two runs share one."""
    names = [r.name for r in runs]
    if len(set(names)) == len(names):
        return names
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(f"{n} [{seen[n]}]" if names.count(n) > 1 else n)
    return out


def render_compare(runs: Sequence[RunData], extra: Sequence[tuple[str, str, str]] = ()) -> str:
    """One page with several runs' models overlaid; ``extra``: more (id, title, body) sections
    after the headline tables (the paired differences of `compare --paired --html`)."""
    labels = _run_labels(runs)
    rows = []
    for lab, r in zip(labels, runs, strict=True):
        d = r.data
        rows.append([lab, SYSTEMS.get(r.system, r.system).split(" — ")[0], str(d.get("kind", "-")),
                     f"{d.get('first_date', '-')} → {d.get('last_date', '-')}",
                     count(d.get("stocks")), str(len(r.keys)),
                     seconds(r.metrics.get("wall_seconds"))])  # fmt: skip
    runs_body = table(["run", "system", "data", "period", "stocks", "signals", "wall time"], rows,
                      left=4)  # fmt: skip
    runs_body += note("Directories: " + "; ".join(f"{lab} = {r.path}"
                                                  for lab, r in zip(labels, runs, strict=True)))  # fmt: skip
    universes = list(dict.fromkeys(u for r in runs for u in r.universes))
    secs: list[tuple[str, str, str]] = [("runs", "Runs", runs_body)]
    secs.append(("models", "Headline figures", compare_tables(runs, labels, universes)))
    secs += list(extra)
    body = note("Every signal of every run, labelled 'run · model'; dashed black = an oracle.")
    for u in universes:
        fig = compare_overlay(runs, labels, u)
        if fig is not None:
            body += img(fig, f"runs overlaid, universe {u}")
    secs.append(("comparison", "Overlaid", body))
    pf = [plots.Line(f"{lab} · {k}", s[0], s[1], oracle=k == ORACLE)
          for lab, r in zip(labels, runs, strict=True) for k in r.keys
          if (s := r.get(k, "-", "pure_factor_returns")) is not None]  # fmt: skip
    if pf:
        stats = {f"{lab} · {k}": r.metrics["models"][k].get("pure_factor") or {}
                 for lab, r in zip(labels, runs, strict=True) for k in r.keys}  # fmt: skip
        secs.append(("pure-factor", "Pure factor return",
                     img(plots.pure_factor(pf, stats), "pure factor returns")))  # fmt: skip
    r2 = [plots.Line(f"{lab} ({v.freq})", v.dates, v.r2)
          for lab, r in zip(labels, runs, strict=True) for v in r.risk]  # fmt: skip
    secs.append(("risk", "Risk model", img(plots.risk_r2_overlay(r2), "risk R2") if r2 else
                 note("None of these runs saved a risk model.")))  # fmt: skip
    secs.append(("portfolio", "Index enhancement", compare_portfolios(runs, labels)))
    return page("deepalpha comparison — " + ", ".join(labels),
                f"{len(runs)} runs overlaid", secs)  # fmt: skip


#: Columns of the compare table when System A and B runs are mixed.
MIXED = (
    ("rank_ic", "RankIC"), ("rank_icir_ann", "RankICIR ann."), ("rank_ic_win", "IC>0"),
    ("top_ann_return", "Top ann."), ("ls_ann_return", "L-S ann."), ("top_turnover", "Top TO"),
    ("pf_ann_return", "PureF ann."), ("pf_t", "PureF t"), ("n_params", "params"),
)  # fmt: skip


def compare_tables(runs: Sequence[RunData], labels: Sequence[str], universes: Sequence[str]) -> str:
    """Headline tables of every run's signals, one per universe."""
    systems = {r.system for r in runs}
    cols = (
        A_COLUMNS if systems == {"barra_ml"} else B_COLUMNS if "barra_ml" not in systems else MIXED
    )
    out = []
    for u in universes:
        rows, cls = [], []
        for lab, r in zip(labels, runs, strict=True):
            for row in table_rows(r.metrics, u):
                rows.append([lab, row["model"], *[fmt(k, row.get(k)) for k, _ in cols]])
                cls.append("oracle" if row["model"] == ORACLE else "")
        if rows:
            out.append(table(["run", "model", *[h for _, h in cols]], rows, left=2,
                             caption=f"universe: {u}", row_class=cls))  # fmt: skip
    return "".join(out) or note("No evaluated signals.")


def compare_overlay(runs: Sequence[RunData], labels: Sequence[str], u: str) -> Any:
    """Overlay figure of every run's signals in universe ``u`` (None if none)."""
    ric, ls, top, ann = [], [], [], {}
    mixed = len({r.periods_per_year for r in runs}) > 1
    for lab, r in zip(labels, runs, strict=True):
        if u not in r.universes:
            continue
        name = lambda k, lab=lab: f"{lab} · {k}"  # noqa: E731
        for ln in _lines(r, r.keys, u, "rank_ic", name):
            if mixed:  # monthly and daily series: per-year units so slopes compare
                ln.values = ln.values / r.periods_per_year
            ric.append(ln)
        ls += _lines(r, r.keys, u, "long_short", name)
        for k in r.keys:
            g = r.n_groups(k, u)
            if g:
                s = r.get(k, u, f"group_{g - 1}")
                top.append(plots.Line(name(k), s[0], s[1], oracle=k == ORACLE))
            ar = r.detail(k, u).get("groups", {}).get("annual_return")
            if ar:
                ann[name(k)] = ar
    if not (ric or ls or top):
        return None
    ylab = "cum. RankIC / periods per year" if mixed else "sum of per-period RankIC"
    return plots.overlay(ric, ls, top, ann, title=f"universe: {u}", ric_ylabel=ylab)


def compare_portfolios(runs: Sequence[RunData], labels: Sequence[str]) -> str:
    """Every run's backtests: one table and the excess NAVs overlaid."""
    items = [(lab, r, p) for lab, r in zip(labels, runs, strict=True) for p in r.portfolios]
    if not items:
        return note("No index-enhancement portfolio in any of these runs.")
    rows = [[lab, _signal_key(r, p), p.index] + [f(p.metrics.get(k)) for k, _, f in PORTFOLIO_FIGS]
            for lab, r, p in items]  # fmt: skip
    lines = [plots.Line(f"{lab} · {p.name}", p.nav["date"].to_numpy().astype("datetime64[D]"),
                        p.nav["excess_nav"].to_numpy()) for lab, _, p in items]  # fmt: skip
    return (table(["run", "signal", "index"] + [h for _, h, _ in PORTFOLIO_FIGS], rows, left=3)
            + img(plots.excess_overlay(lines), "excess NAVs"))  # fmt: skip


def write_compare_report(
    run_dirs: Sequence[str | Path], out: str | Path, extra: Sequence[tuple[str, str, str]] = ()
) -> Path:
    """Write one HTML page overlaying several runs' models (plus ``extra`` sections, see
    `render_compare`); returns its path."""
    runs = [load_run(d) for d in run_dirs]
    path = Path(out)
    _write(path, render_compare(runs, extra))
    return path

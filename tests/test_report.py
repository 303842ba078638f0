"""HTML report: every section present for both demo runs, self-contained (no external URL),
optional parts (portfolio, Amax gain) rendered when the run has them, compare overlays runs,
the `deepalpha report` command; plus fast checks of the formatting and plotting helpers."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from deepalpha.report import html as H
from deepalpha.report import plots
from deepalpha.report.load import ORACLE, load_run

COMMON = ["overview", "data", "models", "comparison", "training", "per-model", "portfolio",
          "risk", "config", "log"]  # fmt: skip
SYSTEM_A = ["pure-factor", "amax"]

# anything that would make the browser reach outside the file
EXTERNAL = re.compile(
    r"https?:|//cdn|<link\b|<script\b|@import|url\(|\bsrc=\"(?!data:image/png;base64,)"
    r"|\bhref=\"(?!#)",
    re.IGNORECASE,
)


def section_ids(text: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)"', text)


def images(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', text)]


def assert_self_contained(text: str) -> None:
    hits = EXTERNAL.findall(text)
    assert not hits, f"external references in the report: {hits[:5]}"


def assert_png_not_blank(data: bytes) -> None:
    from PIL import Image

    im = np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=float)
    assert im.shape[0] > 100 and im.shape[1] > 400
    assert im.std() > 5.0, "plot image is (nearly) blank"


# ------------------------------------------------------------------------------ fast helpers
def test_formatting_helpers():
    assert H.pct(0.12345) == "12.3%"
    assert H.pct(-0.0051, 2) == "-0.51%"
    assert H.pct(float("nan")) == "-" and H.pct(None) == "-"
    assert H.count(1234567.0) == "1,234,567"
    assert H.num(1.23456) == "1.23"
    assert H.seconds(90) == "90 s" and H.seconds(600) == "10.0 min"
    assert H.slug("mhc_mlp/ic") == "mhc-mlp-ic" and H.slug(ORACLE) == "oracle-truth"


def test_escape_breaks_urls_and_markup():
    s = H.esc('<b>see https://example.com & "x"</b>')
    assert "<b>" not in s and "https://" not in s and "&amp;" in s


def test_table_marks_negative_numbers_and_escapes():
    t = H.table(["model", "ret"], [["<m>", "-1.0%"], ["b", "2.0%"], ["c", "-"]])
    assert t.count('class="neg"') == 1
    assert "&lt;m&gt;" in t


def test_model_detail_plot_renders():
    rng = np.random.default_rng(0)
    d = np.arange("2019-01", "2021-01", dtype="datetime64[M]").astype("datetime64[D]")
    s = (d, rng.normal(0.05, 0.1, len(d)))
    groups = [(d, rng.normal(0.002 * g, 0.05, len(d))) for g in range(5)]
    fig = plots.model_detail(
        ic=s, rank_ic=s, groups=groups, long_short=groups[-1], decay={"1": 0.05, "5": 0.02},
        turnover=[0.3, 0.2, 0.2, 0.2, 0.35], monthly=True,
    )  # fmt: skip
    data = plots.png(fig)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"matplotlib.org" not in data  # no software/URL metadata
    assert_png_not_blank(data)


def test_monthly_mean_and_nav_helpers():
    d = np.array(["2020-01-02", "2020-01-03", "2020-02-03"], dtype="datetime64[D]")
    months, m = plots.monthly_mean(d, np.array([0.1, np.nan, 0.3]))
    assert months.tolist() == list(np.array(["2020-01-01", "2020-02-01"], "datetime64[D]"))
    np.testing.assert_allclose(m, [0.1, 0.3])
    np.testing.assert_allclose(plots.nav(np.array([0.1, np.nan, -0.5])), [1.1, 1.1, 0.55])
    np.testing.assert_allclose(
        plots.rolling_mean(np.array([1.0, np.nan, 3.0, 5.0, 7.0]), 2), [1, 1, 3, 4, 6]
    )
    np.testing.assert_allclose(plots.drawdown(np.array([1.0, 2.0, 1.0, 3.0])), [0, 0, -0.5, 0])


# ------------------------------------------------------------------------------ demo runs
@pytest.fixture(scope="module")
def reports(demo_runs, tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("reports")
    res = {}
    for name in ("demo_barra", "demo_decompgrn"):
        path = H.write_report(demo_runs[name], out / f"{name}.html")
        assert path == out / f"{name}.html"
        res[name] = path.read_text()
    return res


@pytest.mark.slow
@pytest.mark.parametrize("name", ["demo_barra", "demo_decompgrn"])
def test_demo_report_has_every_section(reports, demo_runs, name):
    text = reports[name]
    ids = section_ids(text)
    want = COMMON + (SYSTEM_A if name == "demo_barra" else [])
    assert set(want) <= set(ids), f"missing sections: {set(want) - set(ids)}"
    if name == "demo_decompgrn":
        assert not set(SYSTEM_A) & set(ids)
    run = load_run(demo_runs[name])
    for key in run.keys:  # one article with plots per model, the oracle included
        assert f'id="model-{H.slug(key)}"' in text
    assert ORACLE in run.keys and "planted" in text
    for cav in run.data["caveats"]:  # the data caveats are shown
        assert H.esc(cav) in text
    imgs = images(text)
    assert len(imgs) >= len(run.keys) + 2
    for data in imgs[:3]:
        assert_png_not_blank(data)
    assert_self_contained(text)
    assert len(text) < 4_000_000


@pytest.mark.slow
def test_system_a_specific_content(reports):
    text = reports["demo_barra"]
    for fam in ("mlp", "mhc_mlp", "hc_mlp"):
        assert f">{fam}<" in text  # the side-by-side family table
    assert "Pure factor return" in text and "t (NW)" in text
    risk = text[text.index('<section id="risk"') :]
    assert "monthly risk model" in risk and "<img" in risk
    # Amax gain: either plotted or an explicit 'not logged' line
    amax = text[text.index('<section id="amax"') : text.index('<section id="training"')]
    assert "<img" in amax or "was not logged" in amax


@pytest.mark.slow
def test_system_b_specific_content(reports, demo_runs):
    text = reports["demo_decompgrn"]
    assert "per-universe headline figures" in text
    for key in load_run(demo_runs["demo_decompgrn"]).keys:
        if key != ORACLE:
            assert f">{key}<" in text
    port = text[text.index('<section id="portfolio"') : text.index('<section id="risk"')]
    if (demo_runs["demo_decompgrn"] / "portfolio").is_dir():
        assert "<img" in port and "per year" in port
    else:
        assert "No index-enhancement portfolio was run" in port


@pytest.mark.slow
def test_report_numbers_match_metrics(reports, demo_runs):
    from deepalpha.workflows.results import fmt

    m = json.loads((demo_runs["demo_barra"] / "metrics.json").read_text())
    key = next(k for k in m["models"] if k != ORACLE)
    u = next(iter(m["models"][key]["summary"]))
    ric = m["models"][key]["summary"][u]["rank_ic"]
    assert f"<td>{fmt('rank_ic', ric)}</td>" in reports["demo_barra"] or (
        f'<td class="neg">{fmt("rank_ic", ric)}</td>' in reports["demo_barra"]
    )


def _with_extras(src: Path, dst: Path) -> Path:
    """A copy of a System A run with logged Amax gains and a fabricated portfolio folder."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("model.pt", "predictions.parquet"))
    for log in dst.glob("rolling/jobs/*hc_mlp/*/*/*/train_log.jsonl"):
        recs = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
        grow = 3.0 if log.parts[-5] == "hc_mlp" else 1.0
        for i, r in enumerate(recs):
            r["amax_gain"] = 1.0 + 0.01 * i if grow == 1.0 else grow ** (i + 1)
        log.write_text("".join(json.dumps(r) + "\n" for r in recs))
    d = np.arange("2020-01-01", "2021-06-30", dtype="datetime64[D]")
    rng = np.random.default_rng(1)
    bench = np.cumprod(1 + rng.normal(0.0002, 0.01, len(d)))
    nav = bench * np.cumprod(1 + rng.normal(0.0003, 0.003, len(d)))
    p = dst / "portfolio" / "mlp__equal__csi500"
    p.mkdir(parents=True)
    pl.DataFrame({"date": d, "nav": nav, "bench_nav": bench, "excess_nav": nav / bench,
                  "proxy_nav": np.nan}).write_parquet(p / "nav.parquet")  # fmt: skip
    pl.DataFrame({"year": ["2020", "2021", "all"], "period_return": [0.1, -0.02, 0.08],
                  "excess_period_return": [0.05, 0.01, 0.06], "tracking_error": [0.04] * 3,
                  "information_ratio": [1.2, 0.3, 1.0]}).write_csv(p / "yearly.csv")  # fmt: skip
    meta = {"metrics": {"excess_return": 0.051, "tracking_error": 0.042,
                        "information_ratio": 1.21, "excess_max_drawdown": 0.031},
            "info": {"benchmark": "csi500 close", "risk_model": "test"}}  # fmt: skip
    (p / "metrics.json").write_text(json.dumps(meta))
    (dst / "risk_daily").mkdir()
    (dst / "risk_daily" / "meta.json").write_text('{"format_version": -1}')  # damaged
    return dst


@pytest.mark.slow
def test_report_shows_amax_gain_and_portfolio_when_present(demo_runs, tmp_path):
    run_dir = _with_extras(demo_runs["demo_barra"], tmp_path / "run")
    run = load_run(run_dir)
    assert set(run.training.amax) == {"hc_mlp", "mhc_mlp"}
    text = H.write_report(run_dir).read_text()
    amax = text[text.index('<section id="amax"') : text.index('<section id="training"')]
    assert "<img" in amax and "hc_mlp" in amax and "mhc_mlp" in amax
    port = text[text.index('<section id="portfolio"') : text.index('<section id="risk"')]
    assert "mlp/equal" in port and "csi500" in port and "<img" in port
    assert "5.1%" in port and "1.21" in port  # excess return, IR
    assert ">2021<" in port and "-2.0%" in port  # per-year table
    # a damaged optional part is reported, not fatal
    assert "Could not read risk_daily/" in text and "monthly risk model" in text
    # the compare page overlays the portfolios it finds
    cmp = H.write_compare_report([run_dir, demo_runs["demo_barra"]], tmp_path / "c.html")
    text = cmp.read_text()
    port = text[text.index('<section id="portfolio"') :]
    assert '<td class="l">mlp/equal</td>' in port and "<img" in port
    assert_self_contained(text)
    assert_self_contained(text)


@pytest.mark.slow
def test_compare_report_overlays_runs(demo_runs, tmp_path):
    dirs = [demo_runs["demo_barra"], demo_runs["demo_decompgrn"]]
    out = H.write_compare_report(dirs, tmp_path / "cmp" / "compare.html")
    text = out.read_text()
    assert {"runs", "models", "comparison", "risk", "portfolio"} <= set(section_ids(text))
    for d in dirs:
        run = load_run(d)
        assert f'<td class="l">{run.name}</td>' in text
        for key in run.keys:
            assert f'<td class="l">{H.esc(key)}</td>' in text
    comp = text[text.index('<section id="comparison"') :]
    assert "<img" in comp
    assert_self_contained(text)
    # two runs of the same system overlay too, labelled apart
    text2 = H.write_compare_report([dirs[0], dirs[0]], tmp_path / "same.html").read_text()
    assert '<td class="l">demo_barra [1]</td>' in text2
    assert '<td class="l">demo_barra [2]</td>' in text2


@pytest.mark.slow
def test_cli_report_command(demo_runs, tmp_path):
    import typer
    from typer.testing import CliRunner

    from deepalpha.cli.report import register
    from deepalpha.errors import DataError

    app = typer.Typer()
    register(app)

    @app.command()
    def other() -> None:  # a second command so typer keeps 'report' as a subcommand
        pass

    out = tmp_path / "r.html"
    res = CliRunner().invoke(app, ["report", str(demo_runs["demo_decompgrn"]), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.is_file() and "report:" in res.output
    res = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert isinstance(res.exception, DataError)

"""Qlib side by side: Qlib's GRU on its Alpha360 handler vs deepalpha's GRU, one epoch, CSI 300.

What it does (nothing is installed by the script):

1. loads the real A-share data with `deepalpha.data.cn.load_cn` and writes it in Qlib's layout
   with `deepalpha.data.qlib_bin` (``calendars/day.txt``, ``instruments/all.txt``,
   ``instruments/csi300.txt`` from the point-in-time CSI 300 mask, which is
   ``index_membership/csi300.txt`` intersected with listed stocks, and
   ``features/<code>/{open,high,low,close,volume,vwap,factor}.day.bin``) into ``--work`` (default:
   a temporary folder, removed afterwards). The ``prices/`` folder of ``../shared/data/cn`` is
   itself readable by Qlib (same calendar, ``all.txt`` and lower-case ``.day.bin`` layout), but it
   has no ``$vwap`` (Alpha360 uses 60 days of it; Qlib would fill NaN -> 0) and no
   ``instruments/csi300.txt``, and the folder is read-only, hence the copy. ``vwap`` is
   deepalpha's proxy, the typical price (H+L+C)/3 (the data has no traded amount), on both sides;
2. in one subprocess runs Qlib's own ``qlib.contrib.model.pytorch_gru.GRU`` with the settings of
   Qlib's ``examples/benchmarks/GRU/workflow_config_gru_Alpha360.yaml`` (d_feat 6, hidden 64,
   2 layers, dropout 0, lr 1e-3, batch 800, loss mse, Adam; processors RobustZScoreNorm + Fillna
   on the features, DropnaLabel + CSRankNorm on the label ``Ref($close, -2)/Ref($close, -1) - 1``)
   on the ``Alpha360`` handler for ONE epoch (``n_epochs=1``), train and valid segments below;
3. in another subprocess runs deepalpha's GRU (``build_model("gru", 6)``, the same architecture)
   through deepalpha's trainer (`deepalpha.train.trainer.fit` on a
   `deepalpha.train.datasets.SequenceDataset`: 60-day windows of open, high, low, close, vwap,
   volume, label = the same 1-day return from the t+1 close (``horizon=1``), universe = the same
   point-in-time CSI 300 mask, loss mse, lr 1e-3) for one epoch on the same dates;
4. prints, side by side, the data build time, the train-epoch time, stock-days (rows) per
   second, peak RSS (each side in its own subprocess: ``os.wait4`` rusage of that child and a
   0.2 s sampled sum over its process tree), threads, the ratios ours/Qlib, and the load average.

How the two designs differ (printed too): Qlib computes all 360 features of every row up front in
the handler (build time) and then samples 800 random stock-days per step from the whole train
segment; deepalpha builds each date's Alpha360 block on the fly inside the epoch and takes whole
dates' cross-sections per step: ``--dates-per-step 3`` (default) stacks three dates (~850 CSI 300
stocks, each date's loss apart, ``TrainConfig.dates_per_step``), close to Qlib's 800 rows;
``--dates-per-step 1`` is one date (~280 stocks) a step. Qlib z-scores each feature column with the median/MAD of the train segment;
deepalpha per date. Qlib keeps suspended days (volume 0) and fills missing features with 0;
deepalpha drops suspended stocks and windows under 90 % finite. Qlib clips gradients by value
(3.0), deepalpha by global norm (1.0). Qlib's ``fit`` also scores the train set after the epoch.
Compare "build + train epoch" for the end-to-end cost.

Install Qlib into a SEPARATE venv (never into the project's environment; install torch first so
pip takes the local CPU wheel and never pulls a CUDA build)::

    python -m venv /path/qlibenv && /path/qlibenv/bin/pip install torch==2.13.0 \
        && /path/qlibenv/bin/pip install pyqlib && /path/qlibenv/bin/pip install -e /work/main
    nice -n 5 /path/qlibenv/bin/python benchmarks/bench_vs_qlib.py            # real data
    /path/qlibenv/bin/python benchmarks/bench_vs_qlib.py --train-start 2020-01-01 \
        --train-end 2020-06-30 --valid-start 2020-07-01 --valid-end 2020-09-30   # quick look

Without qlib importable the script prints one line saying how to install it and exits 0.
CPU heavy (Qlib's handler on CSI 300 2017-2021 computes ~370k rows x 360 features): run it alone,
under ``nice``; timings on a shared machine are noisy, the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
INSTALL = (
    "python -m venv /path/qlibenv && /path/qlibenv/bin/pip install torch==2.13.0 && "
    "/path/qlibenv/bin/pip install pyqlib && /path/qlibenv/bin/pip install -e "
    f"{REPO}, then run /path/qlibenv/bin/python benchmarks/bench_vs_qlib.py"
)
QLIB_FIELDS = ("open", "high", "low", "close", "volume", "vwap", "factor")
SEQ_LEN = 60
EXPORT_VERSION = 1  # bump when the exported layout changes (a kept --work folder is rewritten)


def load1() -> float:
    return os.getloadavg()[0]


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ------------------------------------------------------------------------------ data windows
def data_window(args) -> tuple[np.datetime64, np.datetime64]:
    """Calendar span to load: enough history before the train start for a 60-day window (and
    Qlib's Ref($x, 59)), enough after the valid end for the 1-day label from the t+1 close."""
    lo = np.datetime64(args.train_start, "D") - np.timedelta64(200, "D")
    hi = np.datetime64(args.valid_end, "D") + np.timedelta64(30, "D")
    return lo, hi


def mask_spells(mask: np.ndarray, dates: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True in a bool[T] column -> inclusive (first, last) date indices."""
    m = np.r_[False, mask, False].astype(np.int8)
    d = np.diff(m)
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def export_qlib(args, out: Path) -> dict:
    """Write the CSI 300 stocks of the window in Qlib's layout (see the module docstring)."""
    from deepalpha.data.cn import load_cn
    from deepalpha.data.qlib_bin import write_bin, write_calendar, write_instruments

    stamp = out / "bench_vs_qlib.json"
    key = {
        "version": EXPORT_VERSION,
        "data": str(Path(args.data).resolve()),
        "train_start": args.train_start,
        "valid_end": args.valid_end,
    }
    if stamp.is_file() and json.loads(stamp.read_text()).get("key") == key:
        info = json.loads(stamp.read_text())
        info["reused"] = True
        return info
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    lo, hi = data_window(args)
    panel = load_cn(args.data, fields=list(QLIB_FIELDS), start=lo, end=hi)
    dates = panel.dates
    uni = panel.mask("csi300")
    inside = (dates >= np.datetime64(args.train_start, "D")) & (
        dates <= np.datetime64(args.valid_end, "D")
    )
    cols = np.flatnonzero(uni[inside].any(axis=0))
    write_calendar(out, dates)
    close = panel.field("close")
    all_rows, csi_rows = [], []
    for n in cols.tolist():
        code = str(panel.assets[n])
        ok = np.flatnonzero(np.isfinite(close[:, n]))
        if ok.size == 0:
            continue
        a, b = int(ok[0]), int(ok[-1])
        for f in QLIB_FIELDS:
            write_bin(
                out / "features" / code.lower() / f"{f}.day.bin", a, panel.field(f)[a : b + 1, n]
            )
        all_rows.append((code, dates[a], dates[b]))
        csi_rows += [(code, dates[s], dates[e]) for s, e in mask_spells(uni[:, n], dates)]
    write_instruments(out, all_rows, "all")
    write_instruments(out, csi_rows, "csi300")
    info = {
        "key": key,
        "stocks": len(all_rows),
        "spells": len(csi_rows),
        "dates": [str(dates[0]), str(dates[-1])],
        "seconds": time.perf_counter() - t0,
        "reused": False,
    }
    stamp.write_text(json.dumps(info))
    return info


# ------------------------------------------------------------------------------ the two sides
def _set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def _rss_gb() -> tuple[float, float]:
    import resource

    s = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    c = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    return s, c


def side_qlib(args, work: Path) -> dict:
    import logging

    import qlib
    import torch
    from qlib.constant import REG_CN

    _set_threads(args.threads)
    work = work.resolve()
    # Qlib's experiment manager takes its file lock at the URI's path with the leading "/"
    # stripped, i.e. relative to the working directory: from "/" that is the URI's own folder
    # (otherwise it leaves an empty ./tmp/.../mlruns in the caller's folder)
    os.chdir("/")
    qlib.init(
        provider_uri=str(work / "qlib"),
        region=REG_CN,
        kernels=args.threads,
        logging_level=logging.WARNING,
        exp_manager={
            "class": "MLflowExpManager",
            "module_path": "qlib.workflow.expm",
            "kwargs": {"uri": (work / "mlruns").resolve().as_uri(), "default_exp_name": "bench"},
        },
    )
    from qlib.contrib.data.handler import Alpha360
    from qlib.contrib.model.pytorch_gru import GRU
    from qlib.data.dataset import DatasetH
    from qlib.workflow import R

    load0 = load1()
    t0 = time.perf_counter()
    handler = Alpha360(
        instruments="csi300",
        start_time=args.train_start,
        end_time=args.valid_end,
        fit_start_time=args.train_start,
        fit_end_time=args.train_end,
        infer_processors=[
            {
                "class": "RobustZScoreNorm",
                "kwargs": {"fields_group": "feature", "clip_outlier": True},
            },
            {"class": "Fillna", "kwargs": {"fields_group": "feature"}},
        ],
        learn_processors=[
            {"class": "DropnaLabel"},
            {"class": "CSRankNorm", "kwargs": {"fields_group": "label"}},
        ],
    )
    dataset = DatasetH(
        handler,
        segments={
            "train": (args.train_start, args.train_end),
            "valid": (args.valid_start, args.valid_end),
        },
    )
    build_s = time.perf_counter() - t0
    load_build = load1()
    rss_build = _rss_gb()
    print(f"[qlib] handler + dataset built in {build_s:.1f} s", file=sys.stderr, flush=True)

    model = GRU(
        d_feat=6,
        hidden_size=64,
        num_layers=2,
        dropout=0.0,
        n_epochs=1,
        lr=1e-3,
        early_stop=20,
        batch_size=args.batch,
        metric="loss",
        loss="mse",
        GPU=-1,  # CPU
        seed=args.seed,
    )
    # Time Qlib's own epoch methods from outside (fit calls self.train_epoch / self.test_epoch).
    timing = {"train_s": 0.0, "eval_s": 0.0, "rows": 0, "rows_in": 0, "eval_rows": 0}
    train_epoch, test_epoch = model.train_epoch, model.test_epoch

    def timed_train(x, y):
        t = time.perf_counter()
        train_epoch(x, y)
        timing["train_s"] += time.perf_counter() - t
        timing["rows_in"] = len(x)
        timing["rows"] = len(x) // args.batch * args.batch  # the last partial batch is skipped

    def timed_test(x, y):
        t = time.perf_counter()
        r = test_epoch(x, y)
        timing["eval_s"] += time.perf_counter() - t
        timing["eval_rows"] += len(x)
        return r

    model.train_epoch, model.test_epoch = timed_train, timed_test
    t1 = time.perf_counter()
    with R.start(experiment_name="bench_vs_qlib"):
        model.fit(dataset)
    fit_s = time.perf_counter() - t1
    return {
        "side": "qlib",
        "version": qlib.__version__,
        "torch": torch.__version__,
        "build_s": build_s,
        "epoch_s": timing["train_s"],
        "eval_s": timing["eval_s"],
        "eval_what": "train + valid (Qlib fit scores both)",
        "prepare_s": fit_s - timing["train_s"] - timing["eval_s"],
        "rows": timing["rows"],
        "rows_available": timing["rows_in"],
        "steps": timing["rows"] // args.batch,
        "torch_threads": torch.get_num_threads(),
        "workers": args.threads,
        "workers_what": "qlib kernels (joblib processes for the expressions)",
        "rss_after_build_gb": rss_build[0],
        "load_start": load0,
        "load_build": load_build,
        "load_end": load1(),
    }


def side_ours(args, work: Path) -> dict:
    import torch

    from deepalpha.data.cn import load_cn
    from deepalpha.train.datasets import SequenceDataset
    from deepalpha.train.trainer import TrainConfig, evaluate, fit, make_model

    _set_threads(args.threads)
    load0 = load1()
    lo, hi = data_window(args)
    t0 = time.perf_counter()
    # cache=False: build from the files, as Qlib does (the loader's panel cache would hide it)
    panel = load_cn(
        args.data, fields=["open", "high", "low", "close", "volume", "vwap"], start=lo, end=hi,
        cache=False,
    )  # fmt: skip
    ds = SequenceDataset(
        panel, window=SEQ_LEN, horizon=1, universe="csi300", tradable=None, cap_field=None
    )
    d = ds.dates
    s = ds.sample_dates()
    tr = s[
        (d[s] >= np.datetime64(args.train_start, "D"))
        & (d[s] <= np.datetime64(args.train_end, "D"))
    ]
    va = s[
        (d[s] >= np.datetime64(args.valid_start, "D"))
        & (d[s] <= np.datetime64(args.valid_end, "D"))
    ]
    build_s = time.perf_counter() - t0
    load_build = load1()
    rss_build = _rss_gb()
    print(f"[ours] panel + dataset built in {build_s:.1f} s", file=sys.stderr, flush=True)

    model = make_model("gru", ds.n_features, seed=args.seed)  # registry build_model("gru", 6)
    cfg = TrainConfig(
        max_epochs=1,
        lr=1e-3,
        loss="mse",
        seed=args.seed,
        device="cpu",
        progress=False,
        num_threads=args.threads,
        cache_mb=0,  # one epoch visits each date once: a cache cannot help
        dates_per_step=args.dates_per_step,  # ~3 CSI 300 dates = Qlib's 800 rows a step
    )
    res = fit(model, ds, tr, None, cfg)  # no valid dates: the epoch alone
    epoch_s = res.history[0]["seconds"]
    t1 = time.perf_counter()
    m = evaluate(model, ds, va, loss="mse", device="cpu")
    eval_s = time.perf_counter() - t1
    rows = int(res.history[0]["train_stock_days"])
    steps = int(res.history[0]["train_steps"])
    return {
        "side": "ours",
        "torch": torch.__version__,
        "build_s": build_s,
        "epoch_s": epoch_s,
        "eval_s": eval_s,
        "eval_what": "valid",
        "prepare_s": 0.0,
        "rows": rows,
        "rows_available": rows,
        "steps": steps,
        "train_dates": len(tr),
        "valid_rank_ic": m["rank_ic"],
        "torch_threads": torch.get_num_threads(),
        "workers": 1,
        "workers_what": "one process",
        "rss_after_build_gb": rss_build[0],
        "load_start": load0,
        "load_build": load_build,
        "load_end": load1(),
    }


# ------------------------------------------------------------------------------ measurement
class TreeSampler(threading.Thread):
    """Samples the summed RSS and thread count of a process tree from /proc every ``dt`` s."""

    def __init__(self, pid: int, dt: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.dt = pid, dt
        self.peak_rss = 0
        self.peak_threads = 0
        self.peak_procs = 0
        self.stop = threading.Event()
        self.page = os.sysconf("SC_PAGE_SIZE")

    def _sample(self) -> None:
        stats: dict[int, tuple[int, int, int]] = {}
        for e in os.scandir("/proc"):
            if not e.name.isdigit():
                continue
            try:
                with open(f"/proc/{e.name}/stat", "rb") as fh:
                    raw = fh.read()
            except OSError:
                continue
            f = raw[raw.rfind(b")") + 2 :].split()
            stats[int(e.name)] = (int(f[1]), int(f[17]), int(f[21]))  # ppid, threads, rss pages
        tree, todo = set(), [self.pid]
        kids: dict[int, list[int]] = {}
        for p, (pp, _, _) in stats.items():
            kids.setdefault(pp, []).append(p)
        while todo:
            p = todo.pop()
            if p in stats and p not in tree:
                tree.add(p)
                todo += kids.get(p, [])
        rss = sum(stats[p][2] for p in tree) * self.page
        thr = sum(stats[p][1] for p in tree)
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_threads = max(self.peak_threads, thr)
        self.peak_procs = max(self.peak_procs, len(tree))

    def run(self) -> None:
        while not self.stop.is_set():
            self._sample()
            self.stop.wait(self.dt)


def run_side(name: str, args, work: Path) -> dict:
    out = work / f"{name}.json"
    log = work / f"{name}.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--work", str(work)]
    for k in ("data", "train_start", "train_end", "valid_start", "valid_end", "threads",
              "batch", "seed", "dates_per_step"):  # fmt: skip
        cmd += [f"--{k.replace('_', '-')}", str(getattr(args, k))]
    env = dict(os.environ)
    for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[v] = str(args.threads)
    # Qlib's recorder keeps mlflow runs in a folder; mlflow >= 3.x wants this opt-in for that
    env.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    print(f"[{name}] running (log {log}); load average {loadavg()}", flush=True)
    t0 = time.perf_counter()
    with log.open("w") as fh:
        p = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        sampler = TreeSampler(p.pid)
        sampler.start()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop.set()
        sampler.join()
    wall = time.perf_counter() - t0
    if p.returncode != 0 or not out.is_file():
        tail = log.read_text().splitlines()[-40:]
        sys.exit(f"[{name}] failed (exit {p.returncode}); last lines of {log}:\n" + "\n".join(tail))
    res = json.loads(out.read_text())
    res.update(
        wall_s=wall,
        peak_rss_gb=ru.ru_maxrss / 2**20,
        tree_rss_gb=sampler.peak_rss / 2**30,
        peak_threads=sampler.peak_threads,
        peak_procs=sampler.peak_procs,
    )
    out.write_text(json.dumps(res))  # the full record, so --qlib-result can reuse it
    print(f"[{name}] done in {wall:.0f} s; load average {loadavg()}", flush=True)
    return res


def table(q: dict, o: dict) -> str:
    def ratio(a, b):
        return f"{a / b:.2f}" if b else "-"

    q_rps, o_rps = q["rows"] / q["epoch_s"], o["rows"] / o["epoch_s"]
    q_e2e, o_e2e = q["build_s"] + q["epoch_s"], o["build_s"] + o["epoch_s"]
    rows = [
        ("data build: handler / dataset (s)", f"{q['build_s']:.1f}", f"{o['build_s']:.1f}",
         ratio(o["build_s"], q["build_s"])),
        ("train epoch (s)", f"{q['epoch_s']:.1f}", f"{o['epoch_s']:.1f}",
         ratio(o["epoch_s"], q["epoch_s"])),
        ("build + train epoch (s)", f"{q_e2e:.1f}", f"{o_e2e:.1f}", ratio(o_e2e, q_e2e)),
        ("rows (stock-days) trained", f"{q['rows']:,}", f"{o['rows']:,}", ratio(o["rows"], q["rows"])),
        ("optimizer steps", f"{q['steps']:,}", f"{o['steps']:,}", ratio(o["steps"], q["steps"])),
        ("rows per step (mean)", f"{q['rows'] / max(q['steps'], 1):.0f}",
         f"{o['rows'] / max(o['steps'], 1):.0f}", "-"),
        ("rows / s in the train epoch", f"{q_rps:,.0f}", f"{o_rps:,.0f}", ratio(o_rps, q_rps)),
        ("eval after the epoch (s)", f"{q['eval_s']:.1f}", f"{o['eval_s']:.1f}", "-"),
        ("  what is scored", "train+valid", "valid", ""),
        ("peak RSS, largest process (GB)", f"{q['peak_rss_gb']:.2f}", f"{o['peak_rss_gb']:.2f}",
         ratio(o["peak_rss_gb"], q["peak_rss_gb"])),
        ("peak RSS, process tree sum (GB)", f"{q['tree_rss_gb']:.2f}", f"{o['tree_rss_gb']:.2f}",
         ratio(o["tree_rss_gb"], q["tree_rss_gb"])),
        ("RSS after data build (GB)", f"{q['rss_after_build_gb']:.2f}",
         f"{o['rss_after_build_gb']:.2f}", ratio(o["rss_after_build_gb"], q["rss_after_build_gb"])),
        ("torch intra-op threads", str(q["torch_threads"]), str(o["torch_threads"]), ""),
        ("worker processes (data build)", str(q["workers"]), str(o["workers"]), ""),
        ("peak OS threads / processes in tree", f"{q['peak_threads']} / {q['peak_procs']}",
         f"{o['peak_threads']} / {o['peak_procs']}", ""),
        ("subprocess wall time (s)", f"{q['wall_s']:.0f}", f"{o['wall_s']:.0f}",
         ratio(o["wall_s"], q["wall_s"])),
        ("load avg 1-min: start / after build / end",
         f"{q['load_start']:.2f}/{q['load_build']:.2f}/{q['load_end']:.2f}",
         f"{o['load_start']:.2f}/{o['load_build']:.2f}/{o['load_end']:.2f}", ""),
    ]  # fmt: skip
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows + [("", "Qlib")])
    w2 = max(len(r[2]) for r in rows + [("", "", "deepalpha")])
    head = f"{'':{w0}}  {'Qlib':>{w1}}  {'deepalpha':>{w2}}  ours/Qlib"
    lines = [head, "-" * len(head)]
    lines += [f"{a:{w0}}  {b:>{w1}}  {c:>{w2}}  {d:>9}".rstrip() for a, b, c, d in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "cn"))
    ap.add_argument("--work", default=None, help="keep the Qlib folder, logs and results here")
    ap.add_argument("--train-start", default="2017-01-01")
    ap.add_argument("--train-end", default="2020-12-31")
    ap.add_argument("--valid-start", default="2021-01-01")
    ap.add_argument("--valid-end", default="2021-12-31")
    ap.add_argument("--threads", type=int, default=2, help="torch threads and Qlib kernels")
    ap.add_argument("--batch", type=int, default=800, help="Qlib's rows per step (its yaml: 800)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--qlib-result",
        default=None,
        help="reuse the Qlib side's qlib.json of an earlier run (same dates) instead of rerunning "
        "Qlib (about 9 min); the table then says so",
    )
    ap.add_argument(
        "--dates-per-step",
        type=int,
        default=3,
        help="our dates per optimiser step (3 CSI 300 dates: about Qlib's 800 rows; 1: one date)",
    )
    ap.add_argument("--child", choices=["qlib", "ours"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if importlib.util.find_spec("qlib") is None:
        print(f"bench_vs_qlib: skipped: qlib (PyPI pyqlib) is not importable; install it in a "
              f"separate venv: {INSTALL}")  # fmt: skip
        return 0
    if args.child:
        work = Path(args.work).resolve()
        res = (side_qlib if args.child == "qlib" else side_ours)(args, work)
        (work / f"{args.child}.json").write_text(json.dumps(res))
        return 0
    if not (Path(args.data) / "prices" / "calendars" / "day.txt").is_file():
        print(f"bench_vs_qlib: skipped: no CN data at {args.data} (pass --data)")
        return 0

    import qlib
    import torch

    tmp = None
    if args.work is None:
        tmp = tempfile.mkdtemp(prefix="bench_vs_qlib_")
        work = Path(tmp)
    else:
        work = Path(args.work).resolve()
        work.mkdir(parents=True, exist_ok=True)
    try:
        print(
            f"bench_vs_qlib: qlib {qlib.__version__}, torch {torch.__version__}, python "
            f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, threads {args.threads}; "
            f"CSI 300 point in time; train {args.train_start}..{args.train_end}, valid "
            f"{args.valid_start}..{args.valid_end}; work {work}",
            flush=True,
        )
        print(f"load average at start: {loadavg()}", flush=True)
        info = export_qlib(args, work / "qlib")
        how = "reused" if info["reused"] else f"written in {info['seconds']:.1f} s"
        print(
            f"[export] Qlib layout {work / 'qlib'}: {info['stocks']} stocks, {info['spells']} "
            f"CSI 300 spells, calendar {info['dates'][0]}..{info['dates'][1]} ({how})",
            flush=True,
        )
        if args.qlib_result:  # a Qlib side measured earlier on the same rows (stated below)
            q = json.loads(Path(args.qlib_result).read_text())
            print(
                f"[qlib] reused {args.qlib_result} (measured earlier; load then: start "
                f"{q['load_start']:.2f}, end {q['load_end']:.2f})",
                flush=True,
            )
        else:
            q = run_side("qlib", args, work)
        o = run_side("ours", args, work)
        print()
        print(table(q, o))
        print("(ours/Qlib: below 1 for times and memory, above 1 for rows / s = deepalpha ahead)")
        print()
        print(
            f"rows: Qlib trains {q['rows']:,} of {q['rows_available']:,} labelled rows (whole "
            f"batches of {args.batch} random stock-days); deepalpha {o['rows']:,} stock-days on "
            f"{o['steps']} steps of {args.dates_per_step} date(s) (whole cross-sections; "
            f"suspended days and windows < 90 % finite dropped). Qlib's fit also spent {q['prepare_s']:.1f} s in "
            f"dataset.prepare + dropna. Valid RankIC (deepalpha, 1 epoch): "
            f"{o['valid_rank_ic']:.4f}."
        )
        print(f"load average at end: {loadavg()}")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

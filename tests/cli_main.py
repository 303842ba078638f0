"""Run the console-script entry point (`deepalpha.cli.main`) in process, as a user would.

``CliRunner.invoke(app)`` bypasses ``main()``, which is where a `DeepAlphaError` becomes one red
line and exit code 2; the degenerate-input tests need that path.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> Result:
    """``deepalpha ARGS`` through ``main()``; returns the exit code and captured streams."""
    from deepalpha.cli import main

    old = sys.argv
    sys.argv = ["deepalpha", *[str(a) for a in args]]
    code = 0
    try:
        main()
    except SystemExit as e:
        code = int(e.code or 0) if not isinstance(e.code, str) else 1
    finally:
        sys.argv = old
    cap = capsys.readouterr()
    return Result(code, cap.out, cap.err)


def assert_one_line_error(r: Result, *needles: str) -> None:
    """Exit 2, no traceback, one ``error:`` message (the last thing on stderr) containing
    every needle."""
    assert r.code == 2, (r.code, r.out, r.err)
    assert "Traceback" not in r.err + r.out
    msg = " ".join(r.err.split())  # rich wraps long lines
    assert msg.count("error:") == 1, r.err  # progress lines may come before it
    msg = msg[msg.index("error:") :]
    for n in needles:
        assert n in msg, (n, msg)

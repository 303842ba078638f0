"""How the CLI reports bad input: one red line on stderr, no traceback."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape


def print_error(e: Exception) -> None:
    """``error: <message>`` on stderr (the message names the file, key or date)."""
    Console(stderr=True).print(
        f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True
    )

"""Errors that name the place of the problem (file, field, code, date)."""

from __future__ import annotations

from pathlib import Path


class DeepAlphaError(Exception):
    """Base class: every error the CLI prints as one line without a traceback."""


class DataError(DeepAlphaError):
    """Bad input data. The message names the file, field, code and date where known.

    >>> str(DataError("price is not positive", file="close.day.bin", code="SH600000", date="2010-01-04"))
    'price is not positive [file=close.day.bin, code=SH600000, date=2010-01-04]'
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        field: str | None = None,
        code: str | None = None,
        date: object | None = None,
    ) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.field = field
        self.code = code
        self.date = None if date is None else str(date)
        where = [
            f"{k}={v}"
            for k, v in (
                ("file", self.file),
                ("field", self.field),
                ("code", self.code),
                ("date", self.date),
            )
            if v is not None
        ]
        super().__init__(message + (f" [{', '.join(where)}]" if where else ""))


class ConfigError(DeepAlphaError):
    """Invalid configuration; the message names the key and the file."""

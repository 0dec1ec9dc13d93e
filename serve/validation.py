"""Input problems and the vectorised value check every entry point shares.

A :class:`Problem` locates one bad value: the row (0-based index in the request; for
CSV the file line, header = line 1), the field (feature name, or ``None`` for the whole
row) and why. :class:`InputValidationError` carries the list; its message is one line
summarising the first problems.

:class:`ValueChecker` checks a float32 ``[N, F]`` array against a
:class:`~kerasnn.serve.modelfile.ModelSchema`: every value finite, inside
``[valid_min, valid_max]``, whole for ``int`` features and exactly 0 or 1 for ``flag``
features. Bounds are compared in float32, the precision the model sees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from kerasnn.errors import KerasnnError

from .modelfile import ModelSchema

__all__ = ["MAX_REPORTED", "InputValidationError", "Problem", "ValueChecker", "fmt_number"]

#: At most this many problems are reported per request (the count of the rest is given).
MAX_REPORTED = 20


@dataclass(frozen=True)
class Problem:
    """One bad input value. ``row`` is a 0-based index, or a file line when ``line`` is set."""

    row: int | None
    field: str | None
    message: str
    line: int | None = None

    def describe(self) -> str:
        where = f"line {self.line}" if self.line is not None else f"row {self.row}"
        if self.row is None and self.line is None:
            where = "request"
        return f"{where}, {self.field}: {self.message}" if self.field else f"{where}: {self.message}"

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None or k in ("field", "message")}


class InputValidationError(KerasnnError, ValueError):
    """The input violates the model's schema; ``problems`` locates each bad value.

    ``problems`` are kept in input order (row or line first, then the given order) and
    cut to :data:`MAX_REPORTED`; ``total`` counts them all.
    """

    def __init__(self, problems: list[Problem], total: int | None = None):
        problems = sorted(problems, key=lambda p: (p.line if p.line is not None else -1,
                                                   p.row if p.row is not None else -1))
        self.problems = problems[:MAX_REPORTED]
        self.total = max(total or 0, len(problems))
        summary = "; ".join(p.describe() for p in self.problems[:3])
        more = self.total - min(3, len(self.problems))
        super().__init__(summary + (f" (and {more} more)" if more > 0 else ""))


def fmt_number(value: float) -> str:
    """Shortest text of a float32 value: ``0.1`` rather than ``0.10000000149011612``."""
    if np.isnan(value):
        return "NaN"
    if np.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return np.format_float_positional(np.float32(value), unique=True, trim="-")


class ValueChecker:
    """Vectorised per-feature value checks for a schema (see module docstring)."""

    def __init__(self, schema: ModelSchema):
        self.schema = schema
        self.names = schema.feature_names
        self.lo = np.array([f.valid_min for f in schema.features], dtype=np.float32)
        self.hi = np.array([f.valid_max for f in schema.features], dtype=np.float32)
        self.whole = np.array([f.kind in ("int", "flag") for f in schema.features])
        self.flag = np.array([f.kind == "flag" for f in schema.features])

    def bad_mask(self, x: np.ndarray) -> np.ndarray:
        """Boolean ``[N, F]`` mask of the values that fail a check."""
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(x)
            bad |= x < self.lo
            bad |= x > self.hi
            if self.whole.any():
                bad |= self.whole & (x != np.floor(x))
        return bad

    def why(self, col: int, value: float) -> str:
        """Why ``value`` is not acceptable in column ``col`` (assumes it is not)."""
        f = self.schema.features[col]
        text = fmt_number(value)
        if np.isnan(value):
            return "not a number: got NaN"
        if f.kind == "flag":
            return f"must be 0 or 1: got {text}"
        if np.isinf(value) or not (self.lo[col] <= value <= self.hi[col]):
            lo, hi = fmt_number(f.valid_min), fmt_number(f.valid_max)
            unit = f" {f.unit}" if f.unit else ""
            return f"out of the valid range [{lo}, {hi}]{unit}: got {text}"
        return f"must be a whole number: got {text}"

    def problems(self, x: np.ndarray, *, skip: np.ndarray | None = None,
                 lines: list[int] | None = None, row_offset: int = 0) -> tuple[list[Problem], int]:
        """The first :data:`MAX_REPORTED` problems in ``x`` and their total count.

        ``skip`` masks cells already reported (e.g. "not a number"); ``lines`` maps rows
        to file lines for CSV input.
        """
        bad = self.bad_mask(x)
        if skip is not None:
            bad &= ~skip
        total = int(np.count_nonzero(bad))
        if not total:
            return [], 0
        out = []
        for r, c in np.argwhere(bad)[:MAX_REPORTED]:
            r, c = int(r), int(c)
            line = lines[r] if lines is not None else None
            out.append(Problem(None if line else r + row_offset, self.names[c], self.why(c, float(x[r, c])),
                               line))
        return out, total

    def check(self, x: np.ndarray) -> None:
        """Raise :class:`InputValidationError` if any value of ``x`` is unacceptable."""
        if not self.bad_mask(x).any():
            return
        problems, total = self.problems(x)
        raise InputValidationError(problems, total)

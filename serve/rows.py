"""Named-feature rows (JSON objects) to a float32 feature matrix, strictly.

Contract of :func:`rows_to_array`: ``rows`` is a list of dicts parsed from JSON. Every
row must hold exactly the model's features (the target field, e.g. ``price_range``, is
tolerated and ignored) with JSON numbers as values (``true``/``false``, strings and
``null`` are refused, also for the 0/1 features). The values are then checked against
the schema (:class:`~kerasnn.serve.validation.ValueChecker`). Any violation raises
:class:`~kerasnn.serve.validation.InputValidationError` listing, per bad value, the row
index, the field and why: missing, not a number, out of range, not 0/1, not a whole
number, unknown field.

The common all-valid case runs at C speed (``itemgetter`` + one ``numpy.array`` call);
only a failing request pays for the per-cell walk that locates the problems.
"""

from __future__ import annotations

from itertools import chain
from operator import itemgetter

import numpy as np

from .modelfile import ModelSchema
from .validation import MAX_REPORTED, InputValidationError, Problem, ValueChecker

__all__ = ["RowParser"]

_NUMBER_TYPES = frozenset((int, float))


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return {str: "a string", list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


class RowParser:
    """Turns lists of named-feature dicts into checked float32 ``[N, F]`` arrays."""

    def __init__(self, schema: ModelSchema, checker: ValueChecker | None = None):
        self.schema = schema
        self.names = schema.feature_names
        self.known = frozenset(self.names)
        self.target = schema.target
        self.checker = checker or ValueChecker(schema)
        self._get = itemgetter(*self.names)
        self._single = len(self.names) == 1

    def rows_to_array(self, rows: list) -> np.ndarray:
        """Checked float32 ``[len(rows), F]`` array (see the module docstring)."""
        x = self._fast(rows)
        if x is None:
            x, bad = self._slow(rows)
            problems, count = self._structure_problems(rows)
            extra, total = self.checker.problems(x, skip=bad)
            if problems or extra:
                raise InputValidationError(problems + extra, count + total)
        else:
            self.checker.check(x)
        return x

    def _fast(self, rows: list) -> np.ndarray | None:
        n = len(self.names)
        try:
            values = list(map(self._get, rows))
        except (KeyError, TypeError):
            return None
        if self._single:
            values = [(v,) for v in values]
        if sum(map(len, rows)) != n * len(rows):
            return None
        if not set(map(type, chain.from_iterable(values))) <= _NUMBER_TYPES:
            return None
        try:
            with np.errstate(over="ignore"):
                return np.array(values, dtype=np.float32).reshape(len(rows), n)
        except (ValueError, OverflowError):
            return None

    def _slow(self, rows: list) -> tuple[np.ndarray, np.ndarray]:
        """Array (0 where a cell is unusable) and the mask of the unusable cells."""
        x = np.zeros((len(rows), len(self.names)), dtype=np.float32)
        bad = np.zeros(x.shape, dtype=bool)
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                bad[i] = True
                continue
            for j, name in enumerate(self.names):
                v = row.get(name)
                if type(v) in _NUMBER_TYPES:
                    try:
                        with np.errstate(over="ignore"):
                            x[i, j] = v
                    except OverflowError:  # an int beyond float range: out of range
                        x[i, j] = np.inf if v > 0 else -np.inf
                else:
                    bad[i, j] = True
        return x, bad

    def _structure_problems(self, rows: list) -> tuple[list[Problem], int]:
        """The first structural problems (missing, not a number, unknown) and their count."""
        problems: list[Problem] = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                problems.append(Problem(i, None, f"expected an object of named features, got {_type_name(row)}"))
                continue
            for name in self.names:
                if name not in row:
                    problems.append(Problem(i, name, "missing"))
                elif type(row[name]) not in _NUMBER_TYPES:
                    problems.append(Problem(i, name, f"not a number: got {_type_name(row[name])}"))
            for key in row:
                if key not in self.known and key != self.target:
                    problems.append(Problem(i, str(key), "unknown field"))
            if len(problems) > MAX_REPORTED:
                del problems[MAX_REPORTED:]  # keep memory bounded; the total is counted below
                return problems, self._count_structure(rows)
        return problems, len(problems)

    def _count_structure(self, rows: list) -> int:
        total = 0
        for row in rows:
            if not isinstance(row, dict):
                total += 1
                continue
            total += sum(1 for n in self.names if type(row.get(n)) not in _NUMBER_TYPES)
            total += sum(1 for k in row if k not in self.known and k != self.target)
        return total

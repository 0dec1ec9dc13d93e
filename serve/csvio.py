"""CSV in, CSV out for batch prediction.

Input contract (:meth:`CsvCodec.parse`): UTF-8 text (a BOM is allowed), comma
separated, the first line a header naming every feature of the model once, in any
order. A column named like the model's target (``price_range``) is ignored; any other
column is refused. Blank lines are skipped. Every value must parse as a number and pass
the schema checks. Problems are reported by file line (header = line 1) and column:
:class:`~kerasnn.serve.validation.InputValidationError` whose problems carry ``line``.

Output contract (:meth:`CsvCodec.render`): a header of the features in the model's
order, then ``price_range`` (the predicted class index), ``label`` (the class name) and
one ``prob_<class name with spaces as _>`` column per class; one line per input row,
feature cells as given in the input, probabilities in the shortest float32 text.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np
import orjson

from .modelfile import ModelSchema
from .validation import MAX_REPORTED, InputValidationError, Problem, ValueChecker

__all__ = ["CsvCodec", "CsvTable", "TooManyRows", "decode_csv_bytes"]


class TooManyRows(ValueError):
    """More data rows than the configured limit."""


@dataclass
class CsvTable:
    """Parsed input: feature cells (model order) as given, the float32 matrix, source lines."""

    cells: list[list[str]]
    x: np.ndarray
    lines: list[int]


def decode_csv_bytes(data: bytes) -> str:
    """UTF-8 (optionally with BOM) text; :class:`InputValidationError` naming the byte if not."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputValidationError([Problem(None, None, f"not UTF-8 text (byte {exc.start})", line)]) from None


def _csv_line(values: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(values)
    return buf.getvalue()


class CsvCodec:
    """Parses feature CSVs and renders prediction CSVs for one schema."""

    def __init__(self, schema: ModelSchema, checker: ValueChecker | None = None):
        self.schema = schema
        self.names = schema.feature_names
        self.checker = checker or ValueChecker(schema)
        self.prob_columns = [f"prob_{c.replace(' ', '_')}" for c in schema.classes]
        self.out_header = _csv_line([*self.names, schema.target, "label", *self.prob_columns])
        self._label_cells = [_csv_line([c]) for c in schema.classes]

    def _columns(self, header: list[str]) -> list[int]:
        """Index of each feature in ``header``; problems on line 1 if the header is wrong."""
        header = [h.strip() for h in header]
        problems = []
        seen: dict[str, int] = {}
        for i, h in enumerate(header):
            if h in seen:
                problems.append(Problem(None, h, "column appears twice", 1))
            elif h not in self.names and h != self.schema.target:
                problems.append(Problem(None, h or f"column {i + 1}", "unknown column", 1))
            seen.setdefault(h, i)
        problems += [Problem(None, n, "missing column", 1) for n in self.names if n not in seen]
        if problems:
            raise InputValidationError(problems)
        return [seen[n] for n in self.names]

    def parse(self, text: str, max_rows: int) -> CsvTable:
        """Parse CSV ``text`` (see the module docstring); :class:`TooManyRows` past ``max_rows``."""
        reader = csv.reader(io.StringIO(text))
        try:
            header = next(reader)
            while not header:  # leading blank lines
                header = next(reader)
        except StopIteration:
            raise InputValidationError([Problem(None, None, "empty CSV: no header line", 1)]) from None
        except csv.Error as exc:
            raise InputValidationError([Problem(None, None, f"unreadable CSV: {exc}", reader.line_num)]) from None
        cols = self._columns(header)
        width = len(header)
        cells: list[list[str]] = []
        lines: list[int] = []
        problems: list[Problem] = []
        n_problems = 0
        try:
            for record in reader:
                if not record:
                    continue
                if len(record) != width:
                    n_problems += 1
                    if len(problems) < MAX_REPORTED:
                        problems.append(Problem(None, None, f"expected {width} fields, got {len(record)}",
                                                reader.line_num))
                    continue
                if len(cells) >= max_rows:
                    raise TooManyRows(f"at most {max_rows} rows per request")
                cells.append([record[c] for c in cols])
                lines.append(reader.line_num)
        except csv.Error as exc:
            n_problems += 1
            problems.append(Problem(None, None, f"unreadable CSV: {exc}", reader.line_num))
        if not cells and not problems:
            raise InputValidationError([Problem(None, None, "no data rows after the header", 1)])
        x, bad = self._to_array(cells, lines, problems)
        n_problems += int(bad.sum())
        extra, total = self.checker.problems(x, skip=bad, lines=lines)
        if problems or extra:
            raise InputValidationError(problems + extra, n_problems + total)
        return CsvTable(cells, x, lines)

    def _to_array(self, cells, lines, problems) -> tuple[np.ndarray, np.ndarray]:
        shape = (len(cells), len(self.names))
        try:
            return np.array(cells, dtype=np.float32).reshape(shape), np.zeros(shape, dtype=bool)
        except (ValueError, OverflowError):
            pass
        x = np.zeros(shape, dtype=np.float32)
        bad = np.zeros(shape, dtype=bool)
        for i, row in enumerate(cells):
            for j, cell in enumerate(row):
                try:
                    with np.errstate(over="ignore"):
                        x[i, j] = float(cell)
                except ValueError:
                    bad[i, j] = True
                    if len(problems) < MAX_REPORTED:
                        why = "missing value" if not cell.strip() else f"not a number: got {cell[:40]!r}"
                        problems.append(Problem(None, self.names[j], why, lines[i]))
        return x, bad

    def render(self, cells: list[list[str]], probabilities: np.ndarray, labels: np.ndarray) -> str:
        """The output CSV text (see the module docstring)."""
        probs = orjson.dumps(probabilities, option=orjson.OPT_SERIALIZE_NUMPY)[2:-2].decode().split("],[")
        label_cells = self._label_cells
        out = [self.out_header]
        out += [f"{_join(c)},{k},{label_cells[k]},{p}" for c, k, p in zip(cells, labels.tolist(), probs)]
        out.append("")
        return "\n".join(out)


def _join(cells: list[str]) -> str:
    text = ",".join(cells)
    if "\n" in text or "\r" in text:  # a quoted number with a line break: keep the CSV one line a row
        text = ",".join(c.strip() for c in cells)
    return text

"""argparse ``type=`` parsers shared by every ``kerasnn`` subcommand (standard library only).

Each raises ``argparse.ArgumentTypeError`` with a message saying what was expected;
argparse prefixes it with the option's name.
"""

from __future__ import annotations

import argparse
import math

__all__ = ["fraction", "integer", "port", "positive_float", "positive_int", "real"]


def _describe(kind: str, minimum, maximum, exclusive: bool) -> str:
    if minimum is not None and maximum is not None:
        return f"{kind} {'strictly ' if exclusive else ''}between {minimum:g} and {maximum:g}"
    if minimum is not None:
        return f"{kind} {'>' if exclusive else '>='} {minimum:g}"
    return kind


def integer(minimum: int | None = None, maximum: int | None = None):
    """A parser for whole numbers in ``[minimum, maximum]`` (either bound optional)."""
    expected = "a positive integer" if (minimum, maximum) == (1, None) else _describe(
        "an integer", minimum, maximum, exclusive=False)

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


def real(minimum: float | None = None, maximum: float | None = None, *, exclusive: bool = False):
    """A parser for finite numbers within the bounds (open bounds when ``exclusive``)."""
    expected = _describe("a finite number", minimum, maximum, exclusive)

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        below = minimum is not None and (value <= minimum if exclusive else value < minimum)
        above = maximum is not None and (value >= maximum if exclusive else value > maximum)
        if not math.isfinite(value) or below or above:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


positive_int = integer(1)
port = integer(0, 65535)
positive_float = real(0.0, exclusive=True)
fraction = real(0.0, 1.0, exclusive=True)

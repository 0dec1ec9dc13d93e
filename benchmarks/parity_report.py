"""kerasnn vs torch on every Keras backend, as one markdown table.

Runs ``python -m kerasnn.parity --json`` once per backend (``KERAS_BACKEND`` = torch,
tensorflow, jax; a fresh process each, since Keras fixes its backend at import) and
prints, for each technique, the largest absolute difference between kerasnn and torch
on each backend, and beside it the same for Keras' own look-alike where one exists.

Usage: python benchmarks/parity_report.py [--backends torch,tensorflow,jax] [--timeout 900]
Exit code 1 if a backend failed to run or a check reported an error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys

BACKENDS = ("torch", "tensorflow", "jax")


def run_backend(backend: str, timeout: float) -> list[dict]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    pythonpath = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=pythonpath)
    proc = subprocess.run(
        [sys.executable, "-m", "kerasnn.parity", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = proc.stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "["), None)
    if start is None:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(
            f"`python -m kerasnn.parity --json` on {backend} gave no JSON (exit {proc.returncode}):\n{tail}"
        )
    return json.loads("\n".join(lines[start:]))


def fmt(value) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "0"
    if isinstance(value, float) and not math.isfinite(value):
        return "**nan**" if math.isnan(value) else "**inf**"
    return f"{value:.1e}"


def table(results: dict[str, list[dict] | str]) -> str:
    backends = list(results)
    techniques: dict[str, dict] = {}
    for backend, rows in results.items():
        if isinstance(rows, str):
            continue
        for row in rows:
            entry = techniques.setdefault(row["technique"], {"builtin": row["keras_builtin"]})
            entry[backend] = (row["max_abs_diff"], row["keras_max_abs_diff"])
    header = (
        ["technique"]
        + [f"kerasnn · {b}" for b in backends]
        + ["Keras look-alike", "look-alike · " + " / ".join(backends)]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for technique, entry in techniques.items():
        ours = [fmt(entry[b][0]) if b in entry else "–" for b in backends]
        theirs = [fmt(entry[b][1]) if b in entry else "–" for b in backends]
        builtin = f"`{entry['builtin']}`" if entry["builtin"] else "–"
        look_alike = " / ".join(theirs) if entry["builtin"] else "–"
        cells = [technique, *ours, builtin, look_alike]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    for backend, rows in results.items():
        if isinstance(rows, str):
            lines.append(f"\n**{backend}: failed** — {rows}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated Keras backends")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per backend")
    args = parser.parse_args(argv)
    results: dict[str, list[dict] | str] = {}
    failed = False
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        print(f"running kerasnn.parity on {backend} ...", file=sys.stderr)
        try:
            results[backend] = run_backend(backend, args.timeout)
        except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as error:
            results[backend] = str(error).splitlines()[0]
            print(error, file=sys.stderr)
            failed = True
    print(
        "Largest absolute difference to torch (values and gradients, float32, CPU): "
        "kerasnn per Keras backend, and Keras' own look-alike beside it.\n"
    )
    print(table(results))
    errors = [
        row["technique"]
        for rows in results.values()
        if not isinstance(rows, str)
        for row in rows
        if isinstance(row["max_abs_diff"], float) and math.isnan(row["max_abs_diff"])
    ]
    return 1 if failed or errors else 0


if __name__ == "__main__":
    sys.exit(main())

"""The tutorial's baseline on every backend, with and without standardization.

Runs ``kerasnn train`` (Adam lr=1e-4, batch 8, 50 epochs, 80/20 stratified split, seed 0)
once per backend on raw features (the tutorial's setting; it reports about 54.75%)
and once with standardization, each in its own process, and prints the test accuracy
table. Needs the real data (``--data`` or ``$KERASNN_DATA``).

    python benchmarks/tutorial_baseline.py [--epochs 50] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def train_once(backend: str, standardize: bool, seed: int, epochs: int, data: str, workdir: Path) -> dict:
    out = workdir / f"{backend}-{'std' if standardize else 'raw'}-{seed}"
    cmd = [sys.executable, "-m", "kerasnn.cli", "train", "--data", data, "--epochs", str(epochs),
           "--seed", str(seed), "--verbose", "0", "--out", str(out),
           "--standardize" if standardize else "--no-standardize"]
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{backend}: kerasnn train failed: {done.stderr.strip()[-500:]}")
    return json.loads((out / "metrics.json").read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("KERASNN_DATA"))
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--backends", nargs="+", default=["torch", "tensorflow", "jax"])
    args = parser.parse_args(argv)
    if not args.data or not Path(args.data).is_file():
        print("tutorial_baseline: the real data is needed: --data PATH or $KERASNN_DATA", file=sys.stderr)
        return 2
    print(f"| backend | raw features (tutorial) | standardized | seconds (raw / std) |  seeds {args.seeds}, "
          f"{args.epochs} epochs")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends:
            raw = [train_once(backend, False, s, args.epochs, args.data, Path(tmp)) for s in args.seeds]
            std = [train_once(backend, True, s, args.epochs, args.data, Path(tmp)) for s in args.seeds]

            def summary(runs):
                accs = [r["accuracy"] for r in runs]
                text = f"{statistics.mean(accs):.4f}"
                return text + (f" ± {statistics.stdev(accs):.4f}" if len(accs) > 1 else "")

            seconds = f"{statistics.mean(r['train_seconds'] for r in raw):.0f} / " \
                      f"{statistics.mean(r['train_seconds'] for r in std):.0f}"
            print(f"| {backend} | {summary(raw)} | {summary(std)} | {seconds} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Seconds per epoch: the tutorial recipe with Keras fit vs the plain PyTorch loop.

Recipe: 20-128-256-4 MLP, cross-entropy on logits, Adam lr=1e-4, batch 8, standardized
features, 80% of the 1600 real rows (synthetic rows of the same size when the data is
not found, and it says so). All variants run in the same process, one after the other,
with one thread for torch; each figure is the median epoch time after the first (warm-up,
compilation) epoch. Run it on a quiet machine: the variants do not share the noise.

    python benchmarks/train_speed.py               # all three backends, one subprocess each
    KERAS_BACKEND=jax python benchmarks/train_speed.py --one --epochs 5

Prints a table: variant, seconds per epoch, ratio to the native PyTorch loop.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def _data(path: str | None):
    from kerasnn.data import Standardizer, load_phone_prices, stratified_split, synthetic_phone_prices

    if path and os.path.isfile(path):
        data, label = load_phone_prices(path), "real"
    else:
        data, label = synthetic_phone_prices(1600, seed=0), "synthetic"
    x_tr, _, y_tr, _ = stratified_split(data.x, data.y, 0.2, seed=0)
    return Standardizer.fit(x_tr).transform(x_tr), y_tr, label


def _native_torch_epochs(x, y, epochs: int, batch_size: int) -> list[float]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 128), nn.ReLU(), nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, 4))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    criterion = nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=batch_size, shuffle=True)
    times = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        for batch_x, batch_y in loader:
            optimizer.zero_grad()
            loss = criterion(model(batch_x), batch_y)
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - started)
    return times


def _keras_epochs(x, y, epochs: int, batch_size: int, **compile_kwargs) -> list[float]:
    import keras

    from kerasnn.losses import CrossEntropyLoss
    from kerasnn.models import build_model
    from kerasnn.optimizers import Adam

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.started)

    times: list[float] = []
    model = build_model(seed=0)
    model.compile(optimizer=Adam(learning_rate=1e-4), loss=CrossEntropyLoss(), metrics=["accuracy"],
                  **compile_kwargs)
    model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0, callbacks=[EpochTimer()])
    return times


def run_one(epochs: int, batch_size: int, data_path: str | None) -> dict:
    import keras
    import torch

    torch.set_num_threads(1)
    backend = keras.backend.backend()
    x, y, label = _data(data_path)
    variants = {"native PyTorch loop": lambda: _native_torch_epochs(x, y, epochs, batch_size),
                "Keras fit (default)": lambda: _keras_epochs(x, y, epochs, batch_size)}
    if backend in ("torch", "jax", "tensorflow"):
        variants["Keras fit, jit_compile=True"] = lambda: _keras_epochs(x, y, epochs, batch_size, jit_compile=True)
    if backend in ("tensorflow", "jax"):
        variants["Keras fit, steps_per_execution=32"] = lambda: _keras_epochs(
            x, y, epochs, batch_size, steps_per_execution=32)
    results = {}
    for name, fn in variants.items():
        try:
            times = fn()
            results[name] = statistics.median(times[1:] if len(times) > 1 else times)
        except Exception as exc:  # noqa: BLE001 (a variant a backend cannot run is reported, not fatal)
            results[name] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
    return {"backend": backend, "data": label, "rows": len(x), "batch_size": batch_size, "epochs": epochs,
            "seconds_per_epoch": results}


def print_table(rows: list[dict]) -> None:
    print("| backend | variant | s/epoch | x native torch |")
    print("|---|---|---|---|")
    for row in rows:
        native = row["seconds_per_epoch"]["native PyTorch loop"]
        for name, value in row["seconds_per_epoch"].items():
            if isinstance(value, str):
                print(f"| {row['backend']} | {name} | {value} | |")
            else:
                print(f"| {row['backend']} | {name} | {value:.3f} | {value / native:.2f} |")
    first = rows[0]
    print(f"\n{first['data']} data, {first['rows']} training rows, batch {first['batch_size']}, "
          f"median of epochs 2..{first['epochs']}, torch.set_num_threads(1)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--data", default=os.environ.get("KERASNN_DATA"))
    parser.add_argument("--one", action="store_true", help="only the current KERAS_BACKEND; print JSON")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.epochs, args.batch_size, args.data)))
        return 0
    rows = []
    for backend in ("torch", "tensorflow", "jax"):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        cmd = [sys.executable, __file__, "--one", "--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
        if args.data:
            cmd += ["--data", args.data]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{backend}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    if rows:
        print_table(rows)
    return 0 if len(rows) == 3 else 1


if __name__ == "__main__":
    sys.exit(main())

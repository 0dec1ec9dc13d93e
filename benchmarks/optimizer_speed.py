"""fit() step time: each kerasnn optimizer against its Keras built-in counterpart.

The tutorial recipe: a 20-128-ReLU-256-ReLU-4 MLP (kerasnn ``Linear`` layers), sparse
cross-entropy on logits, batch size 8, 1600 synthetic rows (200 steps per epoch). Every
backend runs in its own subprocess (Keras fixes its backend at import). Inside one, all
variants are compiled and warmed up first, then timed in alternation, one epoch each per
round; a callback takes the time between consecutive ``on_train_batch_end`` calls, so the
figure is the steady-state step time of ``fit()`` (data iterator included, fit set-up
excluded). Reported: the median over rounds of each epoch's median step time, and the
ratio kerasnn / Keras for each pair (target: <= 1.15). On torch one reference row shows
kerasnn Adam forced through its per-variable ``keras.ops`` update (no ``_foreach`` path).

Threads: torch.set_num_threads(1) on the torch backend; TensorFlow with one intra-op and
one inter-op thread; XLA CPU single-threaded for JAX. The machine is shared, so read the
ratios, not the absolute times.

    .venv/bin/python benchmarks/optimizer_speed.py [--rounds 7] [--backends torch,tensorflow,jax]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BACKENDS = ("torch", "tensorflow", "jax")

# (label, kerasnn optimizer, Keras built-in look-alike): the closest Keras arguments.
PAIRS = [
    ("SGD", "kopt.SGD(1e-2)", "keras.optimizers.SGD(1e-2)"),
    ("SGD momentum", "kopt.SGD(1e-2, momentum=0.9)", "keras.optimizers.SGD(1e-2, momentum=0.9)"),
    ("Momentum", "kopt.Momentum(1e-2, beta=0.9)", "keras.optimizers.SGD(1e-3, momentum=0.9)"),
    ("Adagrad", "kopt.Adagrad(1e-2)", "keras.optimizers.Adagrad(1e-2)"),
    ("RMSprop", "kopt.RMSprop(1e-3)", "keras.optimizers.RMSprop(1e-3)"),
    ("Adam", "kopt.Adam(1e-3)", "keras.optimizers.Adam(1e-3)"),
    ("AdamW", "kopt.AdamW(1e-3)", "keras.optimizers.AdamW(1e-3, weight_decay=1e-2)"),
]


def _worker(rounds: int) -> dict:
    import keras
    import numpy as np

    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        torch.set_num_threads(1)
    elif backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)

    import kerasnn.optimizers as kopt
    from kerasnn.layers import Linear

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1600, 20)).astype("float32")
    y = rng.integers(0, 4, size=1600).astype("int32")

    def make_model():
        keras.utils.set_random_seed(0)
        return keras.Sequential(
            [
                keras.Input((20,)),
                Linear(128),
                keras.layers.ReLU(),
                Linear(256),
                keras.layers.ReLU(),
                Linear(4),
            ]
        )

    class StepTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.times = []

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter())

        def median_step(self):
            return statistics.median(np.diff(self.times))

    class AdamPerVariable(kopt.Adam):
        """kerasnn Adam forced through the generic per-variable keras.ops update_step."""

        def _backend_update_step(self, grads, trainable_variables, learning_rate):
            for grad, variable in zip(grads, trainable_variables):
                self.update_step(grad, variable, learning_rate)

    pairs = list(PAIRS)
    if backend == "torch":  # what the foreach fast path saves
        pairs.append(
            (
                "Adam, per-variable ops path (reference)",
                "AdamPerVariable(1e-3)",
                "keras.optimizers.Adam(1e-3)",
            )
        )

    variants = []
    for label, ours, theirs in pairs:
        for kind, expression in (("kerasnn", ours), ("keras", theirs)):
            model = make_model()
            model.compile(
                optimizer=eval(expression), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            )
            timer = StepTimer()
            model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[timer])  # warm-up
            variants.append((label, kind, model, timer, []))

    for r in range(rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        for label, kind, model, timer, samples in order:
            model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[timer])
            samples.append(timer.median_step())

    results = {}
    for label, kind, _, _, samples in variants:
        results.setdefault(label, {})[kind] = statistics.median(samples) * 1e3
    return {"backend": backend, "rounds": rounds, "ms_per_step": results}


def _run_backend(backend: str, rounds: int) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", "--rounds", str(rounds)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{backend} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed epochs per variant (median taken)")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(_worker(args.rounds)))
        return 0

    all_results = []
    worst = 0.0
    print("fit() ms/step, tutorial MLP 20-128-256-4, batch 8, 200 steps/epoch, 1 thread per backend")
    print(f"median over {args.rounds} alternated epochs; ratio = kerasnn / keras built-in (target <= 1.15)\n")
    print("| backend | optimizer | kerasnn ms/step | keras ms/step | ratio |\n|---|---|---|---|---|")
    for backend in args.backends.split(","):
        result = _run_backend(backend, args.rounds)
        all_results.append(result)
        for label, times in result["ms_per_step"].items():
            ratio = times["kerasnn"] / times["keras"]
            if "reference" not in label:
                worst = max(worst, ratio)
            print(
                f"| {backend} | {label} | {times['kerasnn']:.3f} | {times['keras']:.3f} | {ratio:.2f} |",
                flush=True,
            )
    print(f"\nworst ratio: {worst:.2f}")
    if args.json:
        args.json.write_text(json.dumps(all_results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

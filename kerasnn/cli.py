"""The ``kerasnn`` command line.

Heavy modules are imported inside the subcommands: ``kerasnn serve`` starts without
Keras, and a data or argument error is reported before any backend is imported.
Every error a user can cause ends as one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from kerasnn.argtypes import fraction, positive_float, positive_int
from kerasnn.errors import KerasnnError

BACKENDS = ("torch", "tensorflow", "jax")
BACKEND_PACKAGES = {"torch": "torch", "tensorflow": "tensorflow", "jax": "jax"}
DEFAULT_MODEL = Path("models/phone_price.onnx")


class UsageError(KerasnnError):
    """Bad command-line usage (unknown option, bad value)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage block) and exit code 2."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _select_backend(name: str | None) -> str:
    """Set KERAS_BACKEND (before Keras is imported) and check the backend is installed."""
    if name:
        if "keras" in sys.modules and os.environ.get("KERAS_BACKEND") != name:
            raise UsageError(f"--backend {name}: Keras is already imported with another backend")
        os.environ["KERAS_BACKEND"] = name
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    if backend not in BACKENDS:
        raise UsageError(f"KERAS_BACKEND={backend!r} is not supported; use one of {', '.join(BACKENDS)}")
    if importlib.util.find_spec(BACKEND_PACKAGES[backend]) is None:
        raise UsageError(f"the {backend} backend is not installed; pip install 'kerasnn[{backend}]' "
                         f"or choose another with --backend")
    if backend == "torch":
        # Small models: one thread is faster and immune to a busy second core.
        import torch

        torch.set_num_threads(1)
    return backend


def _load_data(args):
    from kerasnn.data import load_phone_prices, resolve_data_path, synthetic_phone_prices

    if getattr(args, "synthetic", None):
        if args.data:
            raise UsageError("--data and --synthetic exclude each other")
        return synthetic_phone_prices(args.synthetic, seed=args.seed)
    return load_phone_prices(resolve_data_path(args.data))


def cmd_train(args) -> int:
    from kerasnn.training import TrainConfig

    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
        seed=args.seed, standardize=args.standardize, test_size=args.test_size,
        hidden_units=tuple(args.hidden), dropout=args.dropout, batch_norm=args.batch_norm,
        weight_decay=args.weight_decay, verbose=args.verbose,
    )
    data = _load_data(args)
    out = Path(args.out) if args.out else _default_run_dir()
    if out.exists():
        raise UsageError(f"--out {out}: already exists; choose another or remove it")
    _select_backend(args.backend)
    from kerasnn.training import train

    train(data, config, out)
    return 0


def _default_run_dir() -> Path:
    import time

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{backend}"


def cmd_evaluate(args) -> int:
    import json

    data = _load_data(args)
    _select_backend(args.backend)
    from kerasnn.training import evaluate_model, load_run

    model, standardizer, saved = load_run(args.run_dir)
    metrics = evaluate_model(model, standardizer, data.x, data.y)
    metrics.update(data_source=data.source, data_sha256=data.sha256, synthetic=data.synthetic,
                   n_rows=len(data), trained_on=saved.get("data_source"))
    if args.json:
        print(json.dumps(metrics, indent=2, sort_keys=True))
        return 0
    print(f"{args.run_dir}: accuracy {metrics['accuracy']:.4f} on {len(data)} rows of {data.source}"
          + ("  [SYNTHETIC DATA]" if data.synthetic else ""))
    print(f"{'class':>16} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>7}")
    for name, row in metrics["per_class"].items():
        print(f"{name:>16} {row['precision']:9.3f} {row['recall']:7.3f} {row['f1']:6.3f} {row['support']:7d}")
    print("confusion matrix (rows: true, columns: predicted):")
    for row in metrics["confusion_matrix"]:
        print("  " + " ".join(f"{v:5d}" for v in row))
    return 0


def cmd_export(args) -> int:
    if args.run_dir is None and args.triton is None:
        raise UsageError("kerasnn export: give RUN_DIR (to write ONNX), --triton DIR, or both")
    onnx_path = Path(args.out) if args.run_dir else Path(args.model)
    if args.run_dir is not None:
        _select_backend(args.backend)
        from kerasnn.data import synthetic_phone_prices
        from kerasnn.export import export_onnx
        from kerasnn.training import load_run

        model, standardizer, metrics = load_run(args.run_dir)
        summary = export_onnx(
            model, standardizer, onnx_path,
            sample_x=synthetic_phone_prices(1000, seed=0).x,
            metadata={
                "data_sha256": metrics.get("data_sha256") or "",
                "data_source": Path(str(metrics.get("data_source", ""))).name,
                "synthetic": "true" if metrics.get("synthetic") else "false",
                "accuracy": metrics.get("accuracy"),
                "accuracy_kind": f"held-out {metrics.get('config', {}).get('test_size', 0.2):.0%} stratified test split",
                "training": metrics.get("config", {}),
                "trained_backend": metrics.get("backend", ""),
            },
        )
        print(f"exported {onnx_path} (sha256 {summary['sha256']}; onnxruntime vs Keras max |diff| "
              f"{summary['max_abs_diff']:.2g} at batch 1, 7, 1000)")
    if args.triton is not None:
        from kerasnn.serve.triton import export_triton

        written = export_triton(onnx_path, args.triton)
        print(f"wrote Triton model repository {written}")
    return 0


def cmd_parity(args) -> int:
    _select_backend(args.backend)
    from kerasnn.parity import main as parity_main

    return parity_main(["--json"] if args.json else [])


def build_parser() -> argparse.ArgumentParser:
    from kerasnn import __version__
    from kerasnn.training import OPTIMIZERS

    parser = _Parser(prog="kerasnn", description="PyTorch-faithful Keras 3 toolkit: phone-price "
                     "training, tuning, ONNX export and serving.")
    parser.add_argument("--version", action="version", version=f"kerasnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def backend_option(p):
        p.add_argument("--backend", choices=BACKENDS,
                       help="Keras backend (default: $KERAS_BACKEND, else tensorflow)")

    def data_options(p):
        p.add_argument("--data", metavar="PATH",
                       help="phone-price CSV (default: $KERASNN_DATA, else data/phone_price.csv)")
        p.add_argument("--synthetic", type=positive_int, metavar="N",
                       help="use N generated schema-valid rows instead of a file (no real accuracy)")
        p.add_argument("--seed", type=int, default=0, help="seed for the split, weights and shuffling")

    train_p = sub.add_parser("train", help="train and evaluate the phone-price model; write a run directory")
    data_options(train_p)
    backend_option(train_p)
    train_p.add_argument("--epochs", type=positive_int, default=50)
    train_p.add_argument("--batch-size", type=positive_int, default=8)
    train_p.add_argument("--lr", type=positive_float, default=1e-4, help="learning rate (default 1e-4)")
    train_p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    train_p.add_argument("--weight-decay", type=float, default=None,
                         help="torch's weight_decay for the optimizer (default: torch's default)")
    train_p.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=True,
                         help="standardize features with statistics of the training part (default: on; "
                              "--no-standardize is the tutorial's raw-feature baseline)")
    train_p.add_argument("--test-size", type=fraction, default=0.2)
    train_p.add_argument("--hidden", type=positive_int, nargs="+", default=[128, 256], metavar="UNITS",
                         help="hidden layer widths (default: 128 256)")
    train_p.add_argument("--dropout", type=float, default=0.0)
    train_p.add_argument("--batch-norm", action="store_true")
    train_p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1, help="Keras fit verbosity")
    train_p.add_argument("--out", metavar="RUN_DIR", help="run directory to create (default: runs/<time>-<backend>)")
    train_p.set_defaults(func=cmd_train)

    eval_p = sub.add_parser("evaluate", help="evaluate a saved run on a data file")
    eval_p.add_argument("run_dir", metavar="RUN_DIR")
    data_options(eval_p)
    backend_option(eval_p)
    eval_p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    eval_p.set_defaults(func=cmd_evaluate)

    export_p = sub.add_parser("export", help="export a run to ONNX and/or write a Triton model repository")
    export_p.add_argument("run_dir", metavar="RUN_DIR", nargs="?")
    export_p.add_argument("--out", default=str(DEFAULT_MODEL), help=f"ONNX file to write (default {DEFAULT_MODEL})")
    export_p.add_argument("--triton", metavar="DIR", help="also write a Triton model repository into DIR")
    export_p.add_argument("--model", default=str(DEFAULT_MODEL),
                          help="with --triton and no RUN_DIR: the ONNX model to package")
    backend_option(export_p)
    export_p.set_defaults(func=cmd_export)

    parity_p = sub.add_parser("parity", help="compare kerasnn's classes with torch on the current backend")
    backend_option(parity_p)
    parity_p.add_argument("--json", action="store_true")
    parity_p.set_defaults(func=cmd_parity)

    from kerasnn.serve.commands import register as register_serving
    from kerasnn.tuning_cli import register as register_tuning

    register_serving(sub)
    register_tuning(sub)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (KerasnnError, ValueError) as exc:
        if os.environ.get("KERASNN_DEBUG"):
            raise
        message = " ".join(str(exc).split())
        print(f"kerasnn: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kerasnn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

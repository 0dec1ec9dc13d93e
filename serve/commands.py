"""``kerasnn serve`` and ``kerasnn ui``: command-line entry points of the serving side.

``kerasnn.cli`` calls :func:`register` with its argparse sub-parsers. Importing this
module is cheap (argparse and the standard library only); FastAPI, uvicorn, Gradio and
onnxruntime are imported inside the commands.

``--model`` defaults to ``$KERASNN_MODEL`` if set, else ``models/phone_price.onnx``
relative to the current directory (run from the repository root). Both commands verify
the model before opening a socket: a missing or invalid model, a sha256 mismatch or a
bad option prints one line on stderr and returns exit code 2 (each ``func`` does this
itself, so it behaves the same when called directly or through ``kerasnn.cli``).

``kerasnn serve --workers N`` (N > 1) runs N uvicorn worker processes that each build
the app with :func:`kerasnn.serve.api.app_from_env` from ``KERASNN_SERVE_*`` variables,
and points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory (unless already set) so
``/metrics`` adds up all workers.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from kerasnn import argtypes
from kerasnn.argtypes import positive_int
from kerasnn.errors import KerasnnError

__all__ = ["default_model_path", "register", "serve_command", "ui_command"]

_DEFAULT_RELATIVE = Path("models") / "phone_price.onnx"


def default_model_path() -> Path:
    """``$KERASNN_MODEL`` if set, else ``models/phone_price.onnx`` under the current directory."""
    return Path(os.environ.get("KERASNN_MODEL") or _DEFAULT_RELATIVE)


def _common(parser: argparse.ArgumentParser, port: int) -> None:
    parser.add_argument("--model", type=Path, default=None,
                        help="ONNX model with its .sha256 record beside it "
                             "(default: $KERASNN_MODEL or models/phone_price.onnx in the current directory)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=argtypes.port, default=port, help=f"TCP port (default: {port})")


def register(subparsers) -> None:
    """Add the ``serve`` and ``ui`` sub-commands to an argparse ``subparsers`` object."""
    serve = subparsers.add_parser(
        "serve", help="serve the ONNX model over HTTP (Open Inference Protocol v2, /predict, UI at /ui)",
        description="Serve the phone-price ONNX model with FastAPI + uvicorn. The model is verified first.")
    _common(serve, 8000)
    serve.add_argument("--workers", type=positive_int, default=1, help="uvicorn worker processes (default: 1)")
    serve.add_argument("--threads", type=positive_int, default=1,
                       help="onnxruntime intra-op threads per worker (default: 1)")
    serve.add_argument("--max-rows", type=positive_int, default=None,
                       help="largest batch per request (default: 10000)")
    serve.add_argument("--max-body-mb", type=float, default=10.0, help="request body cap in MB (default: 10)")
    serve.add_argument("--no-ui", action="store_true", help="do not mount the Gradio UI at /ui")
    serve.add_argument("--access-log", action="store_true", help="log every request (slower)")
    serve.set_defaults(func=serve_command)

    ui = subparsers.add_parser("ui", help="run the Gradio UI standalone",
                               description="Run the phone-price Gradio UI on its own (no HTTP API).")
    _common(ui, 7860)
    ui.add_argument("--threads", type=positive_int, default=1, help="onnxruntime intra-op threads (default: 1)")
    ui.set_defaults(func=ui_command)


def _refuse(exc: Exception) -> int:
    message = " ".join(str(exc).split()) or type(exc).__name__
    print(f"kerasnn: error: {message}", file=sys.stderr)
    return 2


def _settings(args: argparse.Namespace):
    from .predictor import DEFAULT_MAX_ROWS
    from .service import ServiceSettings

    max_mb = getattr(args, "max_body_mb", 10.0)
    if not max_mb > 0:
        raise _OptionError(f"--max-body-mb must be positive, got {max_mb}")
    return ServiceSettings(
        model_path=Path(args.model) if args.model else default_model_path(),
        threads=getattr(args, "threads", 1) or 1,
        max_rows=getattr(args, "max_rows", None) or DEFAULT_MAX_ROWS,
        max_body_bytes=int(max_mb * 1024 * 1024),
        ui=not getattr(args, "no_ui", False),
    )


class _OptionError(KerasnnError, ValueError):
    """A command-line option is invalid."""


def serve_command(args: argparse.Namespace) -> int:
    """``kerasnn serve``: verify the model, then run uvicorn until interrupted. Exit code."""
    try:
        settings = _settings(args)
        from .predictor import Predictor

        Predictor(settings.model_path, threads=settings.threads, max_rows=settings.max_rows)  # verify first
        workers = getattr(args, "workers", 1) or 1
        return _run_uvicorn(settings, args.host, args.port, workers, getattr(args, "access_log", False))
    except KerasnnError as exc:
        return _refuse(exc)


def _run_uvicorn(settings, host: str, port: int, workers: int, access_log: bool) -> int:
    import uvicorn

    common = {"host": host, "port": port, "loop": "uvloop", "http": "httptools", "access_log": access_log,
                  "log_level": "info", "timeout_graceful_shutdown": 5}
    if workers == 1:
        from .api import create_app

        uvicorn.run(create_app(settings), **common)
        return 0
    import tempfile

    os.environ.update(settings.to_env())
    cleanup = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        cleanup = tempfile.TemporaryDirectory(prefix="kerasnn-prometheus-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = cleanup.name
    try:
        uvicorn.run("kerasnn.serve.api:app_from_env", factory=True, workers=workers, **common)
    finally:
        if cleanup is not None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            cleanup.cleanup()
    return 0


def ui_command(args: argparse.Namespace) -> int:
    """``kerasnn ui``: verify the model, then run the Gradio UI until interrupted. Exit code."""
    try:
        model = Path(args.model) if args.model else default_model_path()
        from .predictor import Predictor

        predictor = Predictor(model, threads=getattr(args, "threads", 1) or 1)
        from .ui import launch

        launch(predictor, host=args.host, port=args.port, block=True)
        return 0
    except KerasnnError as exc:
        return _refuse(exc)

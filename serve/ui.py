"""Gradio web UI around the same :class:`~kerasnn.serve.predictor.Predictor` as the HTTP service.

:func:`build_demo` returns a ``gr.Blocks`` with two tabs:

- **Single phone**: one input per feature of the served model's schema (numbers bounded
  by ``valid_min``/``valid_max`` with the unit in the label and the training range in
  the hint; checkboxes for the 0/1 features), a *Predict* button and a ``gr.Label``
  with every class probability; four real phones as examples. API name ``predict``.
- **Batch CSV**: upload a CSV (format of :mod:`kerasnn.serve.csvio`), see the rows
  with their predictions in a table and download them as CSV. API name
  ``predict_csv``.

Invalid input is shown as a Gradio error naming the field (or CSV line) and why.
:func:`mount_ui` mounts it into the FastAPI app at ``/ui``; :func:`launch` runs it
standalone. Gradio analytics are disabled and nothing is shared: the UI never reaches
beyond the machine (the default theme's fonts are served locally).
"""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no phoning home

import io
import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd

from .csvio import CsvCodec, TooManyRows, decode_csv_bytes
from .predictor import Predictor
from .rows import RowParser
from .validation import InputValidationError

__all__ = ["EXAMPLES", "UI_PATH", "build_demo", "launch", "mount_ui"]

UI_PATH = "/ui"

#: Four real phones: the first rows of the public training data (true price_range 1, 2, 2, 1).
_EXAMPLE_COLUMNS = ("battery_power", "blue", "clock_speed", "dual_sim", "fc", "four_g", "int_memory", "m_dep",
                    "mobile_wt", "n_cores", "pc", "px_height", "px_width", "ram", "sc_h", "sc_w", "talk_time",
                    "three_g", "touch_screen", "wifi")
_EXAMPLE_VALUES = (
    (842, 0, 2.2, 0, 1, 0, 7, 0.6, 188, 2, 2, 20, 756, 2549, 9, 7, 19, 0, 0, 1),
    (563, 1, 0.5, 1, 2, 1, 41, 0.9, 145, 5, 6, 1263, 1716, 2603, 11, 2, 9, 1, 1, 0),
    (615, 1, 2.5, 0, 0, 0, 10, 0.8, 131, 6, 9, 1216, 1786, 2769, 16, 8, 11, 1, 0, 0),
    (1821, 1, 1.2, 0, 13, 1, 44, 0.6, 141, 2, 14, 1208, 1212, 1411, 8, 2, 15, 1, 1, 0),
)
EXAMPLES: list[dict[str, float]] = [dict(zip(_EXAMPLE_COLUMNS, row, strict=True)) for row in _EXAMPLE_VALUES]

_TITLE = "Phone price range"


class _Handlers:
    """The UI callbacks, bound to one predictor (thread-safe: Gradio runs them in threads)."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor
        self.schema = predictor.schema
        self.rows = RowParser(self.schema, predictor.checker)
        self.csv = CsvCodec(self.schema, predictor.checker)

    def predict(self, *values) -> dict[str, float]:
        row = {}
        for f, v in zip(self.schema.features, values):
            if isinstance(v, bool):
                v = int(v)
            if v is None:
                raise gr.Error(f"{f.label}: missing value")
            row[f.name] = v
        try:
            x = self.rows.rows_to_array([row])
        except InputValidationError as exc:
            raise gr.Error("; ".join(f"{p.field}: {p.message}" for p in exc.problems)) from None
        pred = self.predictor.predict(x, checked=True)
        return {c: float(p) for c, p in zip(self.schema.classes, pred.probabilities[0])}

    def predict_csv(self, path: str | None) -> tuple[pd.DataFrame, str]:
        if not path:
            raise gr.Error("upload a CSV file first")
        data = Path(path).read_bytes()
        try:
            table = self.csv.parse(decode_csv_bytes(data), self.predictor.max_rows)
        except TooManyRows as exc:
            raise gr.Error(str(exc)) from None
        except InputValidationError as exc:
            raise gr.Error(f"{Path(path).name}: {exc}") from None
        pred = self.predictor.predict(table.x, checked=True)
        text = self.csv.render(table.cells, pred.probabilities, pred.labels)
        out_dir = Path(tempfile.mkdtemp(prefix="kerasnn-ui-"))
        out = out_dir / f"{Path(path).stem}_predictions.csv"
        out.write_text(text, encoding="utf-8")
        return pd.read_csv(io.StringIO(text)), str(out)


def _example_rows(schema) -> list[list]:
    rows = []
    for ex in EXAMPLES:
        if all(f.name in ex for f in schema.features):
            rows.append([bool(ex[f.name]) if f.kind == "flag" else ex[f.name] for f in schema.features])
    return rows


def _inputs(schema) -> list[gr.components.Component]:
    numbers = [f for f in schema.features if f.kind != "flag"]
    flags = [f for f in schema.features if f.kind == "flag"]
    made: dict[str, gr.components.Component] = {}
    per_row = 4
    for start in range(0, len(numbers), per_row):
        with gr.Row():
            for f in numbers[start:start + per_row]:
                mid = (f.observed_min + f.observed_max) / 2
                made[f.name] = gr.Number(
                    value=round(mid) if f.kind == "int" else round(mid, 1),
                    label=f.label,
                    info=f"{f.description}; training data {f.observed_min:g}-{f.observed_max:g}, "
                         f"accepted {f.valid_min:g}-{f.valid_max:g}",
                    minimum=f.valid_min, maximum=f.valid_max,  # Gradio refuses values outside
                    step=1 if f.kind == "int" else 0.1,  # no rounding: a fraction is refused by name
                    elem_id=f"feature-{f.name}",
                )
    with gr.Row():
        for f in flags:
            made[f.name] = gr.Checkbox(value=False, label=f.label, info=f.description,
                                       elem_id=f"feature-{f.name}")
    return [made[f.name] for f in schema.features]


def build_demo(predictor: Predictor) -> gr.Blocks:
    """The two-tab Blocks app for ``predictor`` (see the module docstring)."""
    h = _Handlers(predictor)
    schema = predictor.schema
    with gr.Blocks(title=_TITLE, analytics_enabled=False) as demo:
        gr.Markdown(f"# {_TITLE}\nPredicts one of: {', '.join(schema.classes)}. "
                    f"Model `{predictor.path.name}` (sha256 `{predictor.sha256[:12]}…`).")
        with gr.Tab("Single phone"):
            inputs = _inputs(schema)
            button = gr.Button("Predict", variant="primary", elem_id="predict-button")
            result = gr.Label(num_top_classes=schema.n_classes, label="Price range", elem_id="prediction")
            button.click(h.predict, inputs=inputs, outputs=result, api_name="predict")
            examples = _example_rows(schema)
            if examples:
                gr.Examples(examples=examples, inputs=inputs, label="Real phones from the training data")
        with gr.Tab("Batch CSV"):
            gr.Markdown(f"Upload a CSV whose header names the {schema.n_features} features "
                        f"({schema.target} is ignored); at most {predictor.max_rows} rows.")
            upload = gr.File(label="CSV file", file_types=[".csv"], type="filepath", elem_id="csv-upload")
            run = gr.Button("Predict CSV", variant="primary", elem_id="predict-csv-button")
            table = gr.Dataframe(label="Predictions", interactive=False, elem_id="csv-table")
            download = gr.File(label="Download predictions", interactive=False, elem_id="csv-download")
            run.click(h.predict_csv, inputs=upload, outputs=[table, download], api_name="predict_csv")
    return demo


def mount_ui(app, predictor: Predictor, path: str = UI_PATH):
    """Mount the UI into the FastAPI ``app`` at ``path``; returns the app."""
    return gr.mount_gradio_app(app, build_demo(predictor), path=path, ssr_mode=False, mcp_server=False)


def launch(predictor: Predictor, *, host: str = "127.0.0.1", port: int = 7860, block: bool = True) -> gr.Blocks:
    """Run the UI standalone (never shared)."""
    demo = build_demo(predictor)
    demo.launch(server_name=host, server_port=port, share=False, ssr_mode=False, mcp_server=False,
                prevent_thread_lock=not block, inbrowser=False, quiet=True)
    return demo

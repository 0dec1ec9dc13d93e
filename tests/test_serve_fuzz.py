"""Property-based fuzzing of the service's own OpenAPI document (schemathesis, in process).

Every operation gets schema-valid (positive) and schema-violating (negative) requests;
none may be answered with a 5xx, and every answer must use a status code the document
declares.

Schemathesis' pytest integration (``schemathesis.pytest.from_fixture``) does not work
with pytest 9 (it reads a private ``_nodeid``), so the test drives each operation's
Hypothesis strategy itself.
"""

from __future__ import annotations

import onnx_fixtures as fx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from kerasnn.serve.api import create_app
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

pytestmark = pytest.mark.serving

EXAMPLES_PER_MODE = 30


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    model = fx.write_model(tmp_path_factory.mktemp("model") / "phone_price.onnx")
    app = create_app(model_path=model, ui=False, max_rows=50, max_body_bytes=1_000_000)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _operations(schema):
    return [result.ok() for result in schema.get_all_operations()]


def test_the_document_lists_every_route(api_schema):
    labels = {op.label for op in _operations(api_schema)}
    assert {"POST /predict", "POST /predict/csv", "POST /v2/models/{model_name}/infer", "GET /v2/health/live",
            "GET /v2/models/{model_name}/versions/{model_version}/ready", "GET /metrics"} <= labels


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_no_input_produces_a_server_error(api_schema, mode):
    checked, nothing_to_violate = [], []
    operations = _operations(api_schema)
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES_PER_MODE, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            case.call_and_validate(checks=[not_a_server_error, status_code_conformance])

        try:
            run()
        except Unsatisfiable:  # negative mode, operation without parameters or body
            assert mode is GenerationMode.NEGATIVE, operation.label
            nothing_to_violate.append(operation.label)
            continue
        except Exception as exc:
            raise AssertionError(f"{operation.label} ({mode.value}): {exc}") from exc
        checked.append(operation.label)
    assert len(checked) + len(nothing_to_violate) == len(operations)
    assert "POST /predict" in checked and "POST /v2/models/{model_name}/infer" in checked

"""No input gets a 5xx: schemathesis generates valid and invalid requests for every operation of
the OpenAPI document, in process against the real app (trained model and store loaded), sends
them with the API key and runs every check on each answer."""

import time

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS
from schemathesis.config import SchemathesisConfig

from trybank_tests.serving_tests.conftest import HEADERS

EXAMPLES = 100  # per operation and mode
# Schema-valid is not always acceptable: the event-time window (relative to now) and whole cents are
# rules JSON Schema cannot state, so a valid-looking transaction may get a 422 naming the field.
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "409", "422"]}}}
)


def _requests_only(app):
    """The app whose lifespan the test client runs: schemathesis starts an app's lifespan itself, and
    a second ServingState on the same lake would race the first for its files."""

    async def serve(scope, receive, send):
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})

    return serve


def test_every_operation_answers_every_input_without_a_server_error(client):
    schema = schemathesis.openapi.from_asgi("/openapi.json", _requests_only(client.app), config=CONFIG)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 6
    started, sent = time.monotonic(), 0
    for operation in operations:
        # Only a body can be invalid: the other operations take no input.
        for mode in GenerationMode if len(operation.body) else [GenerationMode.POSITIVE]:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
            def answers_as_documented(case):
                nonlocal sent
                sent += 1
                case.call_and_validate(headers=HEADERS, checks=CHECKS.get_all())

            answers_as_documented()
    print(f"schemathesis: {sent} requests over {len(operations)} operations in {time.monotonic() - started:.1f} s")

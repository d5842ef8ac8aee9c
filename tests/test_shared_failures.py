"""A detached subscriber's errors (subscriptions/shared.py): its group formats them as the
subscriber's own chain would have, masked and coded for this caller, then completes it."""
from __future__ import annotations

from types import SimpleNamespace

import orjson
from graphql import GraphQLError

from livecart.models.errors import not_found
from livecart.schema import build_schema
from livecart.schema.realtime import shared_execution
from livecart.subscriptions.shared import Failure, Operation, SharedDelivery
from tests.realtime_support import COMMENTS


def test_failures_are_masked_and_coded_per_caller_then_the_subscription_completes():
    sent: list = []
    finished: list[str] = []
    operation = Operation(
        lambda message, data: sent.append(orjson.loads(data)), "7", "next", COMMENTS, None, {"s": "1"},
        detach=None, finish=finished.append,
    )
    schema = build_schema()
    delivery = SharedDelivery(operation, shared_execution(schema, COMMENTS), SimpleNamespace(request=None), None, None)
    expected = not_found("comment", 3)
    crash = RuntimeError("password=hunter2 at db.internal")
    delivery.send_failure(Failure(None, [
        GraphQLError(str(expected), original_error=expected, path=["commentAdded"]),
        GraphQLError(str(crash), original_error=crash, path=["commentAdded", "author"]),
    ], ends=True))

    [result, complete] = sent
    assert result["id"] == "7" and result["type"] == "next" and result["payload"]["data"] is None
    first, second = result["payload"]["errors"]
    assert first["extensions"]["code"] == "NOT_FOUND" and first["message"] == str(expected)
    assert second["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "hunter2" not in orjson.dumps(result).decode()
    assert complete == {"id": "7", "type": "complete"} and finished == ["7"]

"""The published schema is the API: schemathesis over every operation of /api/schema, as an admin and
anonymously, in process (WSGI) against the test database.

Each operation gets a bounded number of generated requests (``EXAMPLES``; schemathesis' own explicit
examples first). A failure is a server error, a status code the schema does not list, a content type
it does not list, or a body that does not match the documented one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bms.wsgi import application
from tests.conftest import make_user
from tests.programs.factories import airing, channel, program

EXAMPLES = 8
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SETTINGS = hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same requests on every run: a failure here is reproducible, never flaky
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _load_schema() -> Any:
    # Generated in process, as /api/schema serves it (schemathesis' lazy fixture loader does not run
    # under pytest 9); requests go to the WSGI application, inside each test's database transaction.
    loaded = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
    loaded.app = application
    return loaded


schema = _load_schema()


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    # The WSGI handler closes "old" connections when a request starts and ends; inside a test's transaction
    # that drops it (PostgreSQL). Django's test client disconnects the same receivers for the same reason.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _data(db: Any, eager_tasks: None) -> None:
    ch = channel(code="nst1")
    for i in range(3):
        airing(program_obj=program(external_id=f"ABC{i}", channel_obj=ch))


@pytest.fixture
def admin_token(db: Any) -> str:
    user: User = make_user("schema-admin", "admin")
    return str(RefreshToken.for_user(user).access_token)


@schema.parametrize()
@SETTINGS
def test_every_operation_answers_as_documented_for_an_admin(case: Any, admin_token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_token}"}, checks=CHECKS)


@schema.parametrize()
@SETTINGS
def test_every_operation_answers_as_documented_anonymously(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)

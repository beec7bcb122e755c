"""The bad day, for real: a live stack (tests/ops/live.py: gunicorn as the Dockerfile starts it, a Celery
worker on demand) on PostgreSQL with its connection pool, and a Redis server of its own on a spare port
that the tests stop and start. Every test here needs PostgreSQL and Redis (CI: ``BMS_REQUIRE_SERVICES=1``;
on a bare machine they skip with the reason).

Each web worker's pool is sized small on purpose (``ASGI_THREADS=1``, so a pool of 2 per gunicorn worker: its
one request thread and a spare, and a 3 s pool timeout): a connection that is never returned shows within a
few requests, not hundreds. gunicorn runs 2 x cores + 1 sync workers, as the image sizes them, so the twenty
users below queue for them as they would on a pod.
Task time limits are short (45 s), so the broker's visibility timeout, sized from them, is 47 s and a
killed worker's messages come back within the test's time.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.ops.live import LiveStack, free_port, wait_until

SMALL_DATA = (
    "from django.core.management import call_command\n"
    "call_command('generate_broadcasts', seed=7, channels=1, programs=40, days=30)\n"
)
LIVE_ENV = {
    "DATABASE_POOL": "1",
    "ASGI_THREADS": "1",
    "DATABASE_POOL_TIMEOUT": "3",
    "CACHE_FALLBACK_RETRY_SECONDS": "2",
    "CELERY_TASK_SOFT_TIME_LIMIT": "40",
    "CELERY_TASK_TIME_LIMIT": "45",
    "SCHEDULE_TIME_BUDGET_SECONDS": "20",
    "SCHEDULE_TASK_SOFT_TIME_LIMIT": "40",
    "SCHEDULE_TASK_TIME_LIMIT": "45",
    "CELERY_VISIBILITY_MARGIN_SECONDS": "2",
    "CELERY_UNACKED_RESTORE_SECONDS": "1",
    "THROTTLE_USER": "100000/minute",
    "THROTTLE_CHAT": "100000/minute",
}


def spare_port() -> int:
    """A port the OS has just handed out: a fixed range would collide with another test run on the machine."""
    return free_port()


@dataclass
class RedisServer:
    """A ``redis-server`` of the suite's own (no persistence), stopped and started at will."""

    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._answers, timeout=10, what="redis-server", proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.proc = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@dataclass
class Traffic:
    """Status codes of requests sent by several threads (0 = no answer: connection error or timeout)."""

    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def server_errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code >= 500 or code == 0)


@dataclass
class Reliability:
    stack: LiveStack
    redis: RedisServer
    admin: str
    analyst: str

    def client(self, token: str | None = None, timeout: float = 30) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.analyst}"}
        return httpx.Client(base_url=self.stack.base_url, headers=headers, timeout=timeout)

    def traffic(
        self, requests: list[tuple[str, str, Any]], *, users: int, until: Callable[[], bool] | None = None
    ) -> Traffic:
        """``users`` threads send ``requests`` (method, path, JSON body) round-robin: once each, or until ``until()``."""
        out = Traffic()

        def user(offset: int) -> None:
            with self.client() as client:
                i = offset
                while True:
                    method, path, body = requests[i % len(requests)]
                    try:
                        response = client.request(method, path, json=body)
                        code = response.status_code
                        if code >= 500:
                            out.errors.append(f"{method} {path}: {code} {response.text[:200]}")
                    except httpx.HTTPError as exc:
                        code = 0
                        out.errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
                    out.statuses[code] += 1
                    i += users
                    if until is None and i >= len(requests):
                        return
                    if until is not None and until():
                        return

        with ThreadPoolExecutor(max_workers=users) as pool:
            for future in [pool.submit(user, n) for n in range(users)]:
                future.result()
        return out

    def deep_health(self) -> dict[str, Any]:
        response = httpx.get(f"{self.stack.base_url}/health/deep", timeout=30)
        return dict(response.json())


NORMAL = [
    ("GET", "/api/v1/programs", None),
    ("GET", "/api/v1/programs?search=a", None),
    ("GET", "/api/v1/models", None),
    ("GET", "/api/v1/models/production", None),
    ("POST", "/api/v1/export", {"format": "csv", "dataset": "programs"}),
]


@pytest.fixture(scope="package")
def reliability(tmp_path_factory: pytest.TempPathFactory, loopback: None) -> Iterator[Reliability]:
    from django.conf import settings

    if shutil.which("redis-server") is None:
        why = "needs the redis-server binary (apt-get install redis-server)"
        pytest.fail(why) if REQUIRE_SERVICES else pytest.skip(why)
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql" or not settings.REDIS_URL:
        pytest.skip("needs PostgreSQL and Redis: set DATABASE_URL and REDIS_URL")  # the markers fail it in CI
    tmp = Path(tmp_path_factory.mktemp("reliability"))
    redis = RedisServer(port=spare_port(), log=tmp / "redis.log")
    redis.start()
    stack = LiveStack.prepare(tmp)
    stack.env.update({**LIVE_ENV, "REDIS_URL": redis.url})
    stack.web_port = spare_port()
    try:
        stack.start_web()
        stack.manage("shell", "-c", SMALL_DATA)
        yield Reliability(
            stack=stack, redis=redis, admin=stack.token("live_admin"), analyst=stack.token("live_analyst")
        )
    finally:
        stack.stop()
        redis.stop()


def wait_for(check: Callable[[], bool], *, timeout: float, what: str) -> float:
    """Poll ``check`` until it holds; returns the seconds it took."""
    started = time.monotonic()
    wait_until(check, timeout=timeout, what=what, interval=0.2)
    return time.monotonic() - started

"""A real BMS stack for the ops tests: gunicorn (WSGI, sync workers) and, on demand, one Celery worker, as
subprocesses.

The processes get the environment docker/docker-compose.yml gives its containers (``DATABASE_URL``,
``REDIS_URL``, ``SECRET_KEY``, ``LOG_JSON``, ``BMS_VAR_DIR``, plain ``bms.settings``), pointed at the
services this test run uses:
- PostgreSQL run (``DATABASE_URL`` set for pytest): a throwaway database ``<test db>_live``, dropped after.
- default run: a SQLite file in a temporary ``BMS_VAR_DIR``.
- Redis (``REDIS_URL`` set): the same Redis database as the test run, so the worker has a broker.

gunicorn runs as the image runs it (``bms/gunicorn_conf.py``, ``WEB_CONCURRENCY`` sync workers: 2 x cores + 1
unless the caller sets it, metrics in multiprocess mode), so a /metrics scrape adds up every worker.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LIVE_PASSWORD = "live-pw-not-secret"

# Strip what only the test process should see; everything else (PATH, HOME, ...) is inherited.
_TEST_ONLY_ENV = (
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "DATABASE_TEST_NAME",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "CELERY_TASK_ALWAYS_EAGER",
    "BMS_REQUIRE_SERVICES",
    "PROMETHEUS_MULTIPROC_DIR",
    "CELERY_METRICS_PORT",
    "PYTEST_CURRENT_TEST",
)

# One Django boot for both steps: migrate the empty database, then make a user per role.
_SETUP_DATABASE = """
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
from django.contrib.auth.models import Group, User
for name, role in (("live_analyst", "analyst"), ("live_admin", "admin"), ("live_viewer", "viewer")):
    user = User.objects.create_user(username=name, password="{pw}", email=name + "@example.com")
    user.is_staff = role == "admin"
    user.save(update_fields=["is_staff"])
    user.groups.add(Group.objects.get_or_create(name=role)[0])
""".replace("{pw}", LIVE_PASSWORD)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_live_url() -> tuple[str, str] | None:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        return None
    name = f"{db.get('TEST', {}).get('NAME') or 'test_' + db['NAME']}_live"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return name, f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"


def _admin_sql(sql: str) -> None:
    import psycopg

    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=int(db["PORT"] or 5432),
        user=db["USER"],
        password=db.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        conn.execute(sql)


@dataclass
class Scrape:
    """One /metrics scrape: sample values by (name, labels) and the family names it declares."""

    text: str
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = field(default_factory=dict)
    families: dict[str, str] = field(default_factory=dict)  # family name -> type

    @classmethod
    def parse(cls, text: str) -> Scrape:
        scrape = cls(text=text)
        for family in text_string_to_metric_families(text):
            scrape.families[family.name] = family.type
            for sample in family.samples:
                scrape.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return scrape

    def value(self, name: str, **labels: str) -> float:
        """Sum of the samples called ``name`` whose labels include ``labels`` (0 when none)."""
        wanted = set(labels.items())
        return sum(v for (n, lbls), v in self.samples.items() if n == name and wanted <= lbls)

    def sample_names(self) -> set[str]:
        return {name for name, _ in self.samples}

    def exports(self, metric: str) -> bool:
        """Whether a PromQL metric name is served: a sample, or a declared family (+ its type's suffixes)."""
        if metric in self.sample_names() or metric in self.families:
            return True
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("_sum", "_count", "_created"),
            "gauge": (),
        }
        return any(metric == fam + s for fam, kind in self.families.items() for s in suffixes.get(kind, ()))


@dataclass
class LiveStack:
    tmp: Path
    env: dict[str, str]
    web_port: int
    pg_db: str | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: dict[str, Path] = field(default_factory=dict)
    worker_port: int | None = None
    worker_proc: subprocess.Popen[bytes] | None = None
    ws_port: int | None = None
    proxy_port: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    # --- processes ------------------------------------------------------------------------------
    @classmethod
    def prepare(cls, tmp: Path) -> LiveStack:
        env = {k: v for k, v in os.environ.items() if k not in _TEST_ONLY_ENV}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "bms.settings",
                "SECRET_KEY": "ops-live-test-not-secret-0123456789",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "LOG_JSON": "1",
                "LOG_LEVEL": "INFO",
                "BMS_VAR_DIR": str(tmp / "var"),
                "PREDICTION_LOG_BACKGROUND": "0",
                "PYTHONUNBUFFERED": "1",
                "SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback, as docker-compose.yml serves it
                # The proxy in front (nginx, start_proxy) is on loopback: trusted as compose trusts its network.
                "TRUSTED_PROXIES": "127.0.0.1/32",
                # "ops-probe" is a queue no worker consumes: the queue-depth test fills it at will.
                "CELERY_MONITORED_QUEUES": "celery,ops-probe",
                # The seeding generation would queue the history-state job ahead of what these tests send
                # and count (queue depth, tasks run, the worker to kill): tests/predictions cover that job.
                "HISTORY_PREBUILD": "0",
            }
        )
        pg = _postgres_live_url()
        pg_db = None
        if pg is not None:
            pg_db, env["DATABASE_URL"] = pg
            env["DATABASE_POOL"] = "0"
            _admin_sql(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
            _admin_sql(f'CREATE DATABASE "{pg_db}"')
        if settings.REDIS_URL:
            env["REDIS_URL"] = settings.REDIS_URL
        return cls(tmp=tmp, env=env, web_port=free_port(), pg_db=pg_db)

    def manage(self, *args: str, timeout: float = 300) -> None:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            check=False,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if done.returncode != 0:
            raise AssertionError(f"manage.py {args[0]} failed:\n{done.stderr.decode(errors='replace')[-3000:]}")

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self.tmp / f"{name}.log"
        self.logs[name] = log
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def start_web(self) -> None:
        self.manage("shell", "-c", _SETUP_DATABASE)
        mp_dir = self.tmp / "prometheus-multiproc-web"
        env = {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(mp_dir)}
        env.setdefault("WEB_CONCURRENCY", str(2 * (os.cpu_count() or 1) + 1))
        proc = self._spawn(
            "web",
            [
                *(str(BIN / "gunicorn"), "-c", str(ROOT / "bms" / "gunicorn_conf.py")),
                *("--bind", f"127.0.0.1:{self.web_port}"),
            ],
            env,
        )
        workers = int(env["WEB_CONCURRENCY"])
        wait_until(lambda: self._all_workers_up(workers), timeout=120, what="gunicorn workers", proc=proc)

    def _all_workers_up(self, workers: int) -> bool:
        """Every worker has loaded the app (bms/gunicorn_conf.py logs it) and /health answers."""
        ready = self.logs["web"].read_text(errors="replace").count("worker ready")
        return ready >= workers and self._ok(f"{self.base_url}/health")

    def start_ws(self) -> None:
        """uvicorn for WebSockets, with the flags docker/docker-compose.yml's ``ws`` service gives it."""
        port = self.ws_port = free_port()
        proc = self._spawn(
            "ws",
            [
                *(str(BIN / "uvicorn"), "bms.asgi:application", "--host", "127.0.0.1", "--port", str(port)),
                *("--no-proxy-headers", "--no-access-log"),
            ],
            self.env,
        )
        wait_until(lambda: self._ok(f"http://127.0.0.1:{port}/health"), timeout=90, what="uvicorn (ws)", proc=proc)

    def start_proxy(self, nginx: str) -> None:
        """The real nginx with docker/nginx/nginx.conf, its upstreams and paths moved to loopback and ``tmp``."""
        assert self.ws_port is not None, "start_ws first"
        port = self.proxy_port = free_port()
        home = self.tmp / "nginx"
        home.mkdir(exist_ok=True)
        conf = home / "nginx.conf"
        conf.write_text(
            nginx_conf_on_loopback(
                (ROOT / "docker" / "nginx" / "nginx.conf").read_text(),
                listen=port,
                web=self.web_port,
                ws=self.ws_port,
                home=home,
            )
        )
        argv = [nginx, "-p", str(home), "-e", str(home / "error.log"), "-c", str(conf), "-g", "daemon off;"]
        proc = self._spawn("proxy", argv, self.env)
        wait_until(lambda: self._ok(f"{self.proxy_url}/health"), timeout=30, what="nginx", proc=proc)

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    def start_worker(self, *, concurrency: int = 1) -> None:
        """One prefork worker in multiprocess metrics mode, as compose runs it."""
        self.worker_port = free_port()
        mp_dir = self.tmp / "prometheus-multiproc"
        mp_dir.mkdir(exist_ok=True)
        env = {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(mp_dir), "CELERY_METRICS_PORT": str(self.worker_port)}
        env["CELERY_METRICS_ADDR"] = "127.0.0.1"
        proc = self.worker_proc = self._spawn(
            "worker",
            [
                *(str(BIN / "celery"), "-A", "bms", "worker", "-l", "info", "--concurrency", str(concurrency)),
                *("--pool", "prefork"),
                *(
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-n",
                    f"ops-live-{self.worker_port}@%h",
                ),
            ],
            env,
        )
        url = f"http://127.0.0.1:{self.worker_port}/metrics"
        wait_until(lambda: self._ok(url), timeout=90, what="worker /metrics", proc=proc)

    def stop_worker(self) -> None:
        """Stop the worker at once after its test: it must not consume other tests' messages."""
        proc = self.worker_proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def kill_worker(self) -> None:
        """SIGKILL the worker and its pool processes at once, as a lost container or node would."""
        import psutil

        proc = self.worker_proc
        assert proc is not None, "no worker started"
        assert proc.poll() is None, "the worker is not running"
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        for member in family:
            member.kill()
        psutil.wait_procs(family, timeout=10)
        proc.wait(timeout=5)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self.pg_db:
            _admin_sql(f'DROP DATABASE IF EXISTS "{self.pg_db}" WITH (FORCE)')

    # --- HTTP -----------------------------------------------------------------------------------
    @staticmethod
    def _ok(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        base: str | None = None,
    ) -> tuple[int, Any]:
        """``method path`` on gunicorn (or on ``base``, e.g. ``proxy_url``); the status and the decoded body."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(f"{base or self.base_url}{path}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, payload = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, exc.read()
        try:
            return status, json.loads(payload) if payload else None
        except ValueError:
            return status, payload.decode(errors="replace")

    def token(self, username: str, *, base: str | None = None) -> str:
        status, body = self.request(
            "POST", "/api/v1/auth/token", body={"username": username, "password": LIVE_PASSWORD}, base=base
        )
        assert status == 200, body
        return str(body["access"])

    def scrape_web(self) -> Scrape:
        with urllib.request.urlopen(f"{self.base_url}/metrics", timeout=10) as resp:
            return Scrape.parse(resp.read().decode())

    def scrape_worker(self) -> Scrape:
        assert self.worker_port is not None, "worker not started"
        with urllib.request.urlopen(f"http://127.0.0.1:{self.worker_port}/metrics", timeout=10) as resp:
            return Scrape.parse(resp.read().decode())

    def log_lines(self, name: str) -> list[dict[str, Any]]:
        """The JSON log records a process wrote so far (non-JSON lines, e.g. gunicorn's banner, skipped)."""
        records = []
        for line in self.logs[name].read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
        return records


def nginx_conf_on_loopback(conf: str, *, listen: int, web: int, ws: int, home: Path) -> str:
    """Compose's nginx config with the upstreams, listener and writable paths of a loopback test run.

    Each rewrite must match exactly once: a config that changed shape fails here instead of being
    tested half-rewritten.
    """
    rewrites = {
        "server web:8000;": f"server 127.0.0.1:{web};",
        "server ws:8000;": f"server 127.0.0.1:{ws};",
        "listen 8080;": f"listen 127.0.0.1:{listen};",
        "pid /tmp/nginx.pid;": f"pid {home / 'nginx.pid'};",
        "worker_processes auto;": "worker_processes 1;",
        "client_body_temp_path /tmp/client_body;": f"client_body_temp_path {home / 'client_body'};",
        "proxy_temp_path /tmp/proxy;": f"proxy_temp_path {home / 'proxy'};",
    }
    for old, new in rewrites.items():
        assert conf.count(old) == 1, f"docker/nginx/nginx.conf: expected {old!r} once"
        conf = conf.replace(old, new)
    return conf


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    interval: float = 0.25,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: process exited with {proc.returncode}")
        time.sleep(interval)
    raise AssertionError(f"{what}: not ready after {timeout}s")

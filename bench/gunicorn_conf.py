"""gunicorn as a standard deployment would run BMS's HTTP (WSGI, ``bms.wsgi``), for bench/predict.py.

bench/predict.py measures this against the custom ASGI handler (``bms.asgi`` under uvicorn, what the
image, compose and manifests run); docs/architecture.md says why the manifests keep uvicorn. Production
settings are written as they would be in the image: gthread workers (keep-alive, ``threads`` requests at
once per process), one process per container (each has its own Prometheus registry: scale with
replicas; the bench starts two with ``--workers 2``), no proxy headers believed, no access log.
"""

wsgi_app = "bms.wsgi:application"
bind = ["0.0.0.0:8000"]
workers = 1
worker_class = "gthread"
threads = 4
keepalive = 5  # seconds an idle keep-alive connection is held (a proxy in front reuses them)
# A worker that does not report for this long is restarted. Long work (training, LLM answers with their own
# timeouts) runs on workers or inside its own limits, so only a stuck process gets here.
timeout = 120
graceful_timeout = 25  # inside Kubernetes' 30 s termination grace period
accesslog = None  # bms.access_log writes one JSON line per request
# No proxy headers are believed here (like uvicorn --no-proxy-headers): bms.client_ip reads X-Forwarded-For
# from TRUSTED_PROXIES only, and SECURE_PROXY_SSL_HEADER decides about X-Forwarded-Proto.
forwarded_allow_ips = ""
# Bodies are parsed by Django with its own limits; these only stop absurd request lines and headers early.
limit_request_line = 8190
limit_request_fields = 100

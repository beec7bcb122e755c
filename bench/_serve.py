"""One uvicorn worker on its own SO_REUSEPORT socket: ``bench/_serve.py HOST PORT``.

bench/predict.py starts two of these on one port for "2 workers". ``uvicorn --workers 2`` shares a
single listening socket, and when a load generator opens its connections at once the first worker to
wake accepts all of them (seen here: throughput halved at random from run to run); with a socket per
worker the kernel spreads the connections between them, as a load balancer in front of two
containers would.
"""

from __future__ import annotations

import socket
import sys

import uvicorn


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    config = uvicorn.Config("bms.asgi:application", access_log=False, log_level="warning", lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()

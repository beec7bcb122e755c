"""A local OpenAI-compatible stub server (127.0.0.1 only) for the provider fallback chain.

Each provider gets a path prefix (``/groq/v1``, ``/gemini/v1`` ...) and a script: a list of replies,
each an HTTP status (an error) or an assistant message dict; the last one repeats.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class StubLLM:
    scripts: dict[str, list[Any]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    delay: dict[str, float] = field(default_factory=dict)
    port: int = 0

    def base_url(self, provider: str) -> str:
        return f"http://127.0.0.1:{self.port}/{provider}/v1"

    def hits(self, provider: str) -> int:
        return sum(1 for p, _ in self.requests if p == provider)

    def next_reply(self, provider: str) -> Any:
        script = self.scripts.get(provider) or [500]
        index = min(self.hits(provider) - 1, len(script) - 1)
        return script[index]


def text_reply(content: str, tokens: tuple[int, int] = (120, 30)) -> dict[str, Any]:
    return {"message": {"role": "assistant", "content": content}, "usage": tokens}


def tool_reply(name: str, args: dict[str, Any], tokens: tuple[int, int] = (100, 15)) -> dict[str, Any]:
    return {
        "message": {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": f"call_{name}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            ],
        },
        "usage": tokens,
    }


def _handler(stub: StubLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            provider = self.path.strip("/").split("/")[0]
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            stub.requests.append((provider, body))
            if stub.delay.get(provider):
                time.sleep(stub.delay[provider])
            reply = stub.next_reply(provider)
            if isinstance(reply, int):
                payload = json.dumps({"error": {"message": f"stub error {reply}", "type": "stub"}}).encode()
                self.send_response(reply)
                if reply == 429:
                    self.send_header("Retry-After", "0")
            else:
                prompt, completion = reply["usage"]
                finish = "tool_calls" if reply["message"].get("tool_calls") else "stop"
                payload = json.dumps(
                    {
                        "id": "chatcmpl-stub",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model", "stub"),
                        "choices": [{"index": 0, "message": reply["message"], "finish_reason": finish}],
                        "usage": {
                            "prompt_tokens": prompt,
                            "completion_tokens": completion,
                            "total_tokens": prompt + completion,
                        },
                    }
                ).encode()
                self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            # The client may have given up already (the timeout test).
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(payload)

    return Handler


@contextmanager
def running_stub(stub: StubLLM) -> Iterator[StubLLM]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    stub.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()

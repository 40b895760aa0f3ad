"""A small local implementation of the Lambda Runtime API (the interface a function's
runtime polls for events), enough to time cold starts and warm invokes of any
runtime: Rust's lambda_runtime and Python's awslambdaric alike."""

import json
import queue
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


class RuntimeApi:
    def __init__(self):
        self.events = queue.Queue()
        self.results = queue.Queue()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404, {})
                request_id, event = api.events.get()
                body = json.dumps(event).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 900_000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench")
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                ok = self.path.endswith("/response")
                api.results.put((time.perf_counter(), ok, body))
                self._reply(202, {})

            def _reply(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A runtime killed while it waits on /next drops its connection: expected.
        self.server.handle_error = lambda request, address: None
        self.address = f"127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, event, timeout=120):
        """Queue one event; (seconds until the response, succeeded, body)."""
        started = time.perf_counter()
        self.events.put((str(uuid.uuid4()), event))
        at, ok, body = self.results.get(timeout=timeout)
        return at - started, ok, body

    def close(self):
        self.server.shutdown()

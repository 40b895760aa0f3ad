"""A fault-injecting hop between Baton's components and the local AWS endpoint.

    python soak/fault_hop.py --port 4612 --upstream http://127.0.0.1:4611 \
        --faults faults.json --seed 7

Baton's Lambdas and tasks talk to AWS through this hop (the local stack points their
AWS_ENDPOINT_URL here when BATON_LOCAL_FAULTS names a fault file); moto's own calls
and the local Fargate runner go straight to moto. For each request the hop draws one
fault, by service (from the SigV4 credential scope) and the fractions in the file:

    {"s3":     {"error": 0.04, "reset": 0.02, "stall": 0.004, "delay": 0.03},
     "states": {"error": 0.04, "reset": 0.02, "stall": 0.004, "delay": 0.03},
     "ecs":    {...}, "stall_seconds": 25}

- error: answered without reaching moto: S3 503 SlowDown or 500 InternalError (XML),
  JSON services 400 ThrottlingException or 500 InternalFailure;
- reset: forwarded, then the connection is reset halfway through the response body;
- stall: forwarded, then the response stops halfway for `stall_seconds`, then resets;
- delay: forwarded at once, answered 0.2 to 3 s later.

Faults are transient by construction: only attempts before an operation's last one
are faulted (the AWS SDKs send `amz-sdk-request: attempt=N; max=M`), so the SDK's own
retries always get through; a request without that header is never faulted. AWS's
error shapes: https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html and
https://docs.aws.amazon.com/step-functions/latest/apireference/CommonErrors.html.

`GET /__fault_hop/stats` answers the faults injected so far, by service and kind.
"""

import argparse
import asyncio
import json
import random
import re
import signal
import socket
import struct
import sys
import time
import uuid
from collections import Counter
from urllib.parse import urlsplit

KINDS = ("error", "reset", "stall", "delay")
SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([a-z0-9-]+)/aws4_request")
ATTEMPT = re.compile(r"attempt=(\d+);\s*max=(\d+)")


class Hop:
    def __init__(self, upstream: str, faults: dict, seed: int):
        parts = urlsplit(upstream)
        self.host, self.port = parts.hostname, parts.port or 80
        self.faults = faults
        self.stall_seconds = float(faults.get("stall_seconds", 25))
        self.rng = random.Random(seed)
        self.counts = Counter()
        self.requests = Counter()

    def draw(self, service: str, headers: dict) -> str | None:
        """The fault for one request, or None."""
        self.requests[service] += 1
        match = ATTEMPT.search(headers.get("amz-sdk-request", ""))
        if not match or int(match[1]) >= int(match[2]):
            return None
        roll, edge = self.rng.random(), 0.0
        for kind in KINDS:
            edge += float(self.faults.get(service, {}).get(kind, 0))
            if roll < edge:
                self.counts[f"{service}.{kind}"] += 1
                return kind
        return None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await read_head(reader)
                if head is None:
                    return
                method, target, version, headers, raw_headers = head
                if target.startswith("/__fault_hop/stats"):
                    body = json.dumps({"faults": dict(self.counts), "requests": dict(self.requests)}).encode()
                    writer.write(response_bytes(200, "application/json", body))
                    await writer.drain()
                    continue
                if headers.get("expect", "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    await writer.drain()
                body = await read_body(reader, headers)
                service = service_of(headers)
                fault = self.draw(service, headers)
                if fault == "error":
                    writer.write(error_response(service, self.rng))
                    await writer.drain()
                    continue
                status_head, response_body = await self.forward(method, target, raw_headers, body)
                if fault == "delay":
                    # The answer is late, not the request: a request sent by a task
                    # that dies meanwhile still lands at once, as it would at AWS.
                    await asyncio.sleep(self.rng.uniform(0.2, 3.0))
                if fault in ("reset", "stall"):
                    # Half the body; nothing at all when there is no body (a response
                    # whose headers arrived whole would be no fault).
                    cut = len(response_body) // 2
                    writer.write(status_head + response_body[:cut] if response_body else b"")
                    await writer.drain()
                    if fault == "stall":
                        await asyncio.sleep(self.stall_seconds)
                    reset(writer)
                    return
                writer.write(status_head + response_body)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def forward(self, method: str, target: str, raw_headers: list, body: bytes):
        """One request to moto on its own connection; the whole response, with a
        Content-Length framing for the client."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            lines = [f"{method} {target} HTTP/1.1"]
            for name, value in raw_headers:
                if name.lower() in ("connection", "expect", "transfer-encoding", "content-length"):
                    continue
                lines.append(f"{name}: {value}")
            lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
            writer.write("\r\n".join(lines).encode("latin-1") + body)
            await writer.drain()
            status_line = (await reader.readline()).decode("latin-1").rstrip("\r\n")
            headers, raw = await read_headers(reader)
            code = int(status_line.split()[1])
            if method == "HEAD" or code in (204, 304) or 100 <= code < 200:
                payload = b""
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                payload = await read_chunked(reader)
            elif "content-length" in headers:
                payload = await reader.readexactly(int(headers["content-length"]))
            else:
                payload = await reader.read()
            out = [status_line]
            for name, value in raw:
                if name.lower() in ("connection", "transfer-encoding", "content-length", "keep-alive"):
                    continue
                out.append(f"{name}: {value}")
            length = headers.get("content-length") if method == "HEAD" else str(len(payload))
            if length is not None:
                out.append(f"Content-Length: {length}")
            out += ["", ""]
            return "\r\n".join(out).encode("latin-1"), payload
        finally:
            writer.close()


def service_of(headers: dict) -> str:
    match = SCOPE.search(headers.get("authorization", ""))
    return match[1] if match else "unsigned"


async def read_head(reader: asyncio.StreamReader):
    line = await reader.readline()
    if not line:
        return None
    method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers, raw = await read_headers(reader)
    return method, target, version, headers, raw


async def read_headers(reader: asyncio.StreamReader):
    headers, raw = {}, []
    while True:
        line = (await reader.readline()).decode("latin-1").rstrip("\r\n")
        if not line:
            return headers, raw
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
        raw.append((name.strip(), value.strip()))


async def read_body(reader: asyncio.StreamReader, headers: dict) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await read_chunked(reader)
    return await reader.readexactly(int(headers.get("content-length", "0")))


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readline()).split(b";")[0].strip(), 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readline()


def response_bytes(code: int, content_type: str, body: bytes, reason: str = "") -> bytes:
    reason = reason or {200: "OK", 400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}[code]
    return (f"HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"x-amzn-RequestId: {uuid.uuid4()}\r\n\r\n").encode() + body


def error_response(service: str, rng: random.Random) -> bytes:
    """An answer AWS gives under load: retryable by every SDK."""
    if service == "s3":
        code, name, message = rng.choice([(503, "SlowDown", "Please reduce your request rate."),
                                          (500, "InternalError", "We encountered an internal error. Please try again.")])
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{name}</Code><Message>{message}</Message>'
                f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>").encode()
        return response_bytes(code, "application/xml", body)
    code, name = rng.choice([(400, "ThrottlingException"), (500, "InternalFailure")])
    body = json.dumps({"__type": name, "message": "Rate exceeded" if code == 400 else "internal failure"}).encode()
    return response_bytes(code, "application/x-amz-json-1.0", body)


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST, as a broken connection looks to the client."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--faults", required=True, help="JSON file of fault fractions by service")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with open(args.faults) as f:
        faults = json.load(f)
    hop = Hop(args.upstream, faults, args.seed)
    server = await asyncio.start_server(hop.serve, "127.0.0.1", args.port, limit=1 << 20)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"fault hop on 127.0.0.1:{args.port} -> {args.upstream}, seed {args.seed}", flush=True)
    async with server:
        await stop.wait()
    print(json.dumps({"faults": dict(hop.counts), "requests": dict(hop.requests), "at": time.time()}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)

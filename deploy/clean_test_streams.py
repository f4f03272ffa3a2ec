#!/usr/bin/env python3
"""Deletes the JetStream streams that earlier test runs left behind.

Tests give each run a stream of its own, named PREFIX_<32 hex digits>
(T_, ACQ_, BENCH...). `deploy/dev test` runs this before the tests, the way
it drops old ps_test_ databases, so leftovers never pile up. Only names of
that exact shape are touched; the dev stream PAYSTREAM_EVENTS never is.

Speaks the NATS text protocol directly (no client library needed).
Usage: clean_test_streams.py [host] [port]
"""

import json
import re
import socket
import sys

TEST_STREAM = re.compile(r"^[A-Z]+_[0-9A-F]{32}$")
TIMEOUT_S = 5


def read_until(sock, buffer, marker):
    while marker not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("NATS closed the connection")
        buffer += chunk
    return buffer


def request(sock, buffer, subject, payload=b"{}"):
    """Sends a request and returns (reply payload, remaining buffer)."""
    sock.sendall(b"PUB %s _INBOX.clean %d\r\n%s\r\n" % (subject.encode(), len(payload), payload))
    buffer = read_until(sock, buffer, b"MSG _INBOX.clean")
    start = buffer.index(b"MSG _INBOX.clean")
    buffer = read_until(sock, buffer[start:], b"\r\n")
    header, rest = buffer.split(b"\r\n", 1)
    size = int(header.split()[-1])
    while len(rest) < size + 2:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("NATS closed the connection")
        rest += chunk
    return rest[:size], rest[size + 2:]


def main():
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 4222
    sock = socket.create_connection((host, port), timeout=TIMEOUT_S)
    buffer = read_until(sock, b"", b"\r\n")  # INFO
    buffer = b""
    sock.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB _INBOX.clean 1\r\n')
    names, offset = [], 0
    while True:
        reply, buffer = request(sock, buffer, "$JS.API.STREAM.NAMES",
                                json.dumps({"offset": offset}).encode())
        page = json.loads(reply)
        if "error" in page:
            print(f"clean_test_streams: {page['error']}", file=sys.stderr)
            return 0
        batch = page.get("streams") or []
        names += batch
        offset += len(batch)
        if not batch or offset >= page.get("total", 0):
            break
    deleted = 0
    for name in names:
        if TEST_STREAM.match(name) and name != "PAYSTREAM_EVENTS":
            reply, buffer = request(sock, buffer, f"$JS.API.STREAM.DELETE.{name}")
            deleted += bool(json.loads(reply).get("success"))
    print(f"deleted {deleted} test stream(s) of {len(names)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ValueError) as error:
        # Cleanup is best effort: tests do not depend on it.
        print(f"clean_test_streams: skipped ({error})", file=sys.stderr)
        sys.exit(0)

"""The connectivity check against real TCP listeners on 127.0.0.1."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import connectivity
import pytest

INSTANCE_ID = "0123456789abcdef"


@pytest.fixture
def listener() -> Iterator[Callable[[Callable[[socket.socket], None]], int]]:
    """Start a one-shot TCP server on loopback that answers with the given behaviour."""
    servers: list[socket.socket] = []

    def start(behaviour: Callable[[socket.socket], None]) -> int:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        servers.append(server)

        def serve() -> None:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                behaviour(connection)

        threading.Thread(target=serve, daemon=True).start()
        return server.getsockname()[1]

    yield start
    for server in servers:
        server.close()


def collector(connection: socket.socket) -> None:
    """Answer DC_QUERY_INSTANCE as a collector does: check the request, send the id."""
    header = connection.recv(5)
    end_flag, length = struct.unpack(">BI", header)
    (command,) = struct.unpack(">Q", connection.recv(length))
    assert (end_flag, length, command) == (1, 8, 60045)
    payload = INSTANCE_ID.encode() + b"\0"
    connection.sendall(struct.pack(">BI", 1, len(payload)) + payload)


def test_answers_with_the_collectors_instance_id_as_text(listener):
    port = listener(collector)
    result = connectivity.handler({"condor_host": "127.0.0.1", "condor_port": port, "timeout": 5}, None)
    assert result["success"] == "1", result
    assert result["result"] == INSTANCE_ID and isinstance(result["result"], str)


def test_port_as_text_and_multi_frame_reply(listener):
    def split_reply(connection: socket.socket) -> None:
        connection.recv(13)
        connection.sendall(struct.pack(">BI", 0, 8) + INSTANCE_ID[:8].encode())
        connection.sendall(struct.pack(">BI", 1, 8) + INSTANCE_ID[8:].encode())

    port = listener(split_reply)
    result = connectivity.handler({"condor_host": "127.0.0.1", "condor_port": str(port)}, None)
    assert result["result"] == INSTANCE_ID, result


def test_refused():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    result = connectivity.handler({"condor_host": "127.0.0.1", "condor_port": port, "timeout": 2}, None)
    assert result["success"] == "0" and "refused" in result["description"]


def test_silent_listener_times_out_within_the_timeout(listener):
    port = listener(lambda connection: time.sleep(3))
    started = time.monotonic()
    result = connectivity.handler({"condor_host": "127.0.0.1", "condor_port": port, "timeout": 1}, None)
    elapsed = time.monotonic() - started
    assert result["success"] == "0" and "within 1s" in result["description"]
    assert elapsed < 2, f"the 1s timeout took {elapsed:.1f}s"


@pytest.mark.parametrize(
    "reply, expected",
    [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "malformed reply"),
        (struct.pack(">BI", 1, 16) + b"short", "short reply"),
        (b"", "short reply"),
        (struct.pack(">BI", 1, 4) + b"\xff\xfe\x00\x01", "malformed reply"),
    ],
)
def test_garbage_replies(listener, reply: bytes, expected: str):
    def answer(connection: socket.socket) -> None:
        connection.recv(13)
        connection.sendall(reply)

    port = listener(answer)
    result = connectivity.handler({"condor_host": "127.0.0.1", "condor_port": port, "timeout": 2}, None)
    assert result["success"] == "0" and expected in result["description"], result


@pytest.mark.parametrize(
    "event, expected",
    [
        ({"condor_port": 9618}, "condor_host is missing"),
        ({"condor_host": "127.0.0.1", "condor_port": "ninety"}, "not a number"),
        ({"condor_host": "127.0.0.1", "condor_port": 70000}, "outside 1-65535"),
        ({"condor_host": "no-such-host.invalid", "condor_port": 9618}, "cannot resolve"),
    ],
)
def test_bad_targets_fail_without_raising(event: dict, expected: str):
    result = connectivity.handler(event, None)
    assert result["success"] == "0" and expected in result["description"], result

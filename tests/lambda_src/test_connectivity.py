"""The connectivity check against real TCP listeners on 127.0.0.1, which answer as a collector does
behind a shared port (the real one, 24.0.23, in tests/e2e/test_annex.py: condor_annex accepts the
answer), or as one listening on the port itself."""

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
def listener() -> Iterator[Callable[..., int]]:
    """Start a TCP server on loopback that answers `connections` connections with the behaviour."""
    servers: list[socket.socket] = []

    def start(behaviour: Callable[[socket.socket], None], connections: int = 1) -> int:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(connections)
        servers.append(server)

        def serve() -> None:
            for _ in range(connections):
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


SHARED_PORT_ID = "1234567890abcdef"


def read_frame(connection: socket.socket) -> bytes:
    end_flag, length = struct.unpack(">BI", connection.recv(5, socket.MSG_WAITALL))
    assert end_flag == 1
    return connection.recv(length, socket.MSG_WAITALL)


def drain(connection: socket.socket) -> None:
    """Read all the request holds: a peer that closes with data unread resets the connection."""
    connection.settimeout(0.3)
    try:
        while connection.recv(4096):
            pass
    except TimeoutError:
        pass


def answer(connection: socket.socket, instance_id: str) -> None:
    payload = instance_id.encode() + b"\0"
    connection.sendall(struct.pack(">BI", 1, len(payload)) + payload)


def shared_port(connection: socket.socket) -> None:
    """A shared port daemon with a collector behind it (shared_port_server.cpp at v24.0.23): a query
    sent to the port itself gets the daemon's own instance id; one passed on with SHARED_PORT_CONNECT
    to the id `collector` gets the collector's."""
    first = read_frame(connection)
    (command,) = struct.unpack(">q", first[:8])
    if command == 60045:
        answer(connection, SHARED_PORT_ID)
        return
    assert command == 75, command
    shared_port_id, requested_by, rest = first[8:].split(b"\0", 2)
    deadline, more = struct.unpack(">qq", rest)
    assert (shared_port_id, requested_by, more) == (b"collector", b"HTCondorAnnex-CheckConnectivity", 0)
    assert 0 < deadline <= 5
    assert struct.unpack(">q", read_frame(connection)) == (60045,)
    answer(connection, INSTANCE_ID)


def collector(connection: socket.socket) -> None:
    """A collector on the port itself: SHARED_PORT_CONNECT is a command it refuses by closing the
    connection (a real 24.0.23 with USE_SHARED_PORT = false); then a query gets its id."""
    first = read_frame(connection)
    if struct.unpack(">q", first[:8]) == (75,):
        return
    assert struct.unpack(">q", first) == (60045,)
    answer(connection, INSTANCE_ID)


def test_answers_with_the_collectors_instance_id_behind_a_shared_port(listener):
    port = listener(shared_port)
    result = connectivity.handler({"condor_host": "127.0.0.1", "condor_port": port, "timeout": 5}, None)
    assert result["success"] == "1", result
    assert result["result"] == INSTANCE_ID and isinstance(result["result"], str)
    assert "behind the shared port" in result["description"]


def test_a_collector_on_the_port_itself_is_asked_directly(listener):
    connections = []

    def refuses_then_answers(connection: socket.socket) -> None:
        connections.append(connection)
        collector(connection)

    port = listener(refuses_then_answers, connections=2)
    result = connectivity.handler({"condor_host": "127.0.0.1", "condor_port": port, "timeout": 5}, None)
    assert result == {
        "success": "1",
        "result": INSTANCE_ID,
        "description": f"the collector at 127.0.0.1:{port} answered",
    }
    assert len(connections) == 2


def test_port_as_text_and_multi_frame_reply(listener):
    def split_reply(connection: socket.socket) -> None:
        drain(connection)
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
        drain(connection)
        connection.sendall(reply)

    # A peer that closes at once is asked a second time, directly.
    port = listener(answer, connections=2)
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

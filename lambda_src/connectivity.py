"""HTCondorAnnex-CheckConnectivity: can AWS reach this pool's collector?

condor_annex (up to 24.0; 24.11 dropped the check) invokes this with {"condor_host", "condor_port",
"timeout"} before every annex and compares `result` with the instance id its own collector reported.
The check speaks one CEDAR exchange: DC_QUERY_INSTANCE, answered by the daemon's 16-character
instance id. It never raises: every failure is {"success": "0", "description": ...}.

Behind a shared port (every collector HTCondor starts by default), the port's own daemon answers
DC_QUERY_INSTANCE itself, with its own id, so the query goes through SHARED_PORT_CONNECT to the
collector first, as HTCondor's own clients address it (shared_port_client.cpp at v24.0.23). A
collector that listens on the port itself refuses SHARED_PORT_CONNECT by closing the connection
(a real 24.0.23 with USE_SHARED_PORT = false resets it: "Command not authorized"), and is then
asked directly. Checked against a real 24.0.23 (tests/e2e/test_annex.py): through the shared port
the answer is the id condor_annex expects; asked directly, the shared port daemon's own, which
condor_annex refused ("Connectivity check found wrong collector"), as it refused HTCondor's original
function (src/annex/setup/check-connectivity.py), which asked directly and returned bytes.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

DC_QUERY_INSTANCE = 60045
SHARED_PORT_CONNECT = 75
# The collector's shared port id: `sock=collector` in its address.
COLLECTOR_SHARED_PORT_ID = "collector"
# A CEDAR frame: one byte that is 1 on a message's last frame, a big-endian length, the payload.
FRAME_HEADER = struct.Struct(">BI")
# CEDAR sends every integer as 8 bytes, big-endian.
CEDAR_INTEGER = struct.Struct(">q")
MAX_REPLY = 1024
DEFAULT_PORT = 9618


def frame(payload: bytes) -> bytes:
    return FRAME_HEADER.pack(1, len(payload)) + payload


def request_frame() -> bytes:
    return frame(CEDAR_INTEGER.pack(DC_QUERY_INSTANCE))


def shared_port_connect_frame(shared_port_id: str, deadline_seconds: int) -> bytes:
    """SHARED_PORT_CONNECT: the id to pass the connection to, who asks (for the daemon's log), the
    deadline in seconds and no further arguments; strings end with a NUL."""
    return frame(
        CEDAR_INTEGER.pack(SHARED_PORT_CONNECT)
        + shared_port_id.encode()
        + b"\0"
        + b"HTCondorAnnex-CheckConnectivity\0"
        + CEDAR_INTEGER.pack(deadline_seconds)
        + CEDAR_INTEGER.pack(0)
    )


def failure(description: str) -> dict[str, str]:
    return {"success": "0", "result": "", "description": description}


class ClosedEarlyError(EOFError):
    """The connection closed before all of a read arrived; `received` says how much did."""

    def __init__(self, received: int, count: int) -> None:
        super().__init__(f"connection closed after {received} of {count} bytes")
        self.received = received


class ClosedBeforeReplyError(EOFError):
    """The daemon closed (or reset) the connection without a byte of reply."""


def read_exactly(connection: socket.socket, count: int, deadline: float) -> bytes:
    data = b""
    while len(data) < count:
        connection.settimeout(max(deadline - time.monotonic(), 0.001))
        chunk = connection.recv(count - len(data))
        if not chunk:
            raise ClosedEarlyError(len(data), count)
        data += chunk
    return data


def read_reply(connection: socket.socket, deadline: float) -> bytes:
    try:
        header = read_exactly(connection, FRAME_HEADER.size, deadline)
    except ConnectionResetError as error:
        raise ClosedBeforeReplyError(f"connection reset: {error}") from None
    except ClosedEarlyError as error:
        if error.received == 0:
            raise ClosedBeforeReplyError(str(error)) from None
        raise
    payload = b""
    while True:
        end_flag, length = FRAME_HEADER.unpack(header)
        if end_flag not in (0, 1) or length > MAX_REPLY - len(payload):
            raise ValueError(f"not a CEDAR frame (header byte {end_flag}, length {length})")
        payload += read_exactly(connection, length, deadline)
        if end_flag == 1:
            return payload
        header = read_exactly(connection, FRAME_HEADER.size, deadline)


def parse_target(event: dict[str, Any]) -> tuple[str, int, float]:
    host = event.get("condor_host")
    if not isinstance(host, str) or not host.strip():
        raise ValueError("condor_host is missing or empty")
    raw_port = event.get("condor_port", DEFAULT_PORT)
    try:
        port = int(raw_port)
    except (TypeError, ValueError):
        raise ValueError(f"condor_port {raw_port!r} is not a number") from None
    if not 0 < port < 65536:
        raise ValueError(f"condor_port {port} is outside 1-65535")
    try:
        timeout = float(event.get("timeout", 5))
    except (TypeError, ValueError):
        raise ValueError(f"timeout {event.get('timeout')!r} is not a number") from None
    return host.strip(), port, max(timeout, 0.1)


def ask(address: tuple[str, int], request: bytes, deadline: float) -> bytes:
    with socket.create_connection(address, timeout=max(deadline - time.monotonic(), 0.001)) as connection:
        connection.sendall(request)
        return read_reply(connection, deadline)


def check(host: str, port: int, timeout: float) -> dict[str, str]:
    where = f"{host}:{port}"
    deadline = time.monotonic() + timeout
    try:
        address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][:2]
    except socket.gaierror as error:
        return failure(f"cannot resolve {host}: {error.strerror}")
    through_shared_port = shared_port_connect_frame(COLLECTOR_SHARED_PORT_ID, max(int(timeout), 1)) + request_frame()
    try:
        try:
            payload = ask(address, through_shared_port, deadline)
            answered = "the collector behind the shared port"
        except ClosedBeforeReplyError:
            payload = ask(address, request_frame(), deadline)
            answered = "the collector"
    except ConnectionRefusedError:
        return failure(f"connection to {where} refused: is the collector running and the port open?")
    except TimeoutError:
        return failure(f"no answer from {where} within {timeout:g}s: is a firewall dropping the port?")
    except EOFError as error:
        return failure(f"short reply from {where}: {error}")
    except ValueError as error:
        return failure(f"malformed reply from {where}: {error}")
    except OSError as error:
        return failure(f"cannot talk to {where}: {error.strerror or error}")
    instance_id = payload.rstrip(b"\0")
    try:
        text = instance_id.decode("ascii")
    except UnicodeDecodeError:
        return failure(f"malformed reply from {where}: the instance id is not text")
    if not text or not text.isprintable():
        return failure(f"malformed reply from {where}: empty or unprintable instance id")
    return {"success": "1", "result": text, "description": f"{answered} at {where} answered"}


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    try:
        host, port, timeout = parse_target(event if isinstance(event, dict) else {})
    except ValueError as error:
        return failure(str(error))
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        # Answer before Lambda's own timeout cuts us off without a word.
        timeout = min(timeout, max(context.get_remaining_time_in_millis() / 1000 - 0.5, 0.1))
    return check(host, port, timeout)

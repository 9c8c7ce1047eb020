"""HTCondorAnnex-CheckConnectivity: can AWS reach this pool's collector?

condor_annex invokes this with {"condor_host", "condor_port", "timeout"} before every annex and
compares `result` with the instance id its own collector reported. The check speaks one CEDAR
exchange: DC_QUERY_INSTANCE, answered by the daemon's 16-character instance id. It never raises:
every failure is {"success": "0", "description": ...}. (The original returned bytes under
Python 3, which condor_annex could not compare.)
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

DC_QUERY_INSTANCE = 60045
# A CEDAR frame: one byte that is 1 on a message's last frame, a big-endian length, the payload.
FRAME_HEADER = struct.Struct(">BI")
MAX_REPLY = 1024
DEFAULT_PORT = 9618


def request_frame() -> bytes:
    payload = struct.pack(">Q", DC_QUERY_INSTANCE)
    return FRAME_HEADER.pack(1, len(payload)) + payload


def failure(description: str) -> dict[str, str]:
    return {"success": "0", "result": "", "description": description}


def read_exactly(connection: socket.socket, count: int, deadline: float) -> bytes:
    data = b""
    while len(data) < count:
        connection.settimeout(max(deadline - time.monotonic(), 0.001))
        chunk = connection.recv(count - len(data))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {count} bytes")
        data += chunk
    return data


def read_reply(connection: socket.socket, deadline: float) -> bytes:
    payload = b""
    while True:
        end_flag, length = FRAME_HEADER.unpack(read_exactly(connection, FRAME_HEADER.size, deadline))
        if end_flag not in (0, 1) or length > MAX_REPLY - len(payload):
            raise ValueError(f"not a CEDAR frame (header byte {end_flag}, length {length})")
        payload += read_exactly(connection, length, deadline)
        if end_flag == 1:
            return payload


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


def check(host: str, port: int, timeout: float) -> dict[str, str]:
    where = f"{host}:{port}"
    deadline = time.monotonic() + timeout
    try:
        address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4]
    except socket.gaierror as error:
        return failure(f"cannot resolve {host}: {error.strerror}")
    try:
        with socket.create_connection(address[:2], timeout=timeout) as connection:
            connection.sendall(request_frame())
            payload = read_reply(connection, deadline)
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
    return {"success": "1", "result": text, "description": f"the collector at {where} answered"}


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    try:
        host, port, timeout = parse_target(event if isinstance(event, dict) else {})
    except ValueError as error:
        return failure(str(error))
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        # Answer before Lambda's own timeout cuts us off without a word.
        timeout = min(timeout, max(context.get_remaining_time_in_millis() / 1000 - 0.5, 0.1))
    return check(host, port, timeout)

"""The checkpoint's `.attrs` sidecar of a file backend, left empty the way gocloud's fileblob leaves it
mid-write, once the program runs: how the real engine shows a program reading its own stack while
the engine writes it.

gocloud's fileblob (the version pulumi v3.274.1 builds with) writes a blob's sidecar in place,
`os.Create` then one JSON write; every read of the blob and every existence check decodes that
sidecar first, and an empty one fails with EOF. A real `pulumi up` writes the checkpoint while the
program starts, so the program's read can meet it (seen once in CI). Here the test plays that write,
deterministically: it empties the sidecar once the program's process runs, counts the reads that
open it from then on (inotify IN_OPEN), and restores it once the reads it is told to fail have
closed it (IN_CLOSE_NOWRITE).
"""

from __future__ import annotations

import ctypes
import os
import select
import struct
import threading
from pathlib import Path

IN_CLOSE_NOWRITE = 0x10
IN_OPEN = 0x20
EVENT_HEADER = struct.Struct("iIII")


def program_runs(project: Path) -> bool:
    """The language host's program process runs in the project (the one given the engine's monitor)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            in_project = os.readlink(f"/proc/{pid}/cwd") == str(project)
            if in_project and b"--monitor" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


class EmptiedSidecar(threading.Thread):
    """Empties `sidecar` once the program runs in `project`; restores it once `failed_reads` reads
    of the empty sidecar are done (never, if None), and when stopped. `reads` counts the reads that
    opened it after it was emptied; one already open then is not counted."""

    def __init__(self, sidecar: Path, project: Path, failed_reads: int | None) -> None:
        super().__init__(daemon=True)
        self.sidecar = sidecar
        self.project = project
        self.failed_reads = failed_reads
        self.content = sidecar.read_bytes()
        self.reads = 0
        self.open_reads = 0
        self.emptied = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not program_runs(self.project):
            if self.stopping.wait(0.005):
                return
        libc = ctypes.CDLL(None, use_errno=True)
        watch = libc.inotify_init1(os.O_CLOEXEC)
        if watch < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        try:
            self.sidecar.write_bytes(b"")
            # Watched from here: every open seen is of the empty sidecar.
            if libc.inotify_add_watch(watch, bytes(self.sidecar), IN_OPEN | IN_CLOSE_NOWRITE) < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {self.sidecar}")
            self.emptied.set()
            while not self.stopping.is_set():
                if select.select([watch], [], [], 0.05)[0]:
                    self._count(os.read(watch, 4096))
        finally:
            self.sidecar.write_bytes(self.content)
            os.close(watch)

    def _count(self, events: bytes) -> None:
        offset = 0
        while offset < len(events):
            _, mask, _, name_length = EVENT_HEADER.unpack_from(events, offset)
            offset += EVENT_HEADER.size + name_length
            if mask & IN_OPEN:
                self.reads += 1
                self.open_reads += 1
            elif mask & IN_CLOSE_NOWRITE and self.open_reads:
                self.open_reads -= 1
                if self.reads == self.failed_reads and not self.open_reads:
                    self.sidecar.write_bytes(self.content)

    def __enter__(self) -> EmptiedSidecar:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.join(timeout=10)

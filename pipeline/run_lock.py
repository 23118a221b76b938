"""One writer per run directory: every command that writes holds the directory's lock, and a
second one is refused (exit 2) with the holder named, instead of two processes silently
overwriting each other's stage outputs.

- A local run directory (any POSIX filesystem, NFS included) is locked with `flock` on the file
  `_LOCK` in it. The kernel drops the lock when its process dies, however it dies (SIGKILL
  included), so a lock is never stale while its holder lives and is free as soon as it does not;
  the holder's description left in the file by a killed process is replaced with a log line.
- A run directory on object storage holds the lock object `_LOCK`, created with a conditional
  put (S3's `If-None-Match: *`, through s3fs), so that of two writers exactly one creates it. Its
  holder renews it every `LEASE_SECONDS / 4`; a lock not renewed for `LEASE_SECONDS`, or whose
  holder ran on this host and is gone, is stale and broken with a log line. Limits: stores other
  than S3 get a check-then-create (two writers starting within the same instant may both win),
  and breaking a stale lock is a check-then-delete.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.errors import InputError
from pipeline.storage import StoragePath, as_path, filesystem, is_local

log = logging.getLogger(__name__)

LOCK_NAME = "_LOCK"
# An object-storage lock not renewed for this long is taken to be a dead holder's. Ten minutes:
# far longer than any pause of a live holder's renewal thread (which renews every 2.5 minutes).
LEASE_SECONDS = 600.0
# Stores whose conditional put makes creating the lock object atomic.
_CONDITIONAL_PUT = frozenset({"s3", "s3a"})


class RunDirBusy(InputError):
    """Another process holds the run directory's lock."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: written into the lock, shown to whoever is refused."""

    host: str
    pid: int
    started: str  # ISO 8601, UTC
    command: str
    renewed: float  # seconds since the epoch; renewed on object storage only

    @classmethod
    def me(cls, command: str) -> Holder:
        now = time.time()
        started = datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat(timespec="seconds")
        return cls(socket.gethostname(), os.getpid(), started, command, now)

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError):
            return None

    def encode(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host} since {self.started} ({self.command})"

    def is_gone(self) -> bool:
        """This host's process is gone (another host's cannot be told from here)."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, someone else's
            return False
        return False


def _busy(root: StoragePath, holder: Holder | None) -> RunDirBusy:
    who = holder.describe() if holder is not None else "another process"
    return RunDirBusy(
        f"run directory {root} is in use by {who}; wait for it to finish or use another run"
        " directory"
    )


class _LocalLock:
    def __init__(self, root: Path, command: str) -> None:
        self.root = root
        self.path = root / LOCK_NAME
        self.command = command
        self.fd: int | None = None
        self.created_root = False

    def acquire(self) -> None:
        self.created_root = not self.root.exists()
        self.root.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._holder(fd, wait=True)
                os.close(fd)
                raise _busy(self.root, holder) from None
            # The file may have been removed by its last holder (see `release`) between our
            # open and our flock: then we hold a lock nobody else can see, and try again.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = self._holder(fd, wait=False)
        if previous is not None:
            log.warning(
                "run directory %s: breaking the stale lock of %s (the process is gone)",
                self.root,
                previous.describe(),
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, Holder.me(self.command).encode(), 0)
        self.fd = fd

    @staticmethod
    def _holder(fd: int, *, wait: bool) -> Holder | None:
        """The holder written in the lock file; a holder that has just taken the lock may not
        have written itself yet, so `wait` gives it a moment."""
        for _ in range(20 if wait else 1):
            holder = Holder.parse(os.pread(fd, 64 * 1024, 0).decode(errors="replace"))
            if holder is not None or not wait:
                return holder
            time.sleep(0.05)
        return None

    def release(self) -> None:
        if self.fd is None:
            return
        os.ftruncate(self.fd, 0)
        # A command refused before it wrote anything (bad input) leaves no folder behind.
        if self.created_root and os.listdir(self.root) == [LOCK_NAME]:
            os.unlink(self.path)
            with contextlib.suppress(OSError):
                self.root.rmdir()
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


class _ObjectLock:
    def __init__(self, root: StoragePath, command: str) -> None:
        self.root = root
        self.fs, self.key = filesystem(root / LOCK_NAME)
        self.holder = Holder.me(command)
        self.stop = threading.Event()
        self.renewer: threading.Thread | None = None

    def _read(self) -> Holder | None:
        try:
            return Holder.parse(self.fs.cat_file(self.key).decode(errors="replace"))
        except FileNotFoundError:
            return None

    def _create(self) -> bool:
        try:
            self.fs.pipe_file(self.key, self.holder.encode(), mode="create")
        except FileExistsError:
            return False
        return True

    def acquire(self) -> None:
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        if protocol not in _CONDITIONAL_PUT:
            log.warning(
                "run directory %s: %s has no conditional put; the run-directory lock is"
                " check-then-create (two writers starting at the same instant may both win)",
                self.root,
                protocol,
            )
        if not self._create():
            holder = self._read()
            if holder is not None and not self._stale(holder):
                raise _busy(self.root, holder)
            log.warning(
                "run directory %s: breaking the stale lock of %s (%s)",
                self.root,
                holder.describe() if holder else "an unreadable holder",
                "the process is gone"
                if holder and holder.is_gone()
                else f"not renewed for {LEASE_SECONDS:.0f} s",
            )
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self.key)
            if not self._create():
                raise _busy(self.root, self._read())
        self.renewer = threading.Thread(target=self._renew, name="run-lock-renewer", daemon=True)
        self.renewer.start()

    @staticmethod
    def _stale(holder: Holder) -> bool:
        return holder.is_gone() or time.time() - holder.renewed > LEASE_SECONDS

    def _renew(self) -> None:
        while not self.stop.wait(LEASE_SECONDS / 4):
            current = self._read()
            if current is None or (current.host, current.pid, current.started) != (
                self.holder.host,
                self.holder.pid,
                self.holder.started,
            ):
                log.error("run directory %s: the lock was taken away from this process", self.root)
                return
            renewed = Holder(**{**asdict(self.holder), "renewed": time.time()})
            self.fs.pipe_file(self.key, renewed.encode())

    def release(self) -> None:
        self.stop.set()
        if self.renewer is not None:
            self.renewer.join()
        current = self._read()
        if current is not None and (current.host, current.pid) == (
            self.holder.host,
            self.holder.pid,
        ):
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self.key)


def _local_path(root: StoragePath) -> Path | None:
    """The local path of a plain path or of a `file://` URL (spark-submit jobs are given run
    directories as `file://` URLs): those get flock, which needs no conditional put."""
    if is_local(root):
        return root
    fs, key = filesystem(root)
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    return Path(key) if protocols & {"file", "local"} else None


# Run directories this process holds the lock of, with how many blocks hold it: the lock is
# re-entrant within a process (a second process is refused; flock would refuse this one too).
_HELD: dict[str, int] = {}
_HELD_GUARD = threading.Lock()


@contextlib.contextmanager
def run_dir_lock(run_dir: str | os.PathLike[str], command: str) -> Iterator[None]:
    """Hold `run_dir`'s lock for the block; `RunDirBusy` (exit 2) if another process holds it.
    `command` is what the refused process is told the holder is doing. Re-entrant: a block
    inside another of the same process and run directory holds it already."""
    root = as_path(run_dir)
    local = _local_path(root)
    key = str(local.resolve() if local is not None else root)
    with _HELD_GUARD:
        nested = key in _HELD
        _HELD[key] = _HELD.get(key, 0) + 1
    try:
        if nested:  # this process holds it already (the CLI's lock around an API call)
            yield
            return
        lock = _LocalLock(local, command) if local is not None else _ObjectLock(root, command)
        lock.acquire()
        try:
            yield
        finally:
            lock.release()
    finally:
        with _HELD_GUARD:
            _HELD[key] -= 1
            if not _HELD[key]:
                del _HELD[key]

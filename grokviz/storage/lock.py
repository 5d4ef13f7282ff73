"""One writer per run folder: the lock a trainer holds on the folder it writes.

The lock is ``flock`` on a file inside the folder (``.grokviz-writer.lock``) that names its holder
(pid, host, start time, command line). The kernel releases an ``flock`` when its holder exits, however it
exits, so the lock of a SIGKILLed trainer is stale by construction: the next trainer takes it
at once (the file left behind is only a name tag, overwritten by the new holder). A second trainer on a
held folder fails at once with a :class:`GrokvizError` that names the holder.

Readers (the app, ``grokviz.analyze``) never lock: every file a writer writes is atomic. They ask
:func:`holder` whether a folder is being written (and by whom) without taking the lock.
Released normally, the lock file is removed, and a folder the lock itself created (a new run
that failed before writing anything) is removed with it when it is still empty.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import socket
import sys
import time
from pathlib import Path

from grokviz.errors import GrokvizError

LOCK_FILE = ".grokviz-writer.lock"


class FolderLock:
    """``with FolderLock(folder, create=True):`` hold the writer's lock on ``folder``.

    ``create``: make the folder if it does not exist (a new run); otherwise a missing folder is
    an error (a resume needs its run).
    """

    def __init__(self, folder: str | os.PathLike, *, create: bool) -> None:
        self.folder = Path(folder)
        self.create = create
        self._fd: int | None = None
        self._created = False

    @property
    def path(self) -> Path:
        return self.folder / LOCK_FILE

    def acquire(self) -> FolderLock:
        if self.folder.exists() and not self.folder.is_dir():
            raise GrokvizError(f"{self.folder}: exists and is not a folder; --out names the run folder to create")
        if not self.folder.exists():
            if not self.create:
                raise GrokvizError(f"{self.folder}: no such run folder")
            self.folder.mkdir(parents=True)
            self._created = True
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise GrokvizError(
                    f"{self.folder}: another trainer is writing this folder ({holder}); "
                    "wait for it to finish or stop it (Ctrl-C saves), then --resume"
                ) from None
            # A releasing holder unlinks the file before unlocking: if we locked a file that is
            # no longer the one at this path, our lock guards nothing. Try again.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, _holder_line().encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        # Unlink while still holding it (see acquire), then unlock by closing.
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None
        if self._created:
            try:
                self.folder.rmdir()  # only if still empty: a run that failed before its first file
            except OSError:
                pass

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _holder_line() -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime())
    # orig_argv: `python -m grokviz train --out ...` as typed (argv[0] would be the module's path).
    argv = list(getattr(sys, "orig_argv", sys.argv)) or ["python"]
    command = shlex.join([Path(argv[0]).name, *argv[1:]])
    return f"pid {os.getpid()} on {socket.gethostname()}, since {started}: {command}\n"


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "holder unknown: it has not written its name yet"


def holder(folder: str | os.PathLike) -> str | None:
    """Who writes ``folder`` now (its holder line: pid, host, start, command), or None when no one does.

    Takes no lock: on Linux the kernel's table of locks (``/proc/locks``) is read, so a trainer
    starting at this moment never finds the folder held by a reader. Elsewhere a shared lock is
    tried and dropped at once (a trainer starting in that instant would be refused, and could retry).
    """
    path = Path(folder) / LOCK_FILE
    try:
        info = path.stat()
    except OSError:
        return None
    held = _held_per_proc_locks(info)
    if held is None:
        held = _held_per_probe(path)
    if not held:
        return None
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        text = ""
    return text or "holder unknown: it has not written its name yet"


def holder_pid(line: str | None) -> int | None:
    """The pid a holder line names (``pid 123 on host, since ...``), or None."""
    if not line or not line.startswith("pid "):
        return None
    try:
        return int(line.split()[1])
    except (IndexError, ValueError):
        return None


def _held_per_proc_locks(info: os.stat_result) -> bool | None:
    """Whether /proc/locks lists a lock on this file (None: no /proc/locks to read)."""
    try:
        table = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # Each line: "1: FLOCK  ADVISORY  WRITE 1234 fe:00:2426734 0 EOF" (device major:minor in hex, inode).
    wanted = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    return any(wanted in line.split() for line in table.splitlines() if "FLOCK" in line)


def _held_per_probe(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock taken here
    return False

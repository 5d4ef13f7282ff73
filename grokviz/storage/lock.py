"""One writer per run folder: the lock a trainer holds on the folder it writes.

The lock is ``flock`` on a file inside the folder (``.grokviz-writer.lock``) that names its holder
(pid, host, start time, command line). The kernel releases an ``flock`` when its holder exits, however it
exits, so the lock of a SIGKILLed trainer is stale by construction: the next trainer takes it
at once (the file left behind is only a name tag, overwritten by the new holder). A second trainer on a
held folder fails at once with a :class:`GrokvizError` that names the holder.

Readers (the app, ``grokviz.analyze``) never lock: every file a writer writes is atomic.
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

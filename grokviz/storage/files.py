"""Files as grokviz writes and reads them: atomic writes, safetensors and JSON read with every
failure as a :class:`GrokvizError` naming the file. No knowledge of runs or families."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from grokviz.errors import GrokvizError

# The process umask, read once (reading it means setting it, which is not thread-safe to repeat).
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename over ``path``: readers see the old or the new file.

    No fsync: rename is atomic against a killed process (our failure model); a power cut may
    still lose the newest file, never corrupt an older one.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file, every failure as a GrokvizError naming it."""
    if not path.is_file():
        raise GrokvizError(f"{path}: no such file")
    try:
        # One open for metadata and tensors: a file renamed over in between cannot mix versions.
        with safe_open(str(path), framework="pt") as handle:
            return {name: handle.get_tensor(name) for name in handle.keys()}, handle.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise GrokvizError(f"{path}: not a readable safetensors file ({exc})") from None


def parse_step(metadata: dict[str, str], path: Path) -> int:
    try:
        return int(metadata["step"])
    except (KeyError, ValueError):
        raise GrokvizError(f"{path}: metadata has no integer 'step'") from None


def read_format_json(path: Path, expected_format: str) -> dict:
    """A JSON object whose "format" is ``expected_format``; any other content is a GrokvizError naming the file."""
    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GrokvizError(f"{path}: not readable JSON ({exc})") from None
    found = body.get("format") if isinstance(body, dict) else None
    if found != expected_format:
        raise GrokvizError(f"{path}: unknown format {found!r}; expected {expected_format!r}")
    return body

"""What a run folder's files say about its training, read without torch and without a lock: the
last logged step and the recent speed from the tail of ``log.csv``, a job's last error line, the
run's family, and whether ``--resume --steps N`` can extend it. The jobs list
(``grokviz.storage.jobs``) reads runs through these; the app reads them before it imports torch.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

# The family table, the run folder and the log's modules import torch: these names are theirs.
RUN_FILE, LOG_FILE = "run.json", "log.csv"  # as grokviz.storage.runs and grokviz.storage.log name them
_DEFAULT_FAMILY = "modular"  # of a run.json that names none (grokviz.core.families.DEFAULT_FAMILY)
TAIL_BYTES = 16_384  # of log.csv: enough rows for the recent speed, however long the log


def log_progress(log: Path) -> tuple[int | None, float | None]:
    """(last logged step, steps per second over the log's last rows) from the tail of ``log.csv``."""
    try:
        with open(log, "rb") as handle:
            header = handle.readline().decode("utf-8", "replace").strip().split(",")
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(len(",".join(header)) + 1, size - TAIL_BYTES))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None, None
    if "step" not in header:
        return None, None
    at_step, at_time = header.index("step"), header.index("elapsed_s") if "elapsed_s" in header else None
    rows = []
    for line in lines[1:] if size > TAIL_BYTES else lines:  # a cut first line is partial
        parts = line.split(",")
        if len(parts) != len(header):
            continue
        try:
            rows.append((int(float(parts[at_step])), float(parts[at_time]) if at_time is not None else None))
        except ValueError:
            continue
    if not rows:
        return None, None
    step = rows[-1][0]
    recent = [row for row in rows[-50:] if row[1] is not None]
    rate = None
    if len(recent) >= 2 and recent[-1][1] > recent[0][1] and recent[-1][0] > recent[0][0]:
        rate = (recent[-1][0] - recent[0][0]) / (recent[-1][1] - recent[0][1])
    return step, rate


def last_error(output: Path) -> str | None:
    """The last line of a job's output that says what went wrong: the trainers' one ``error: ...``
    line, or the last line of a traceback (``ValueError: ...``). A Ctrl-C's abort is not an error."""
    try:
        lines = output.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        line = line.strip()
        if line.startswith("error:") or re.match(r"^[A-Za-z_][\w.]*(Error|Exception)\b", line):
            return line
    return None


def run_family(run: Path) -> str | None:
    """The family of the run in ``run`` (None: no readable run.json yet)."""
    data = run_json(run)
    return None if data is None else data.get("family", _DEFAULT_FAMILY)


def not_extendable(run: Path) -> str | None:
    """Why ``--resume --steps N`` cannot extend this run exactly (None: it can): the trainers' rule
    (``training.single.check_extension``), said before anything is launched."""
    data = run_json(run) or {}
    if data.get("family", _DEFAULT_FAMILY) == "digits":
        return "The adder's learning rate decays over its steps: its runs cannot be extended exactly."
    schedule = data.get("config", {}).get("lr_schedule", "constant")
    if schedule != "constant":
        return f"This run's learning rate follows a {schedule} schedule over its steps: it cannot be extended exactly."
    return None


def run_json(run: Path) -> dict | None:
    """run.json as JSON (no checks: enough for the config's steps and family), or None."""
    try:
        data = json.loads((Path(run) / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None

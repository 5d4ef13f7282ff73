"""The training log, ``log.csv``: one row per log step, floats in full precision (repr), columns
of the run's family (``grokviz.core.families``). Append-only with one complete line per ``write``;
readers ignore a last line without its newline (a write in flight)."""

from __future__ import annotations

from pathlib import Path

from grokviz.errors import GrokvizError
from grokviz.storage.files import atomic_write

LOG_FILE = "log.csv"


class LogWriter:
    """Appends training-log rows (``columns``: the family's, ``Family.log_columns``); each row is one
    ``write`` of one complete line. ``keep_below_step``: resuming, keep the rows before it."""

    def __init__(self, run_dir: Path, columns: tuple[str, ...], keep_below_step: int | None = None):
        self.path = Path(run_dir) / LOG_FILE
        self.columns = columns
        kept = []
        if keep_below_step is not None and self.path.exists():
            # Resuming: keep the rows before the resumed step; the loop writes the rest again.
            kept = [r for r in read_log_rows(self.path, columns)[0] if r["step"] < keep_below_step]
        atomic_write(self.path, lambda tmp: Path(tmp).write_text(format_rows(kept, columns)))
        self._file = open(self.path, "a", buffering=1, encoding="utf-8")

    def append(self, row: dict[str, float]) -> None:
        self._file.write(format_rows([row], self.columns, header=False))

    def close(self) -> None:
        self._file.close()


def format_rows(rows: list[dict[str, float]], columns: tuple[str, ...], header: bool = True) -> str:
    lines = [",".join(columns)] if header else []
    for row in rows:
        lines.append(",".join(str(int(row["step"])) if c == "step" else repr(float(row[c])) for c in columns))
    return "".join(line + "\n" for line in lines)


def read_log_rows(path: Path, columns: tuple[str, ...]) -> tuple[list[dict[str, float]], list[str]]:
    """Rows of a training log, ascending by step, and one message per row that was skipped.

    A last line without its newline is a write in flight and is ignored silently. Malformed rows
    are skipped and reported; a step logged twice keeps its last row (what a resumed run wrote).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GrokvizError(f"{path}: unreadable training log ({exc})") from None
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    lines = text.splitlines()
    if not lines or lines[0].split(",") != list(columns):
        raise GrokvizError(f"{path}: not a grokviz training log (expected the header {','.join(columns)})")
    by_step: dict[int, dict[str, float]] = {}
    problems = []
    for number, line in enumerate(lines[1:], start=2):
        values = line.split(",")
        try:
            if len(values) != len(columns):
                raise ValueError(f"{len(values)} fields, expected {len(columns)}")
            row = {c: float(v) for c, v in zip(columns, values)}
            if not (row["step"] >= 0 and row["step"].is_integer()):
                raise ValueError(f"step {values[0]!r} is not a non-negative integer")
        except ValueError as exc:
            problems.append(f"{path}, line {number}: malformed row skipped ({exc})")
            continue
        row["step"] = int(row["step"])
        if row["step"] in by_step:
            problems.append(f"{path}, line {number}: step {row['step']} logged again; the later row is kept")
        by_step[row["step"]] = row
    return [by_step[step] for step in sorted(by_step)], problems

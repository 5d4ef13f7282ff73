"""The app's cached loaders (grokviz.ui.loaders) outside a browser: a run is opened (run.json read
and validated) once per version of its run.json, however many loaders ask for it."""

from __future__ import annotations

import os

from grokviz.core.config import Config
from grokviz.storage.runs import write_run_file
from grokviz.ui import loaders


def test_a_run_is_opened_once_per_version_of_its_run_json(tmp_path, monkeypatch) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_run_file(run_dir, Config(task="mul", p=7))
    opened = []
    real = loaders.open_run
    monkeypatch.setattr(loaders, "open_run", lambda path: opened.append(path) or real(path))

    first = loaders.opened_run(str(run_dir))
    assert loaders.opened_run(str(run_dir)) is first
    assert loaders.group_of(str(run_dir)).discrete_log and loaders.arch_of(str(run_dir)) == first.config.architecture
    assert len(opened) == 1

    write_run_file(run_dir, Config(task="add", p=7))  # rewritten (e.g. by --resume --steps): opened again
    os.utime(run_dir / "run.json", (1, 1))  # a new mtime even on a coarse clock
    again = loaders.opened_run(str(run_dir))
    assert again is not first and len(opened) == 2
    assert not loaders.group_of(str(run_dir)).discrete_log

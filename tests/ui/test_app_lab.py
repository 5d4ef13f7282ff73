"""The New run page (/new) under AppTest: presets fill the form, bad values are refused in the
trainers' own words, names cannot leave the runs folder, a read-only app and the job limit refuse;
a run started from the page by an app process that is then killed trains on, and a new app shows
it, follows it in the explorer and stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from grokviz.core.config import Config
from grokviz.core.stored import ConfigError
from grokviz.storage import jobs
from grokviz.ui.views.new_run import PRESETS, build_config, form_fields, initial_values

NEW_PAGE = "grokviz/ui/pages/new_run.py"  # relative to app.py, as AppTest.switch_page wants it
REPO = Path(__file__).resolve().parents[2]
TINY = {
    "p": "23",
    "frac_train": "0.5",
    "steps": "30000",
    "log_every": "10",
    "save_every": "5000",  # few checkpoints: the explorer's progress measures stay quick
}  # stopped long before its end


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GROKVIZ_RUNS", str(tmp_path))
    monkeypatch.delenv(jobs.READ_ONLY_ENV, raising=False)
    monkeypatch.delenv(jobs.MAX_JOBS_ENV, raising=False)
    return tmp_path


def _page(new_app):
    at = new_app(timeout=120)
    at.run()  # the explorer, on an empty runs folder
    at.switch_page(NEW_PAGE)
    return at.run()


def _start_button(at):
    return next(b for b in at.button if b.label == "Start training")


def test_presets_fill_the_form(new_app, check, runs) -> None:
    at = check(_page(new_app))
    assert at.selectbox(key="new_preset").value == "the paper's recipe (p = 113)"
    assert at.text_input(key="new_modular_p").value == "113" and at.text_input(key="new_name").value == "add-p113-mine"
    assert any("about 658 MiB for 1 model" in m.value for m in at.markdown)  # training.memory's estimate
    at.selectbox(key="new_preset").set_value("quick (p = 53, about a minute)")
    check(at.run())
    assert [at.text_input(key=f"new_modular_{name}").value for name in ("p", "frac_train", "steps")] == [
        "53",
        "0.5",
        "2500",
    ]
    assert any("**Time**: about 70 s" in m.value for m in at.markdown)
    at.selectbox(key="new_preset").set_value("PyTorch encoder (post-LayerNorm)")
    check(at.run())
    assert at.selectbox(key="new_modular_layernorm").value == "post" and at.text_input(key="new_name").value == (
        "torch-encoder-mine"
    )
    at.selectbox(key="new_preset").set_value("777-parameter adder")
    check(at.run())
    assert at.text_input(key="new_digits_curriculum").value == "3:2000,6:7000,10"
    assert at.text_input(key="new_digits_steps").value == "27000"


def test_bad_values_are_refused_in_the_trainers_words(new_app, check, runs) -> None:
    at = check(_page(new_app))
    at.text_input(key="new_modular_p").set_value("24")
    at.run()
    with pytest.raises(ConfigError) as refused:
        Config(p=24)
    assert [e.value for e in at.error] == [refused.value.as_flags()]
    assert _start_button(at).disabled
    at.text_input(key="new_modular_p").set_value("x")
    at.run()
    assert [e.value for e in at.error] == ["--p: 'x' is not an integer"]
    at.text_input(key="new_modular_p").set_value("113")
    at.text_input(key="new_modular_d_mlp").set_value("10000000")  # the trainer's memory check refuses it
    at.run()
    assert len(at.error) == 1 and "more than this machine's available memory" in at.error[0].value
    assert _start_button(at).disabled


@pytest.mark.parametrize("name", ["../escape", "/tmp/abs", "two words", ".hidden"])
def test_names_that_leave_the_runs_folder_are_refused(new_app, runs, name) -> None:
    at = _page(new_app)
    at.text_input(key="new_name").set_value(name)
    _start_button(at).click()
    at.run()
    assert any(f"run name {name!r}" in e.value for e in at.error)
    assert list(runs.iterdir()) == [] and not (runs.parent / "escape").exists()


def test_an_existing_name_is_refused_and_kept(new_app, runs) -> None:
    (runs / "taken").mkdir()
    (runs / "taken" / "mine.txt").write_text("keep me")
    at = _page(new_app)
    at.text_input(key="new_name").set_value("taken")
    _start_button(at).click()
    at.run()
    assert any("already exists" in e.value for e in at.error)
    assert (runs / "taken" / "mine.txt").read_text() == "keep me"


def test_read_only_removes_the_page_and_the_limit_refuses(new_app, runs, monkeypatch) -> None:
    monkeypatch.setenv(jobs.READ_ONLY_ENV, "1")
    from grokviz.ui import navigation

    assert "new" not in navigation.page_names() and "sweeps" in navigation.page_names()
    at = new_app(timeout=120)
    at.run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):  # not in the app at all
        at.switch_page(NEW_PAGE)
    monkeypatch.setenv(jobs.READ_ONLY_ENV, "0")
    monkeypatch.setenv(jobs.MAX_JOBS_ENV, "0")
    at = _page(new_app)
    _start_button(at).click()
    at.run()
    assert any("GROKVIZ_MAX_JOBS allows 0 at once" in e.value for e in at.error)
    assert list(runs.iterdir()) == []


# An app process: it opens the New run page, starts a tiny run from the form, then waits to be killed.
APP_PROCESS = textwrap.dedent(
    """
    import sys, time
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(sys.argv[1], default_timeout=120)
    at.run()
    at.switch_page("grokviz/ui/pages/new_run.py")
    at.run()
    at.text_input(key="new_name").set_value("tiny")
    for name, value in {tiny}.items():
        at.text_input(key="new_modular_" + name).set_value(value)
    next(b for b in at.button if b.label == "Start training").click()
    at.run()
    assert not at.error, [e.value for e in at.error]
    print("started", flush=True)
    time.sleep(600)
    """
)


def test_a_run_outlives_a_killed_app_and_a_new_app_shows_and_stops_it(new_app, check, runs) -> None:
    app = subprocess.Popen(
        [sys.executable, "-c", APP_PROCESS.format(tiny=TINY), str(REPO / "app.py")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert app.stdout.readline().strip() == "started"
    finally:
        os.kill(app.pid, signal.SIGKILL)
        app.wait()

    deadline = time.monotonic() + 60
    while not [s for s in jobs.list_jobs(runs) if s.state == "running" and s.step]:
        assert time.monotonic() < deadline, jobs.list_jobs(runs)
        time.sleep(0.2)
    at = check(_page(new_app))  # a new app
    assert any("**tiny**: running" in m.value for m in at.markdown), [m.value for m in at.markdown]
    assert any(c.value.startswith("Written by pid") for c in at.caption)

    explorer = check(new_app(timeout=120, run="tiny").run())
    assert any("training:" in c.value for c in explorer.sidebar.caption)
    assert any(c.value.startswith("Written by pid") for c in explorer.sidebar.caption)

    at = check(_page(new_app))
    next(b for b in at.button if b.label == "Stop").click()
    at.run()
    deadline = time.monotonic() + 60
    while (status := jobs.list_jobs(runs)[0]).state != "stopped":
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert 0 < status.step < 30000 and (runs / "tiny" / "resume.safetensors").is_file()
    at.run()
    labels = {b.label for b in at.button}
    assert "Resume" in labels and "Stop" not in labels


def test_a_run_trained_elsewhere_is_extended_from_the_page(new_app, check, runs, tiny_config) -> None:
    from grokviz.training.single import train

    train(tiny_config, runs / "done", progress=False, threads=1)  # 300 steps, as in a terminal
    at = check(_page(new_app))
    assert at.selectbox(key="continue_run").value == "done"
    assert any(c.value == "done: finished, step 300 of 300" for c in at.caption)
    at.number_input(key="extend_steps_other_done").set_value(360)
    next(b for b in at.button if b.key == "extend_other_done").click()
    check(at.run())
    deadline = time.monotonic() + 90
    while not [s for s in jobs.list_jobs(runs) if s.state == "finished" and s.step == 360]:
        assert time.monotonic() < deadline, jobs.list_jobs(runs)
        time.sleep(0.2)
    assert " --resume --steps 360 " in " ".join(jobs.list_jobs(runs)[0].job.argv)


def test_the_first_charts_need_no_torch() -> None:
    """What the explorer runs before its first charts (the fast start) imports no torch."""
    code = (
        "import sys; import grokviz.ui.main, grokviz.ui.navigation, grokviz.ui.catalog, grokviz.storage.jobs; "
        "import grokviz.ui.tabs.training; print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr


def test_the_first_charts_are_of_the_url_s_modular_run_in_the_runs_folder(runs, bundled_run_path) -> None:
    from grokviz.ui import catalog

    (runs / "add-p113").symlink_to(bundled_run_path)
    assert catalog.log_preview(None) == runs / "add-p113" / "log.csv"  # the default run
    assert catalog.log_preview("add-p113") == runs / "add-p113" / "log.csv"
    adder = Path(bundled_run_path).parent / "adder-777"
    if adder.is_dir():
        (runs / "adder").symlink_to(adder)
        assert catalog.log_preview("adder") is None  # another family: its page draws it
    for outside in ("../add-p113", str(bundled_run_path), "missing"):
        assert catalog.log_preview(outside) is None


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_is_a_valid_config_of_its_family_with_every_field_on_the_form(preset) -> None:
    from dataclasses import fields

    chosen = PRESETS[preset]
    cfg, problems = build_config(chosen.family, initial_values(chosen))
    assert problems == [] and cfg.family == chosen.family
    assert all(getattr(cfg, name) == value for name, value in chosen.values.items())
    grouped = form_fields(chosen.family)
    on_form = [f.name for group in grouped.values() for f in group]
    assert sorted(on_form) == sorted(f.name for f in fields(cfg)) and "Other" not in grouped

"""The app's Sweeps page (AppTest, no browser): it lists the sweeps under the runs folder, draws the
outcome grid, and opening a member makes it the explorer's run. Members are offered in the run
picker as "sweep/member", and a sweep folder is not reported as a broken run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grokviz.core.config import Config
from grokviz.storage.sweeps import open_sweep
from grokviz.training.ensemble import train_ensemble
from grokviz.training.grids import grid_configs

SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints" / "sweep-p31"
SWEEPS_PAGE = "grokviz/ui/pages/sweeps.py"  # relative to app.py, as AppTest.switch_page wants it


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    """A runs folder holding a copy of the shipped sweep (or, without it, a tiny trained one)."""
    root = tmp_path_factory.mktemp("runs")
    if (SHIPPED / "sweep.json").is_file():
        shutil.copytree(SHIPPED, root / SHIPPED.name)
    else:
        base = Config(p=23, d_model=32, d_mlp=64, n_heads=4, d_head=8, lr=3e-3, steps=60, log_every=10)
        train_ensemble(
            grid_configs(base, weight_decays=[0.0, 1.0], frac_trains=[0.3, 0.6]), root / "sweep-tiny", progress=False
        )
    return root


def test_sweeps_page_shows_the_grid_and_opens_a_member(runs_root: Path, monkeypatch, new_app, check) -> None:
    monkeypatch.setenv("GROKVIZ_RUNS", str(runs_root))
    sweep_dir = next(runs_root.iterdir())
    sweep = open_sweep(sweep_dir)
    at = check(new_app(timeout=60).run())  # the explorer, the default page
    # No warning about the sweep folder not being a run; its members are in the picker.
    assert not [w.value for w in at.warning if "run.json" in w.value]
    picker = at.selectbox(key="run")
    assert len(picker.options) == len(sweep.members)
    assert f"{sweep_dir.name}/{sweep.members[0].name}" in picker.options  # labelled "sweep/member"
    first = picker.value

    at.switch_page(SWEEPS_PAGE)
    check(at.run())
    assert not at.select_slider  # a page of its own: no step slider, no (a, b)
    assert at.selectbox(key="sweep").value == sweep_dir.name
    assert any("members:" in c.value for c in at.caption)
    keys = [member.path.resolve().as_posix() for member in sweep.members]  # outside the app folder: absolute
    assert at.selectbox(key="sweep_member").value in keys
    target = next(key for key in keys if key != first)
    at.selectbox(key="sweep_member").set_value(target)
    check(at.run())
    next(b for b in at.button if b.label == "Open this member").click()
    check(at.run())
    # Back in the explorer, on the member's Training tab.
    assert at.selectbox(key="run").value == target
    assert at.session_state["tab"] == "Training"
    assert at.header[0].value.startswith(Path(target).name)


def test_sweeps_page_follows_a_sweep_being_trained(tmp_path: Path, monkeypatch, new_app, check) -> None:
    # What `grokviz ensemble --ray` leaves while it trains: every member's run.json at once, then the
    # logs as the groups go. Here one member is done, one half way, one not started.
    from grokviz.training.distributed import prepare, train_group

    base = Config(p=23, d_model=16, d_mlp=32, n_heads=2, d_head=8, steps=40, log_every=10, save_every=20)
    configs = grid_configs(base, seeds=[0, 1, 2])
    out = tmp_path / "live"
    prepare(configs, out, None, 1, resume=False)
    folders = [out / m.name for m in open_sweep(out).members]
    train_group(configs[:1], folders[:1], save="ends", device="cpu", threads=1, use_graphs=False)
    half = (folders[0] / "log.csv").read_text().splitlines(keepends=True)[:3]  # header, steps 0 and 10
    (folders[1] / "log.csv").write_text("".join(half))
    monkeypatch.setenv("GROKVIZ_RUNS", str(tmp_path))
    at = check(new_app(timeout=60).run())
    at.switch_page(SWEEPS_PAGE)
    check(at.run())
    captions = " ".join(c.value for c in at.caption)
    assert "1 training" in captions and "1 waiting" in captions
    assert "this page follows the sweep" in captions
    table = at.dataframe[0].value
    assert table.set_index("member")["outcome"][folders[2].name] == "waiting"

"""Group runs on the pages shared by every family (AppTest, no browser): the Sweeps page draws a
groups sweep's grid and the Compare page puts two group runs on one set of axes, with their log
curves and a note, in words, that the frequency progress measures are the modular family's."""

from __future__ import annotations

from pathlib import Path

import pytest

from grokviz.core.groups_config import GroupsConfig
from grokviz.storage.sweeps import open_sweep
from grokviz.training.ensemble import train_ensemble
from grokviz.training.grids import grid_configs

SWEEPS_PAGE = "grokviz/ui/pages/sweeps.py"
COMPARE_PAGE = "grokviz/ui/pages/compare.py"


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    """A runs folder with one groups sweep: D4 composition, 2 seeds x 2 train fractions."""
    root = tmp_path_factory.mktemp("group-runs")
    base = GroupsConfig(group="D4", d_model=16, n_heads=2, d_head=8, d_mlp=32, steps=60, log_every=10)
    configs = grid_configs(base, seeds=[0, 1], frac_trains=[0.4, 0.7])
    train_ensemble(configs, root / "d4-sweep", progress=False, device="cpu")
    return root


def test_the_sweeps_page_draws_a_groups_sweep(runs_root, monkeypatch, new_app, check) -> None:
    monkeypatch.setenv("GROKVIZ_RUNS", str(runs_root))
    at = new_app(timeout=120)
    at.switch_page(SWEEPS_PAGE)
    check(at.run())
    sweep = open_sweep(runs_root / "d4-sweep")
    assert at.selectbox(key="sweep").value == "d4-sweep"
    assert any(f"members: {len(sweep.members)}" in c.value or "4 members" in c.value for c in at.caption)
    assert at.get("vega_lite_chart"), "the outcome grid is drawn"


def test_the_compare_page_takes_group_runs(runs_root, monkeypatch, new_app, check) -> None:
    monkeypatch.setenv("GROKVIZ_RUNS", str(runs_root))
    at = new_app(timeout=120)
    at.switch_page(COMPARE_PAGE)
    check(at.run())
    members = sorted(p for p in (runs_root / "d4-sweep").iterdir() if p.is_dir())[:2]
    for member in members:  # keys: absolute paths outside the cwd
        at.multiselect(key="compare").select(member.resolve().as_posix())
    check(at.run())
    assert len(at.multiselect(key="compare").value) == 2
    titles = [c.proto.spec for c in at.get("vega_lite_chart")]
    assert any('"Loss"' in spec for spec in titles) and any('"Accuracy"' in spec for spec in titles)
    notes = " ".join(str(getattr(e, "value", "")) for e in [*at.info, *at.caption, *at.warning, *at.markdown])
    assert "is a finite-group run" in notes, notes[:2000]


BUNDLED = Path(__file__).resolve().parents[2] / "checkpoints"


def test_the_bundled_s5_run_opens_with_its_phases(monkeypatch, new_app, check) -> None:
    """The Groups page opens checkpoints/s5 first; its Training tab shades the phases the explorer's
    rule reads off the log and says where they end."""
    if not (BUNDLED / "s5" / "run.json").is_file():
        pytest.skip("checkpoints/s5 is not bundled in this checkout")
    from grokviz.analysis.progress import phase_boundaries
    from grokviz.storage.runs import open_run

    monkeypatch.setenv("GROKVIZ_RUNS", str(BUNDLED))
    at = new_app(timeout=180)
    at.run()
    at.switch_page("grokviz/ui/pages/groups.py")
    check(at.run())
    run = open_run(BUNDLED / "s5")
    assert at.selectbox(key="group_run").value.endswith("s5")
    assert [m.value for m in at.metric if m.label == "Test accuracy"] == [f"{run.log().test_accuracy.iloc[-1]:.1%}"]
    phases = phase_boundaries(run.log())
    said = [c.value for c in at.caption if c.value.startswith("Phases, from the log")]
    assert said and f"memorisation ends at step {phases.memorisation_end:,}" in said[0]
    assert f"circuit formation at {phases.circuit_formation_end:,}" in said[0]
    assert f"cleanup at {phases.cleanup_end:,}" in said[0]

"""The Adder page (AppTest): it opens a digits run on every tab, answers a typed a + b digit by
digit, refuses a malformed number in words and keeps working, refuses a modular run (and the
explorer refuses a digits run), and ablates the head."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grokviz.core.digits_config import DigitsConfig
from grokviz.training.digits import train_digits

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "checkpoints" / "adder-777"
MODULAR = REPO / "checkpoints" / "add-p113"
ADDER_PAGE = "grokviz/ui/pages/digits.py"


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    """A runs folder with a digits run (a tiny trained one: fast to analyse) and, when shipped, the modular run."""
    root = tmp_path_factory.mktemp("runs")
    cfg = DigitsConfig(curriculum="2:40,10", steps=80, batch_size=64, val_size=32, log_every=10, save_every=40)
    train_digits(cfg, root / "adder-tiny", threads=1, progress=False)
    if (MODULAR / "run.json").is_file():
        (root / "add-p113").mkdir()
        shutil.copy(MODULAR / "run.json", root / "add-p113" / "run.json")
    return root


def _adder(new_app, monkeypatch, runs_root, **query):
    monkeypatch.setenv("GROKVIZ_RUNS", str(runs_root))
    at = new_app(timeout=120)
    at.run()
    at.switch_page(ADDER_PAGE)
    for key, value in query.items():  # the page's own URL parameters
        at.query_params[key] = value
    return at.run()


def test_the_training_tab_draws(new_app, check, monkeypatch, runs_root) -> None:
    at = check(_adder(new_app, monkeypatch, runs_root))
    assert any("10-digit addition with 777 parameters" in h.value for h in at.header)
    assert [m.label for m in at.metric][:2] == ["Exact match (verification set)", "Loss per answer token"]
    assert at.select_slider(key="adder_step").value == 80  # the last checkpoint
    at.select_slider(key="adder_step").set_value(40).run()
    check(at)
    assert any(m.label == "Step" and m.value == "40" for m in at.metric)


@pytest.mark.parametrize("tab", ["Carry chains", "Try a + b", "Ablation", "Carry probe"])
def test_each_tab_opens_without_errors(new_app, check, monkeypatch, runs_root, tab) -> None:
    at = check(_adder(new_app, monkeypatch, runs_root, adder_tab=tab))
    if tab == "Try a + b":
        table = at.dataframe[0].value
        assert list(table["position"])[:2] == ["10^0", "10^1"] and len(table) == 12
        assert any("1,234,567,890 + 9,876,543,210" in s.value for s in at.subheader)


def test_a_malformed_number_is_refused_and_the_page_keeps_working(new_app, monkeypatch, runs_root) -> None:
    at = _adder(new_app, monkeypatch, runs_root, adder_tab="Try a + b")
    at.text_input(key="adder_a").set_value("12x4").run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "a='12x4' is not a whole number; type digits 0-9 only, from 0 to 9,999,999,999 (10 digits)"
    ]
    at.text_input(key="adder_a").set_value("5").run()
    at.text_input(key="adder_b").set_value("7").run()
    assert not at.error and any("5 + 7 = " in s.value for s in at.subheader)


def test_a_modular_run_is_refused_on_the_adder_page(new_app, monkeypatch, runs_root) -> None:
    if not (runs_root / "add-p113").is_dir():
        pytest.skip("checkpoints/add-p113 is not in this checkout")
    at = _adder(new_app, monkeypatch, runs_root, adder_run="add-p113")
    assert not at.exception
    assert any("is a modular-arithmetic run; the Adder page needs a 10-digit adder run" in e.value for e in at.error)
    # ...and the page still shows the adder run.
    assert any("10-digit addition" in h.value for h in at.header)
    # The same for a modular run folder typed into the sidebar.
    at = _adder(new_app, monkeypatch, runs_root)
    at.text_input(key="adder_folder").set_value(str(runs_root / "add-p113")).run()
    assert not at.exception
    assert any("add-p113: is a modular-arithmetic run" in e.value for e in at.error)
    assert any("10-digit addition" in h.value for h in at.header)


def test_the_explorer_refuses_a_digits_run(new_app, monkeypatch, runs_root) -> None:
    monkeypatch.setenv("GROKVIZ_RUNS", str(runs_root))
    at = new_app(timeout=120, run="adder-tiny").run()
    assert not at.exception
    assert any("is a 10-digit adder run; the run explorer needs a modular-arithmetic run" in e.value for e in at.error)


def test_ablating_the_head_changes_exact_match_or_digits(new_app, check, monkeypatch, runs_root) -> None:
    at = check(_adder(new_app, monkeypatch, runs_root, adder_tab="Ablation"))
    metric = [m for m in at.metric if m.label.startswith("Exact match after")]
    assert metric and metric[0].label == "Exact match after: zero-ablate head 0.0"
    at.radio(key="adder_abl_kind").set_value("neuron").run()
    at.radio(key="adder_abl_mode").set_value("mean").run()
    check(at)
    assert any(m.label == "Exact match after: mean-ablate neuron 0.0" for m in at.metric)

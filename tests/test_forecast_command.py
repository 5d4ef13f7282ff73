"""grokviz forecast on a small run that groks: the JSON contract, only files <= --at are read,
too early and other families refused in one line."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd

from grokviz.analysis.forecast import fitted_constants, forecast
from grokviz.cli import main as cli
from grokviz.storage.forecast import forecast_run, observe
from grokviz.storage.runs import open_run

REPO = Path(__file__).resolve().parents[1]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = cli(["forecast", *argv])
    except SystemExit as exc:  # argparse's refusals exit from inside the parser
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def copy_of(run, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(run.path, target, ignore=shutil.ignore_patterns("timeline*.json"))
    return target


def test_json_contract_and_the_grok_seen_with_all_signals(grokked_run, tmp_path, capsys):
    path = copy_of(grokked_run, tmp_path)
    code, out, err = run_cli(capsys, str(path), "--json", "--signals", "all")
    assert code == 0, err
    made = json.loads(out)
    assert {"at_step", "will_grok", "grok_step", "low", "high", "horizon", "signals"} <= set(made)
    log = open_run(path).log()
    grokked = log[log["test_accuracy"] >= 0.95]["step"]
    assert made["will_grok"] is True and made["observed"] is True
    assert made["grok_step"] >= int(grokked.min()) and made["at_step"] == int(log["step"].max())
    assert made["signals"]["llc"] > 0 and "restricted_loss" in made["signals"]
    code, out, _ = run_cli(capsys, str(path), "--json")  # train signals: no test split read
    made = json.loads(out)
    assert code == 0 and "test_loss" not in made["signals"] and "restricted_loss" not in made["signals"]


def test_reads_only_files_at_or_before_the_step(grokked_run, tmp_path, capsys):
    steps = grokked_run.steps()
    at = steps[len(steps) // 2 + 1]
    whole = copy_of(grokked_run, tmp_path)
    cut = tmp_path / "cut"
    shutil.copytree(whole, cut)
    for step in steps:
        if step > at:
            (cut / f"step_{step:06d}.safetensors").unlink()
    log = pd.read_csv(cut / "log.csv")
    log[log["step"] <= at].to_csv(cut / "log.csv", index=False)
    outputs = []
    for path in (whole, cut):
        code, out, err = run_cli(capsys, str(path), "--at", str(at), "--json")
        assert code == 0, err
        outputs.append(json.loads(out))
    assert outputs[0] == outputs[1]


def test_too_early_and_other_families_are_one_error_line(grokked_run, tmp_path, capsys):
    path = copy_of(grokked_run, tmp_path)
    code, out, err = run_cli(capsys, str(path), "--at", "1")
    assert code == 2 and out == ""
    assert err.startswith("error: too early at step 1") and "memorised" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, str(REPO / "checkpoints" / "adder-777"))
    assert code == 2 and "10-digit adder run" in err and "modular-arithmetic run" in err
    code, _, err = run_cli(capsys, str(path), "--signals", "test")
    assert code == 2 and "--signals" in err


def test_observe_without_the_llc_gives_the_same_forecast(grokked_run, tmp_path):
    # scripts/eval_forecast.py observes its ~400 fitting forecasts without the LLC, which the
    # shipped correction does not use: the forecast must be the one `grokviz forecast` makes.
    run = open_run(copy_of(grokked_run, tmp_path))
    at = run.steps()[len(run.steps()) // 2 + 1]
    quick = observe(run, at, llc=False)
    assert math.isnan(quick.probe_end["llc"]) and quick.probe_end["excluded_loss"] > 0
    made, full = forecast(quick, "train", fitted_constants()).to_dict(), forecast_run(run, at).to_dict()
    assert full["signals"]["llc"] > 0
    for key in ("will_grok", "grok_step", "low", "high"):
        assert made[key] == full[key]


def test_a_deeper_or_minibatch_run_is_refused_in_words(capsys) -> None:
    """The constants were fitted on 1-layer full-batch runs: the bundled 2-layer minibatch run is refused."""
    deep = REPO / "checkpoints" / "div-p97-2l"
    if not deep.is_dir():
        return
    code, out, err = run_cli(capsys, str(deep), "--at", "2840")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "fitted on 1-layer, full-batch runs; this run has 2 layers" in err

"""The ``python -m grokviz.analyze`` command line (contract in shared/docs/DESIGN.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from grokviz.commands.analyze import main
from grokviz.storage.runs import open_run
from grokviz.training.single import train

REPO = Path(__file__).resolve().parents[1]
CONTRACT_KEYS = {
    "step",
    "p",
    "task",
    "train_loss",
    "test_loss",
    "train_accuracy",
    "test_accuracy",
    "key_frequencies",
    "neuron_frequency_counts",
    "fraction_neurons_clustered",
    "excluded_loss",
    "restricted_loss",
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_config):
    return train(tiny_config, tmp_path_factory.mktemp("analyze") / "tiny", progress=False)


def _json(capsys, argv) -> dict:
    assert main(argv) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out)


def test_json_contract_on_a_run_folder(tiny_run, capsys):
    out = _json(capsys, [str(tiny_run.path), "--json"])
    assert CONTRACT_KEYS <= set(out)
    assert out["step"] == tiny_run.steps()[-1] == 300
    assert out["p"] == 23 and out["task"] == "add"
    assert out["key_frequencies"] == sorted(out["key_frequencies"])
    assert all(isinstance(k, int) and 1 <= k <= 11 for k in out["key_frequencies"])
    counts = out["neuron_frequency_counts"]
    assert sorted(int(k) for k in counts) == out["key_frequencies"]
    assert all(isinstance(n, int) and n >= 1 for n in counts.values())
    assert out["fraction_neurons_clustered"] == pytest.approx(sum(counts.values()) / 128)
    for key in ("train_loss", "test_loss", "excluded_loss", "restricted_loss"):
        assert isinstance(out[key], float) and out[key] >= 0
    assert 0 <= out["train_accuracy"] <= 1 and 0 <= out["test_accuracy"] <= 1
    log = tiny_run.log().set_index("step")
    assert out["train_loss"] == pytest.approx(log.loc[300, "train_loss"], rel=1e-4)
    assert out["test_accuracy"] == pytest.approx(log.loc[300, "test_accuracy"], abs=1e-9)


def test_step_and_checkpoint_file(tiny_run, capsys):
    out = _json(capsys, [str(tiny_run.path), "--step", "100", "--json"])
    assert out["step"] == 100
    from_file = _json(capsys, [str(tiny_run.checkpoint_path(100)), "--json"])
    assert from_file["step"] == 100
    assert from_file["train_loss"] == pytest.approx(out["train_loss"], rel=1e-12)
    assert from_file["key_frequencies"] == out["key_frequencies"]
    also = _json(capsys, [str(tiny_run.checkpoint_path(100)), "--step", "100", "--json"])
    assert also["step"] == 100


def test_key_freqs_option_sets_the_ablated_frequencies(tiny_run, capsys):
    out = _json(capsys, [str(tiny_run.path), "--json", "--key-freqs", "3,1"])
    assert out["ablation_frequencies"] == [1, 3]


def test_human_summary(tiny_run, capsys):
    assert main([str(tiny_run.path)]) == 0
    text = capsys.readouterr().out
    assert "step 300" in text and "key frequencies" in text and "restricted loss" in text
    assert not text.lstrip().startswith("{")


@pytest.mark.parametrize(
    "argv_tail, message",
    [
        (["--step", "12345"], "no checkpoint for --step 12345"),
        (["--timeline-on-file"], "--timeline needs a run folder"),
        (["--step-mismatch"], "not --step"),
        (["--missing"], "no such run folder or checkpoint file"),
        (["--key-freqs", "0,99"], "outside 1..11"),
        (["--key-freqs", "a,b"], "comma-separated integers"),
        (["--not-a-run"], "not a grokviz run folder"),
    ],
)
def test_user_errors_exit_2_with_one_line(tiny_run, tmp_path, capsys, argv_tail, message):
    path = str(tiny_run.path)
    if argv_tail == ["--timeline-on-file"]:
        argv = [str(tiny_run.checkpoint_path(100)), "--timeline"]
    elif argv_tail == ["--step-mismatch"]:
        argv = [str(tiny_run.checkpoint_path(100)), "--step", "200"]
    elif argv_tail == ["--missing"]:
        argv = [str(tmp_path / "nowhere")]
    elif argv_tail == ["--not-a-run"]:
        argv = [str(tmp_path)]
    else:
        argv = [path, *argv_tail]
    assert main(argv + ["--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and message in captured.err
    assert "Traceback" not in captured.err


def test_timeline_option(tiny_run, capsys):
    out = _json(capsys, [str(tiny_run.path), "--json", "--timeline"])
    assert len(out["timeline"]) == len(tiny_run.steps())
    assert [row["step"] for row in out["timeline"]] == tiny_run.steps()
    assert set(out["phases"]) == {"memorisation_end", "circuit_formation_end", "cleanup_end", "rule"}
    assert (tiny_run.path / "timeline.json").is_file()
    assert out["timeline_key_frequencies"] == out["key_frequencies"]


def test_module_entry_point_prints_json_and_errors(tiny_run):
    env_python = [sys.executable, "-m", "grokviz", "analyze"]
    done = subprocess.run(
        env_python + [str(tiny_run.path), "--json"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert CONTRACT_KEYS <= set(out) and out["step"] == 300
    bad = subprocess.run(
        env_python + [str(tiny_run.path), "--step", "7", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def test_bundled_run_summary(bundled_run_path, capsys):
    run = open_run(bundled_run_path)
    if run.config.steps not in run.steps():
        pytest.skip("the bundled run is still training")
    out = _json(capsys, [str(bundled_run_path), "--json"])
    assert out["p"] == 113 and out["step"] == run.config.steps
    assert out["test_accuracy"] == 1.0
    assert out["restricted_loss"] < out["test_loss"] * 10 and out["excluded_loss"] > 4.7
    assert out["fraction_neurons_clustered"] > 0.5


def test_reference_checkpoint_imported_as_a_run(fixtures_dir, tmp_path, capsys):
    from grokviz import interop

    path = fixtures_dir / "progress-measures-seed1-wd1.pth"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    run_dir = interop.write_run(interop.import_progress_measures(path), tmp_path / "seed1")
    out = _json(capsys, [str(run_dir), "--json"])
    assert out["p"] == 113 and out["task"] == "add"
    assert out["key_frequencies"] == [6, 23, 37, 39, 41]
    assert out["neuron_frequency_counts"] == {"6": 47, "23": 31, "37": 65, "39": 11, "41": 31}
    assert out["fraction_neurons_clustered"] == pytest.approx(185 / 512)
    assert out["train_accuracy"] == 1.0 and out["test_accuracy"] == 1.0  # every pair is right
    assert out["restricted_loss"] < 1e-7 and out["excluded_loss"] > 8


def test_div_with_missing_pairs_is_analysed_in_the_discrete_log_basis(tmp_path, capsys):
    from grokviz.core.config import Config

    cfg = Config(
        task="div",
        p=23,
        d_model=32,
        d_mlp=64,
        n_heads=4,
        d_head=8,
        frac_train=0.5,
        steps=40,
        log_every=10,
        save_every=20,
        save_log_points=3,
    )
    run = train(cfg, tmp_path / "div", progress=False)
    out = _json(capsys, [str(run.path), "--json", "--timeline"])
    assert out["task"] == "div" and out["fourier_task"] is True
    assert out["basis"] == "discrete-log" and out["generator"] == 5  # the smallest primitive root of 23
    assert all(1 <= k <= 11 for k in out["key_frequencies"])  # frequencies over Z_22
    assert out["step"] == 40 and len(out["timeline"]) == len(run.steps())
    assert main([str(run.path)]) == 0
    printed = capsys.readouterr().out
    assert "discrete-log, generator g = 5" in printed and "not meaningful" not in printed

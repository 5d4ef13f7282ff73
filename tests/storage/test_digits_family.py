"""Run folders of two families: a digits run opened where a modular run is expected, and the
reverse, and a checkpoint whose shapes contradict its config, each get one clear message and
nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from grokviz.commands import analyze, train, train_digits
from grokviz.core.config import Config
from grokviz.core.digits_config import DigitsConfig
from grokviz.core.families import require_family
from grokviz.errors import GrokvizError
from grokviz.storage.runs import load_checkpoint_file, open_run
from grokviz.storage.timeline import timeline
from grokviz.training.digits import train_digits as train_digits_run
from grokviz.training.single import train as train_modular

DIGITS = DigitsConfig(curriculum="2:10,10", steps=20, batch_size=16, val_size=8, log_every=10, save_every=10)
MODULAR = Config(p=23, d_model=16, d_mlp=32, n_heads=2, d_head=8, steps=20, log_every=10, save_every=10)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("families")
    return {
        "digits": train_digits_run(DIGITS, root / "adder", progress=False).path,
        "modular": train_modular(MODULAR, root / "mod", progress=False).path,
    }


def listing(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*")}


def one_error(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_each_family_reads_back_as_itself(runs) -> None:
    assert isinstance(open_run(runs["digits"]).config, DigitsConfig)
    assert isinstance(open_run(runs["modular"]).config, Config)
    assert "family" not in json.loads((runs["modular"] / "run.json").read_text())  # old runs: no field


def test_modular_readers_refuse_a_digits_run(runs, capsys) -> None:
    before = listing(runs["digits"])
    err = one_error(capsys, analyze.main([str(runs["digits"]), "--timeline"]))
    assert "is a 10-digit adder run; --timeline is for modular-arithmetic runs only" in err
    err = one_error(capsys, train.main(["--out", str(runs["digits"]), "--resume", "--no-progress"]))
    assert "is a 10-digit adder run (open it on the Adder page); grokviz train --resume needs a modular" in err
    with pytest.raises(GrokvizError, match="progress measures"):
        timeline(open_run(runs["digits"]))
    with pytest.raises(GrokvizError, match="is a 10-digit adder run"):
        require_family(open_run(runs["digits"]).config, "modular", "x")
    assert listing(runs["digits"]) == before


def test_digits_readers_refuse_a_modular_run(runs, capsys) -> None:
    before = listing(runs["modular"])
    err = one_error(capsys, train_digits.main(["--out", str(runs["modular"]), "--resume", "--no-progress"]))
    assert "is a modular-arithmetic run (open it in the run explorer); grokviz train-digits --resume needs" in err
    assert listing(runs["modular"]) == before


def test_analyze_summarises_a_digits_run(runs, capsys) -> None:
    assert analyze.main([str(runs["digits"]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["family"] == "digits" and out["step"] == 20 and out["n_params"] == 777
    assert out["verification"]["pairs"] == 10_034 and 0 <= out["verification"]["exact_match"] <= 1
    assert list(out["verification"]["per_position"])[:2] == ["10^0", "10^1"]


def test_a_checkpoint_whose_shapes_contradict_its_config(runs, tmp_path, capsys) -> None:
    run = open_run(runs["digits"])
    tensors = dict(run.load(10))
    tensors["blocks.0.mlp.W_in"] = torch.zeros(7, 28)  # the config says d_mlp 14
    bad = tmp_path / "step_000010.safetensors"
    metadata = {"format": "grokviz.checkpoint/1", "step": "10", "config": DIGITS.to_json(), "family": "digits"}
    save_file(tensors, str(bad), metadata=metadata)
    with pytest.raises(GrokvizError, match=r"blocks.0.mlp.W_in has shape \(7, 28\), the config implies \(7, 14\)"):
        load_checkpoint_file(bad)
    err = one_error(capsys, analyze.main([str(bad)]))
    assert "W_in has shape (7, 28)" in err
    # Inside the run folder it is skipped, named, and the other checkpoints still load.
    copy = tmp_path / "run"
    copy.mkdir()
    for path in runs["digits"].iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    (copy / bad.name).write_bytes(bad.read_bytes())
    reopened = open_run(copy)
    assert 10 not in reopened.steps() and 20 in reopened.steps()
    assert any("W_in has shape (7, 28)" in p for p in reopened.problems)


def test_a_checkpoint_of_the_other_family_in_a_run_folder_is_skipped(runs, tmp_path) -> None:
    copy = tmp_path / "mod"
    copy.mkdir()
    for path in runs["modular"].iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    (copy / "step_000010.safetensors").write_bytes((runs["digits"] / "step_000010.safetensors").read_bytes())
    reopened = open_run(copy)
    assert 10 not in reopened.steps()
    assert any("is a checkpoint of a 10-digit adder run, but run.json says" in p for p in reopened.problems)


def test_an_unknown_family_is_refused(runs, tmp_path) -> None:
    folder = tmp_path / "strange"
    folder.mkdir()
    body = json.loads((runs["digits"] / "run.json").read_text()) | {"family": "sorting"}
    (folder / "run.json").write_text(json.dumps(body))
    with pytest.raises(GrokvizError, match="unknown model family 'sorting'"):
        open_run(folder)

"""A corpus of broken, foreign and hostile files, generated here (never committed as binaries).

For each: the loader gives one GrokvizError (or one reported problem) naming the file and what is
wrong, and a good run beside a broken file still loads with the broken step skipped and reported.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from grokviz.core.config import Config
from grokviz.errors import GrokvizError
from grokviz.storage.log import LOG_FILE
from grokviz.storage.runs import RUN_FILE, checkpoint_name, list_runs, load_checkpoint_file, open_run, save_checkpoint
from grokviz.training.single import train


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    cfg = Config(
        p=13,
        d_model=16,
        d_mlp=32,
        n_heads=2,
        d_head=8,
        frac_train=0.5,
        steps=40,
        log_every=10,
        save_every=20,
        save_log_points=0,
    )
    path = tmp_path_factory.mktemp("runs") / "good"
    train(cfg, path, progress=False)
    return path


@pytest.fixture
def run_copy(good_run, tmp_path) -> Path:
    path = tmp_path / "run"
    shutil.copytree(good_run, path)
    return path


def valid_tensors(run: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    with safe_open(str(run / checkpoint_name(20)), framework="pt") as handle:
        return {k: handle.get_tensor(k) for k in handle.keys()}, handle.metadata()


def header_bytes(header: dict | bytes, declared_length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if declared_length is None else declared_length) + raw


def corrupt_files(run: Path) -> dict[str, tuple[bytes | None, str]]:
    """file step -> (bytes to write, words the message must contain)."""
    tensors, metadata = valid_tensors(run)
    good = (run / checkpoint_name(20)).read_bytes()

    def variant(tensors_changed=None, metadata_changed=None, drop=None) -> bytes:
        changed = dict(tensors)
        changed.update(tensors_changed or {})
        if drop:
            del changed[drop]
        tmp = run.parent / "variant.safetensors"
        save_file(changed, str(tmp), metadata={**metadata, "step": "30", **(metadata_changed or {})})
        data = tmp.read_bytes()
        tmp.unlink()
        return data

    other_cfg = Config.from_json(metadata["config"]).replace(lr=0.5)
    bigger_cfg = Config.from_json(metadata["config"]).replace(p=17)
    nan = tensors["blocks.0.mlp.W_in"].clone()
    nan[0, 0] = math.nan
    return {
        "empty": (b"", "not a readable safetensors file"),
        "truncated": (good[: len(good) // 2], "not a readable safetensors file"),
        "random": (os.urandom(5000), "not a readable safetensors file"),
        "terabyte header": (header_bytes({"a": 1}, declared_length=2**40), "not a readable safetensors file"),
        "header not json": (header_bytes(b"{this is not json" + b" " * 20), "not a readable safetensors file"),
        "pickle": (pickle.dumps({"model": {"x": [1, 2, 3]}}), "not a readable safetensors file"),
        "missing tensor": (variant(drop="unembed.W_U"), "missing ['unembed.W_U']"),
        "wrong shape": (variant({"blocks.0.mlp.W_in": torch.zeros(3, 3)}), "blocks.0.mlp.W_in has shape (3, 3)"),
        "nan weights": (variant({"blocks.0.mlp.W_in": nan}), "NaN or infinite"),
        "metadata config not json": (variant(metadata_changed={"config": "{p: 13"}), "not valid JSON"),
        "config contradicts tensors": (variant(metadata_changed={"config": bigger_cfg.to_json()}), "p=17 (run: 13)"),
        "another run's config": (variant(metadata_changed={"config": other_cfg.to_json()}), "belongs to another run"),
        "step disagrees with name": (variant(metadata_changed={"step": "7"}), "metadata says 7"),
        "step not a number": (variant(metadata_changed={"step": "soon"}), "no integer 'step'"),
        "integer tensors": (variant({"blocks.0.mlp.b_in": torch.zeros(32, dtype=torch.int32)}), "expected a float"),
    }


CASES = [
    "empty",
    "truncated",
    "random",
    "terabyte header",
    "header not json",
    "pickle",
    "missing tensor",
    "wrong shape",
    "nan weights",
    "metadata config not json",
    "config contradicts tensors",
    "another run's config",
    "step disagrees with name",
    "step not a number",
    "integer tensors",
]


@pytest.mark.parametrize("case", CASES)
def test_broken_checkpoint_is_skipped_and_reported_beside_good_ones(run_copy, case) -> None:
    data, words = corrupt_files(run_copy)[case]
    broken = run_copy / checkpoint_name(30)
    broken.write_bytes(data)
    run = open_run(run_copy)
    assert run.steps() == [0, 20, 40]  # the good steps still load
    assert len(run.problems) == 1
    message = run.problems[0]
    assert str(broken) in message and words in message, message
    assert run.load(40)["embed.W_E"].shape == (14, 16)
    with pytest.raises(GrokvizError, match="no loadable checkpoint for step 30") as skipped:
        run.load(30)
    assert words in str(skipped.value)  # the reason it was skipped, not only that it was
    # The same file opened on its own: one clear error naming it (or, for a file that is fine in
    # isolation but belongs to another run, a clean load).
    if case in ("another run's config", "step disagrees with name"):
        load_checkpoint_file(broken)
    else:
        with pytest.raises(GrokvizError) as info:
            load_checkpoint_file(broken)
        assert str(broken) in str(info.value)


def test_duplicated_step_keeps_the_canonical_file(run_copy) -> None:
    shutil.copy(run_copy / checkpoint_name(20), run_copy / "step_20.safetensors")
    run = open_run(run_copy)
    assert run.steps() == [0, 20, 40]
    assert run.problems == [
        f"{run_copy / 'step_20.safetensors'}: a second file for step 20 (kept {checkpoint_name(20)}); skipped"
    ]


def test_folders_symlinks_and_temporary_files_are_not_checkpoints(run_copy) -> None:
    (run_copy / checkpoint_name(50)).mkdir()
    (run_copy / checkpoint_name(60)).symlink_to(run_copy / "does-not-exist")
    (run_copy / f".{checkpoint_name(70)}.abc.tmp").write_bytes(b"half a file")  # a write in flight
    run = open_run(run_copy)
    assert run.steps() == [0, 20, 40]
    assert any("step_000050" in p and "not a regular file" in p for p in run.problems)
    assert any("step_000060" in p and "unreadable" in p for p in run.problems)
    assert len(run.problems) == 2


def test_log_with_torn_garbage_and_out_of_order_rows(run_copy) -> None:
    log = run_copy / LOG_FILE
    text = log.read_text()
    header, *rows = text.splitlines()
    garbage = ["not,a,row", "10,1,2,3", "-5,1,1,1,1,1"]
    shuffled = [rows[2], rows[0], *garbage, rows[1], rows[1], *rows[3:]]
    log.write_text("\n".join([header, *shuffled]) + "\n40,0.1,1.0,0.2")  # last line torn
    run = open_run(run_copy)
    frame = run.log()
    assert frame.step.tolist() == sorted(set(frame.step))  # ascending, no duplicates
    assert len(frame) == len(rows)
    assert len(run.problems) == 4  # three malformed rows and one repeated step; the torn line is silent
    assert all(str(log) in p for p in run.problems)


@pytest.mark.parametrize(
    "setup, words",
    [
        (lambda p: None, "no such run folder"),
        (lambda p: p.write_text("x"), "not a folder"),
        (lambda p: p.mkdir(), f"no {RUN_FILE}"),
        (
            lambda p: (p.mkdir(), (p / "notes.txt").write_text("hi"), (p / "a.png").write_bytes(b"\x89PNG")),
            f"no {RUN_FILE}",
        ),
        (lambda p: (p.mkdir(), (p / RUN_FILE).write_text("{oops")), "not readable JSON"),
        (lambda p: (p.mkdir(), (p / RUN_FILE).write_text('{"format": "other/2"}')), "unknown format 'other/2'"),
        (lambda p: (p.mkdir(), (p / RUN_FILE).write_text('["a list"]')), "unknown format None"),
        (
            lambda p: (p.mkdir(), (p / RUN_FILE).write_text('{"format": "grokviz.run/1", "config": {"p": 12}}')),
            "p=12 must be a prime",
        ),
        (
            lambda p: (p.mkdir(), (p / RUN_FILE).write_text('{"format": "grokviz.run/1", "config": {"p": "many"}}')),
            "run.json",
        ),
    ],
    ids=[
        "missing",
        "a file",
        "empty folder",
        "unrelated files",
        "bad json",
        "other format",
        "json list",
        "invalid config",
        "wrong type",
    ],
)
def test_not_a_run_gives_one_clear_error(tmp_path, setup, words) -> None:
    path = tmp_path / "candidate"
    setup(path)
    with pytest.raises(GrokvizError) as info:
        open_run(path)
    assert str(path) in str(info.value) and words in str(info.value), str(info.value)


def test_list_runs_reports_broken_runs_and_lists_good_ones(good_run, tmp_path) -> None:
    shutil.copytree(good_run, tmp_path / "a-good")
    (tmp_path / "b-empty").mkdir()
    (tmp_path / "c-junk").mkdir()
    (tmp_path / "c-junk" / RUN_FILE).write_text("\x00\x01")
    runs, problems = list_runs(tmp_path)
    assert [r.name for r in runs] == ["a-good"]
    assert len(problems) == 2 and "b-empty" in problems[0] and "c-junk" in problems[1]


def test_mixed_configs_in_one_folder(run_copy, tmp_path) -> None:
    run = open_run(run_copy)
    save_checkpoint(run_copy, 30, run.load(20), run.config.replace(seed=5))
    run = open_run(run_copy)
    assert run.steps() == [0, 20, 40]
    assert "seed=5 (run: 0)" in run.problems[0]


# --- the command lines: one line naming the file, exit status 2, never a traceback ----------------


def run_cli(capsys, main, argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err


@pytest.mark.parametrize("case", CASES)
def test_analyze_names_a_broken_checkpoint_file(run_copy, capsys, case) -> None:
    from grokviz.commands.analyze import main as analyze

    data, _ = corrupt_files(run_copy)[case]
    broken = run_copy / checkpoint_name(30)
    broken.write_bytes(data)
    code, err = run_cli(capsys, analyze, [str(broken), "--json"])
    if case in ("another run's config", "step disagrees with name"):
        assert code == 0  # a sound checkpoint on its own
    else:
        assert code == 2 and err.startswith("error: ") and str(broken) in err and err.count("\n") == 1
    # The run folder around it still analyses, and says which file it skipped.
    code, err = run_cli(capsys, analyze, [str(run_copy), "--json"])
    assert code == 0 and f"warning: {broken}" in err


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p / "missing",
        lambda p: (p / "empty").mkdir() or p / "empty",
        lambda p: (p / "notes.txt").write_text("hello") and p / "notes.txt",
        lambda p: (p / "model.pth").write_bytes(pickle.dumps({"a": 1})) and p / "model.pth",
    ],
    ids=["missing", "empty folder", "text file", "pickle"],
)
def test_clis_refuse_paths_that_are_not_runs(tmp_path, capsys, make) -> None:
    from grokviz.commands.analyze import main as analyze
    from grokviz.commands.convert import main as convert
    from grokviz.commands.train import main as train_cli

    path = make(tmp_path)
    for cli, argv in (
        (analyze, [str(path)]),
        (convert, ["progress-measures", str(path), "--out", str(tmp_path / "o")]),
        (train_cli, ["--out", str(path), "--resume", "--no-progress"]),
    ):
        code, err = run_cli(capsys, cli, argv)
        assert code == 2 and err.startswith("error: ") and str(path) in err, (cli.__module__, err)


def test_analyze_refuses_p_above_the_live_analysis_limit(tmp_path, capsys) -> None:
    from grokviz.commands.analyze import main as analyze
    from grokviz.core.config import ANALYSIS_P_MAX
    from grokviz.core.params import init_params
    from grokviz.storage.runs import write_run_file

    cfg = Config(p=263, d_model=8, d_mlp=8, n_heads=1, d_head=8)
    assert cfg.p > ANALYSIS_P_MAX
    write_run_file(tmp_path / "big", cfg)
    save_checkpoint(tmp_path / "big", 0, init_params(cfg), cfg)
    code, err = run_cli(capsys, analyze, [str(tmp_path / "big")])
    assert code == 2 and "p=263 is above 257" in err

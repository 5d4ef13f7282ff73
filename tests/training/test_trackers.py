"""Experiment trackers (grokviz.training.trackers): every log row reaches TensorBoard, W&B and
MLflow as written (read back with each one's own reader and compared with log.csv), a missing
package is one error line before training, and a tracker that fails mid-run never stops training."""

from __future__ import annotations

import importlib.util
import math

import pytest

from grokviz.commands import train as train_command
from grokviz.commands import train_digits as train_digits_command
from grokviz.core.config import Config
from grokviz.errors import GrokvizError
from grokviz.storage.runs import open_run
from grokviz.training import trackers
from grokviz.training.single import train

TINY = Config(p=13, d_model=16, n_heads=2, d_head=8, d_mlp=32, steps=60, log_every=10, save_every=30, save_log_points=2)
LOGGED = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")


def needs(module: str):
    return pytest.mark.skipif(
        importlib.util.find_spec(module) is None, reason=f"{module} is not installed (pip install 'grokviz[{module}]')"
    )


def assert_rows_match(run, sent: dict[str, dict[int, float]], columns=LOGGED, rel=1e-6) -> None:
    """Every finite value of ``columns`` in log.csv equals what the tracker holds at that step."""
    log = run.log()
    assert len(log) > 3
    for column in columns:
        for step, value in zip(log.step, log[column]):
            if math.isfinite(value):
                assert sent[column][int(step)] == pytest.approx(value, rel=rel, abs=1e-12), (column, step)


def assert_extras(run, sent: dict[str, dict[int, float]]) -> None:
    """The learning rate on every row and the Gini coefficients at every checkpoint."""
    assert set(sent["lr"]) == set(run.log().step)
    assert sent["sum_sq_weights"][0] > 0
    assert set(sent["progress/gini_embed"]) == set(run.steps())  # every checkpoint, the last included


class Recorder:
    def __init__(self):
        self.rows, self.closed = [], 0

    def log(self, values, step):
        self.rows.append((step, dict(values)))

    def close(self):
        self.closed += 1


class Raising(Recorder):
    """A tracker whose server dies after two rows."""

    def log(self, values, step):
        if len(self.rows) >= 2:
            raise OSError(28, "No space left on device")
        super().log(values, step)


def test_a_failing_tracker_never_stops_training(tmp_path, capsys):
    dead = Raising()
    run = train(TINY, tmp_path / "run", tracker=dead, progress=False, threads=1)
    reference = train(TINY, tmp_path / "reference", progress=False, threads=1)
    assert run.log().equals(reference.log().assign(elapsed_s=run.log().elapsed_s))
    assert run.steps() == reference.steps()
    for step in run.steps():
        assert all((run.load(step)[k] == v).all() for k, v in reference.load(step).items())
    warnings = [line for line in capsys.readouterr().err.splitlines() if "tracker failed" in line]
    assert len(warnings) == 1 and "No space left on device" in warnings[0]
    assert len(dead.rows) == 2 and dead.closed == 0  # dropped after its failure, never called again


def test_an_object_tracker_gets_each_row_as_written(tmp_path):
    recorder = Recorder()
    run = train(TINY, tmp_path / "run", tracker=recorder, progress=False, threads=1)
    sent: dict[str, dict[int, float]] = {}
    for step, values in recorder.rows:
        for key, value in values.items():
            sent.setdefault(key, {})[step] = value
    assert_rows_match(run, sent, rel=0)
    assert_extras(run, sent)
    assert recorder.closed == 1
    assert sent["lr"][0] == 0 and sent["lr"][TINY.warmup_steps] == TINY.lr


def test_unknown_and_missing_trackers_are_refused_before_training(tmp_path, monkeypatch, capsys):
    with pytest.raises(GrokvizError, match="choose one of tensorboard, wandb, mlflow"):
        train(TINY, tmp_path / "a", tracker="neptune", progress=False)
    assert not (tmp_path / "a").exists()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    assert train_command.main(["--out", str(tmp_path / "b"), "--tracker", "wandb", "--p", "13", "--steps", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: --tracker wandb needs the wandb package: pip install 'grokviz[wandb]' (or grokviz[trackers] for all)"
    ]
    assert not (tmp_path / "b").exists()


@needs("mlflow")
def test_a_tracker_that_will_not_start_is_reported_and_training_goes_on(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    run = train(TINY, tmp_path / "run", tracker="mlflow", progress=False, threads=1)
    assert run.log().step.iloc[-1] == TINY.steps
    (warning,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warning.startswith("warning: --tracker mlflow: could not start") and "training goes on without it" in warning


@needs("tensorboard")
def test_tensorboard_event_files_hold_the_log(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    run = train(TINY, out, tracker="tensorboard", progress=False, threads=1)
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    sent = {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}
    assert_rows_match(run, sent)  # TensorBoard stores float32
    assert_extras(run, sent)
    assert open_run(out).steps() == run.steps()  # the event files do not disturb the run folder


@needs("mlflow")
def test_mlflow_file_store_holds_the_adders_log(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    flags = "--curriculum 2 --d-model 16 --n-heads 2 --d-mlp 32 --batch-size 32 --steps 40 --val-size 16 --log-every 10"
    out = tmp_path / "adder"
    assert train_digits_command.main(["--out", str(out), "--tracker", "mlflow", "--no-progress", *flags.split()]) == 0
    run = open_run(out)
    client = MlflowClient(tracking_uri=(out / "mlruns").as_uri())
    (found,) = client.search_runs([client.get_experiment_by_name("grokviz").experiment_id])
    assert found.data.params["d_model"] == "16" and found.info.run_name == "adder"
    sent = {
        key: {m.step: m.value for m in client.get_metric_history(found.info.run_id, key)}
        for key in ("train_loss", "val_exact", "val_loss", "lr", "val_acc_11", "sum_sq_weights")
    }
    assert_rows_match(run, sent, columns=("train_loss", "val_exact", "val_loss", "lr", "val_acc_11"), rel=0)
    assert found.info.status == "FINISHED"


@needs("wandb")
def test_wandb_offline_run_files_hold_the_log(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = train(TINY, tmp_path / "run", tracker="wandb", progress=False, threads=1)
    (offline,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    sent = wandb_history(next(offline.glob("*.wandb")))
    assert_rows_match(run, sent, rel=0)
    assert_extras(run, sent)


def wandb_history(path) -> dict[str, dict[int, float]]:
    """The history rows of a W&B offline run file (what ``wandb sync`` uploads), by key and step.

    The file is W&B's LevelDB-style log ("W&B" header, 32 KiB blocks of records, each a 7-byte
    header and a slice of one protobuf ``Record``); the wandb package reads it only in its Go core."""
    import json
    import struct

    from wandb.proto import wandb_internal_pb2

    data, block, header = path.read_bytes(), 32768, 7
    assert data[:4] == b":W&B"
    records, index, partial = [], header, b""
    while index + header <= len(data):
        if block - index % block < header:  # a block's tail too short for a header is padding
            index += block - index % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[index : index + header])
        payload = data[index + header : index + header + length]
        index += header + length
        if kind == 0 and length == 0:
            continue
        partial = payload if kind in (1, 2) else partial + payload
        if kind in (1, 4):  # a full record, or the last slice of one
            records.append(partial)
    sent: dict[str, dict[int, float]] = {}
    for raw in records:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") != "history":
            continue
        items = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
        step = record.history.step.num if record.history.HasField("step") else int(items["_step"])
        for key, value in items.items():
            if not key.startswith("_"):
                sent.setdefault(key, {})[step] = value
    return sent


@needs("tensorboard")
def test_convert_to_tracker_sends_a_finished_run(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from grokviz.commands import convert
    from grokviz.storage.timeline import timeline

    run = train(TINY, tmp_path / "run", progress=False, threads=1)
    assert convert.main(["to-tracker", str(run.path), "--tracker", "tensorboard", "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == f"{run.path}: {len(run.log())} steps sent to tensorboard"
    events = EventAccumulator(str(run.path / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    sent = {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}
    assert_rows_match(run, sent)
    frame = timeline(run)
    for column in ("restricted_loss", "excluded_loss", "gini_embed"):
        assert sent[f"progress/{column}"] == pytest.approx(dict(zip(frame.step, frame[column])), rel=1e-6)
    assert convert.main(["to-tracker", str(run.path), "--tracker", "tensorboard"]) == 2  # not twice into one folder
    assert "already holds TensorBoard events" in capsys.readouterr().err


def test_checkpoint_measures_are_the_progress_measures(tiny_config):
    from grokviz.analysis.progress import progress_measures
    from grokviz.core.config import dataset_for
    from grokviz.core.params import init_params

    params = init_params(tiny_config, "cpu")
    full = progress_measures(params, dataset_for(tiny_config), [1, 2])
    sent = trackers.checkpoint_measures(tiny_config, params)
    assert sent == {"progress/gini_embed": full["gini_embed"], "progress/gini_unembed": full["gini_unembed"]}
    assert trackers.row_extras(tiny_config, 5, params)["sum_sq_weights"] == pytest.approx(full["sum_sq_weights"])


@needs("tensorboard")
def test_each_ensemble_member_gets_its_own_tracker_run(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from grokviz.commands import ensemble
    from grokviz.storage.sweeps import open_sweep

    sizes = ["--p", "13", "--d-model", "16", "--n-heads", "2", "--d-head", "8", "--d-mlp", "32", "--steps", "60"]
    argv = [*sizes, "--log-every", "10", "--seeds", "0,1", "--save", "schedule", "--no-progress", "--threads", "1"]
    assert ensemble.main(["--out", str(tmp_path / "sweep"), "--tracker", "tensorboard", *argv]) == 0
    members = open_sweep(tmp_path / "sweep").members
    finals = set()
    for member in members:
        run = member.open()
        events = EventAccumulator(str(run.path / "tensorboard"), size_guidance={"scalars": 0})
        events.Reload()
        sent = {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}
        assert_rows_match(run, sent)
        assert set(sent["progress/gini_embed"]) == set(run.steps())
        finals.add(sent["test_loss"][60])
    assert len(members) == 2 and len(finals) == 2  # each member's own values
    capsys.readouterr()
    again = ["--out", str(tmp_path / "sweep"), "--resume", "--tracker", "tensorboard", *argv]
    assert ensemble.main(again) == 2
    assert "--tracker is not sent from --ray or --resume sweeps yet" in capsys.readouterr().err
    from grokviz.core.digits_config import DigitsConfig
    from grokviz.training.ensemble import train_ensemble

    adders = [DigitsConfig(seed=0), DigitsConfig(seed=1)]
    with pytest.raises(GrokvizError, match="adder ensembles do not send to trackers yet"):
        train_ensemble(adders, tmp_path / "adders", tracker="tensorboard", progress=False)
    assert not (tmp_path / "adders").exists()

"""Every option of every command, given a bad value, is refused the same way: exit status 2, one
``error:`` line on stderr that names the option, no traceback, and nothing written.

Hypothesis draws the bad values: for each option, text that is not of its type, numbers outside
its range (the config itself is the oracle of which values are out of range, so only values the
config refuses are drawn: a valid value would start training), reversed or empty ranges, unknown
choices. The commands run in-process (their ``main(argv)``), so a draw costs milliseconds.
``grokviz app`` has no options of its own: it hands them to Streamlit, which checks them (a bad one is
one line too: tests/test_cli.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import shutil
import tempfile
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grokviz.commands import analyze, convert, ensemble, train, train_digits, train_group
from grokviz.core.config import Config, ConfigError
from grokviz.core.digits_config import DigitsConfig
from grokviz.core.groups import parse_group
from grokviz.core.groups_config import GroupsConfig
from grokviz.core.tasks import TASKS
from grokviz.errors import GrokvizError
from grokviz.storage.runs import open_run

FIELDS = {f.name: str(f.type) for f in fields(Config)}
LIST_FLAGS = {"--seeds", "--weight-decay", "--frac-train", "--lr"}  # the ensemble's per-member lists
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def run(main, argv: list[str]) -> tuple[int, str]:
    """(exit status, stderr) of ``main(argv)``, argparse's own exits included."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    return code, err.getvalue()


def assert_refused(code: int, err: str, flag: str) -> None:
    assert code == 2, (flag, code, err)
    assert err.startswith("error: ") and err.count("\n") == 1, (flag, err)
    assert "Traceback" not in err


def not_an_integer() -> st.SearchStrategy[str]:
    def is_int(text: str) -> bool:
        try:
            int(text)
        except ValueError:
            return False
        return True

    return st.one_of(st.sampled_from(["1.5", "ten", "", "0x10", "nan", "1e3"]), st.text(max_size=8)).filter(
        lambda t: not is_int(t)
    )


def not_a_number() -> st.SearchStrategy[str]:
    def is_float(text: str) -> bool:
        try:
            float(text)
        except ValueError:
            return False
        return True

    return st.one_of(st.sampled_from(["ten", "", "1,5", "--"]), st.text(max_size=8)).filter(lambda t: not is_float(t))


def refused_by_config(name: str, value) -> bool:
    try:
        Config(**{name: value})
    except ConfigError:
        return True
    return False


def refused_by_groups(name: str, value) -> bool:
    try:
        GroupsConfig(**{name: value})
    except ConfigError:
        return True
    return False


def bad_config_value(name: str) -> st.SearchStrategy[str]:
    """Text for ``--name`` that the parser or the config refuses."""
    kind = FIELDS[name]
    if kind in ("int", "int | None"):
        out_of_range = st.integers(-(10**20), 10**20).filter(lambda v: refused_by_config(name, v)).map(str)
        return st.one_of(not_an_integer(), out_of_range)
    if kind == "float":
        specials = st.sampled_from(["nan", "inf", "-inf", "-1", "1e400"])
        out_of_range = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False).filter(
            lambda v: refused_by_config(name, v)
        )
        return st.one_of(
            not_a_number(), specials.filter(lambda t: refused_by_config(name, float(t))), out_of_range.map(repr)
        )
    return st.text(max_size=12).filter(lambda v: refused_by_config(name, v))


def bad_threads() -> st.SearchStrategy[str]:
    return st.one_of(not_an_integer(), st.integers(-(10**6), 0).map(str))


def bad_choice(choices) -> st.SearchStrategy[str]:
    return st.text(max_size=10).filter(lambda t: t not in choices)


def bad_seeds() -> st.SearchStrategy[str]:
    reversed_range = st.tuples(st.integers(1, 10**6), st.integers(1, 10**6)).filter(lambda ab: ab[0] > ab[1])
    return st.one_of(
        reversed_range.map(lambda ab: f"{ab[0]}-{ab[1]}"),
        st.sampled_from(["", ",", "1,,2", "a-b", "1.5", "3-", "0-99999999"]),
    )


def bad_number_list(name: str) -> st.SearchStrategy[str]:
    bad_entry = st.one_of(
        st.sampled_from(["nan", "inf", "", "x"]),
        st.floats(-1e6, 1e6, allow_subnormal=False).filter(lambda v: refused_by_config(name, v)).map(repr),
    )
    return st.lists(bad_entry, min_size=1, max_size=3).map(lambda entries: ",".join(["0.5", *entries]))


def bad_ray_address() -> st.SearchStrategy[str]:
    """Not local, auto or host:port with a port in 1-65535 (refused by the parser, Ray installed or not)."""
    ports = st.one_of(st.integers(65536, 10**7), st.just(0)).map(lambda port: f"head:{port}")
    return st.one_of(
        ports,
        st.sampled_from(["", "head", "head:", ":6379", "ray://", "a b:1", "head:port", "LOCAL", "-x:1", "head:-1"]),
        st.text(max_size=10).filter(lambda t: ":" not in t and t not in ("local", "auto")),
    )


def bad_group() -> st.SearchStrategy[str]:
    """Names that are no supported group: out of range, unknown letters, noise."""

    def refused(name: str) -> bool:
        try:
            parse_group(name)
        except GrokvizError:
            return True
        return False

    return st.one_of(
        st.sampled_from(["S2", "S7", "A3", "A6", "D2", "D101", "Z1", "Z998", "Q8", "", "S", "5", "S5.0"]),
        st.text(max_size=6).filter(refused),
    )


def option_strategies(parser: argparse.ArgumentParser, extra: dict[str, st.SearchStrategy[str]]):
    """flag -> strategy of bad values, for every option of ``parser`` (it fails if one is missing)."""
    table = {}
    for action in parser._actions:
        if not action.option_strings or action.nargs == 0 or "--help" in action.option_strings:
            continue  # switches take no value
        flag = action.option_strings[-1]
        if flag in extra:
            table[flag] = extra[flag]
        elif action.dest in FIELDS:
            table[flag] = bad_config_value(action.dest)
        elif action.choices is not None:
            table[flag] = bad_choice(action.choices)
        elif flag == "--threads":
            table[flag] = bad_threads()
        else:
            raise AssertionError(f"{parser.prog}: no bad values drawn for {flag}; add them to this test")
    return table


TRAIN = option_strategies(train.build_parser(), {"--out": st.just("OUT")})
ENSEMBLE = option_strategies(
    ensemble.build_parser(),
    {
        "--out": st.just("OUT"),
        "--seeds": bad_seeds(),
        "--weight-decay": bad_number_list("weight_decay"),
        "--frac-train": bad_number_list("frac_train"),
        "--lr": bad_number_list("lr"),
        "--group-size": st.one_of(not_an_integer(), st.integers(-1000, 0).map(str)),
        "--ray": bad_ray_address(),
        "--group": bad_group(),
        "--shapes": st.sampled_from(["", "7", "7:", ":14", "7:14:2", "a:b", "0:14", "7:0", "7x14", "7:14,"]),
    },
)
TRAIN_GROUP = option_strategies(
    train_group.build_parser(),
    {
        "--out": st.just("OUT"),
        "--group": bad_group(),
        # S5 (the default group) has 120 elements: any other p, or no integer, is refused.
        "--p": st.one_of(not_an_integer(), st.integers(-(10**6), 10**6).filter(lambda v: v != 120).map(str)),
        "--task": st.text(max_size=10).filter(lambda t: t != "compose"),
        # S5 has 14,400 pairs, not p=113's 12,769: a fraction is bad by GroupsConfig's own count.
        "--frac-train": st.one_of(
            not_a_number(),
            st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False)
            .filter(lambda v: refused_by_groups("frac_train", v))
            .map(repr),
        ),
    },
)
TRAIN.pop("--out")
ENSEMBLE.pop("--out")
TRAIN_GROUP.pop("--out")


@pytest.fixture(scope="module")
def workdir():
    path = Path(tempfile.mkdtemp(prefix="grokviz-bad-options-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@SETTINGS
@given(data=st.data())
@pytest.mark.parametrize("command", ["train", "ensemble", "train-group"])
def test_trainers_refuse_every_bad_option(command: str, data, workdir: Path) -> None:
    main, table = {
        "train": (train.main, TRAIN),
        "ensemble": (ensemble.main, ENSEMBLE),
        "train-group": (train_group.main, TRAIN_GROUP),
    }[command]
    flag = data.draw(st.sampled_from(sorted(table)), label="flag")
    value = data.draw(table[flag], label="value")
    out = workdir / f"{command}-out"
    code, err = run(main, ["--out", str(out), f"{flag}={value}", "--no-progress"])
    assert_refused(code, err, flag)
    assert not out.exists()


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, tiny_config) -> Path:
    from grokviz.training.single import train as train_run

    cfg = tiny_config.replace(steps=40, save_every=20, save_log_points=0)
    return train_run(cfg, tmp_path_factory.mktemp("bad-options") / "run", progress=False).path


def listing(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*")}


@SETTINGS
@given(data=st.data())
def test_analyze_refuses_every_bad_option(data, small_run: Path) -> None:
    steps = set(open_run(small_run).steps())  # 0, 20, 40 and any accuracy-event checkpoint
    bad = {
        "--step": st.one_of(not_an_integer(), st.integers(-(10**9), 10**9).filter(lambda s: s not in steps).map(str)),
        "--key-freqs": st.one_of(
            st.sampled_from(["", ",", "x", "1.5", "0", "12", "1,12"]),
            st.integers(-1000, 1000).filter(lambda k: not 1 <= k <= 11).map(str),
        ),
        "--threshold": st.one_of(
            not_a_number(),
            st.floats(allow_nan=True, allow_subnormal=False)
            .filter(lambda v: not (math.isfinite(v) and 0 < v <= 1))
            .map(repr),
        ),
        "--threads": bad_threads(),
    }
    table = option_strategies(analyze.build_parser(), bad)
    flag = data.draw(st.sampled_from(sorted(table)), label="flag")
    value = data.draw(table[flag], label="value")
    before = listing(small_run)
    code, err = run(analyze.main, [str(small_run), f"{flag}={value}", "--json", "--timeline"])
    assert_refused(code, err, flag)
    assert listing(small_run) == before  # no timeline cache written, nothing touched


def torch_encoder_file(folder: Path) -> Path:
    """A state dict of the PyTorch encoder model's (p = 11, d_model 16) for ``convert torch-encoder``."""
    path = folder / "torch_encoder.pt"
    if not path.exists():
        from torch import nn

        torch.manual_seed(0)
        model = nn.ModuleDict(
            {
                "embedding": nn.Embedding(12, 16),
                "transformer_encoder": nn.TransformerEncoder(
                    nn.TransformerEncoderLayer(16, 4, 32, batch_first=True), 1, enable_nested_tensor=False
                ),
                "output_head": nn.Linear(16, 12),
            }
        )
        torch.save(model.state_dict(), path)
    return path


@SETTINGS
@given(data=st.data())
def test_convert_refuses_every_bad_option(data, small_run: Path, workdir: Path) -> None:
    out = workdir / "convert-out"
    export = {
        "--step": st.one_of(
            not_an_integer(),
            st.integers(-(10**9), -1).map(str),
            st.integers(max(open_run(small_run).steps()) + 1, 10**9).map(str),
        ),
        "--out": st.sampled_from(["x.pt", "x", "x.json", "x.safetensors.bak"]).map(lambda n: str(workdir / n)),
    }
    importer = {
        "--task": bad_choice(TASKS),
        "--config": st.just(str(workdir / "missing.json")),
        "--out": st.just(str(small_run)),
    }  # an existing, non-empty folder
    encoder = {
        "--task": bad_choice(TASKS),
        "--out": st.just(str(small_run)),
        "--step": st.one_of(not_an_integer(), st.integers(-(10**9), -1).map(str)),
    }
    commands = ["export-tl", "transformer-lens", "progress-measures", "torch-encoder"]
    command = data.draw(st.sampled_from(commands), label="command")
    sub = next(a for a in convert.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    extra = {"export-tl": export, "torch-encoder": encoder}.get(command, importer)
    table = option_strategies(sub.choices[command], extra)
    flag = data.draw(st.sampled_from(sorted(table)), label="flag")
    value = data.draw(table[flag], label="value")
    source = str(small_run) if command == "export-tl" else str(small_run / "step_000040.safetensors")
    argv = [command, source, "--out", str(out), f"{flag}={value}"]
    if command == "torch-encoder":  # a file the importer reads: only the drawn option is wrong
        argv = [command, str(torch_encoder_file(workdir)), "--p", "11", "--out", str(out), f"{flag}={value}"]
    before = listing(workdir)
    code, err = run(convert.main, argv)
    assert_refused(code, err, flag)
    assert listing(workdir) == before and not out.exists()


# --- grokviz train-digits (the 10-digit adder): its own config, the same refusals ------------------

DIGITS_FIELDS = {f.name: str(f.type) for f in fields(DigitsConfig)}


def refused_by_digits_config(name: str, value) -> bool:
    try:
        DigitsConfig(**{name: value})
    except ConfigError:
        return True
    return False


def bad_digits_value(name: str) -> st.SearchStrategy[str]:
    kind = DIGITS_FIELDS[name]
    if kind in ("int", "int | None"):
        out_of_range = st.integers(-(10**20), 10**20).filter(lambda v: refused_by_digits_config(name, v)).map(str)
        return st.one_of(not_an_integer(), out_of_range)
    if kind == "float":
        out_of_range = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False).filter(
            lambda v: refused_by_digits_config(name, v)
        )
        return st.one_of(not_a_number(), out_of_range.map(repr))
    return st.text(max_size=12).filter(lambda v: refused_by_digits_config(name, v))


def digits_option_strategies() -> dict[str, st.SearchStrategy[str]]:
    table = {}
    for action in train_digits.build_parser()._actions:
        if not action.option_strings or action.nargs == 0 or "--help" in action.option_strings:
            continue
        flag = action.option_strings[-1]
        if flag == "--out":
            continue
        if action.dest in DIGITS_FIELDS:
            table[flag] = bad_digits_value(action.dest)
        elif action.choices is not None:
            table[flag] = bad_choice(action.choices)
        elif flag == "--threads":
            table[flag] = bad_threads()
        else:
            raise AssertionError(f"grokviz train-digits: no bad values drawn for {flag}; add them to this test")
    return table


TRAIN_DIGITS = digits_option_strategies()


@SETTINGS
@given(data=st.data())
def test_train_digits_refuses_every_bad_option(data, workdir: Path) -> None:
    flag = data.draw(st.sampled_from(sorted(TRAIN_DIGITS)), label="flag")
    value = data.draw(TRAIN_DIGITS[flag], label="value")
    out = workdir / "train-digits-out"
    code, err = run(train_digits.main, ["--out", str(out), f"{flag}={value}", "--no-progress"])
    assert_refused(code, err, flag)
    assert not out.exists()

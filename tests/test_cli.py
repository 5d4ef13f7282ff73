"""The ``grokviz`` command: it routes to each subcommand's own module, and every subcommand's
``--help`` lists every option with its default."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from grokviz import cli
from grokviz.commands import analyze, convert, ensemble, train

REPO = Path(__file__).resolve().parents[1]
PARSERS = {
    "train": train.build_parser,
    "ensemble": ensemble.build_parser,
    "analyze": analyze.build_parser,
    "convert": convert.build_parser,
}


def all_parsers(parser: argparse.ArgumentParser):
    """The parser and every subcommand parser under it (convert has four)."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from all_parsers(sub)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_option_shows_its_default(name: str) -> None:
    for parser in all_parsers(PARSERS[name]()):
        text = parser.format_help()
        listing = text[text.index("options:") :]  # the option list, after the usage lines
        for action in parser._actions:
            if not action.option_strings or "--help" in action.option_strings or action.required:
                continue
            # What a person reads: the option's line, then "(default: ...)" in its help.
            start = listing.index("\n  " + action.option_strings[0])
            entry = listing[start : listing.find("\n  -", start + 1)]
            assert "(default:" in entry, (parser.prog, action.option_strings, entry)


def test_the_command_lists_its_subcommands(capsys) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("train", "ensemble", "analyze", "convert", "app"):
        assert f"  {name} " in out
    assert cli.main([]) == 2  # no command: the usage, and a non-zero status


def test_an_unknown_command_is_one_error_line(capsys) -> None:
    assert cli.main(["trian", "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: unknown command 'trian'") and "train" in err


def test_subcommands_route_to_their_modules(tmp_path, capsys) -> None:
    # The same module answers as `grokviz analyze` and as `python -m grokviz.analyze`.
    assert cli.main(["analyze", str(tmp_path / "missing")]) == 2
    assert "no such run folder or checkpoint file" in capsys.readouterr().err
    assert cli.main(["app", "--help"]) == 0
    assert "GROKVIZ_RUNS" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["-m", "grokviz", "--help"],
        ["-m", "grokviz", "train", "--help"],
        ["-m", "grokviz", "ensemble", "--help"],
        ["-m", "grokviz", "convert", "--help"],
    ],
)
def test_module_entry_points(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


@pytest.mark.parametrize(
    "argv, words",
    [(["--bogus"], "No such option '--bogus'"), (["--server.port", "abc"], "'abc' is not a valid integer")],
)
def test_app_options_are_streamlits_and_a_bad_one_is_one_line(argv, words, capsys) -> None:
    assert cli.main(["app", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: grokviz app: ") and words in err and err.count("\n") == 1

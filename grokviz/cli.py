"""The ``grokviz`` command: one console script that routes to each subcommand's own module.

    grokviz train ...      grokviz.train     (same as python -m grokviz.train ...)
    grokviz train-digits   grokviz.train_digits (the 10-digit adder)
    grokviz ensemble ...   grokviz.ensemble
    grokviz analyze ...    grokviz.analyze
    grokviz convert ...    grokviz.convert
    grokviz app ...        the Streamlit explorer; further arguments go to ``streamlit run``

Each subcommand module owns its parser (``build_parser``) and ``main(argv)``; this module only
picks one, and imports it lazily so that ``grokviz --help`` does not load torch.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from grokviz import __version__

COMMANDS = {
    "train": ("grokviz.train", "train one model and write a run folder (checkpoints and log)"),
    "train-digits": ("grokviz.train_digits", "train the 10-digit adder (the 777-parameter recipe) into a run folder"),
    "ensemble": ("grokviz.ensemble", "train many models at once (seeds x weight decay x ...) into a sweep folder"),
    "analyze": ("grokviz.analyze", "summarise a checkpoint: losses, key frequencies, neurons, progress measures"),
    "convert": ("grokviz.convert", "import other people's models; export ours to TransformerLens"),
    "app": (None, "open the explorer in the browser (Streamlit); further arguments go to streamlit run"),
}

# The app's safe defaults, for when it is started outside a clone (where .streamlit/config.toml
# is not in the working folder): localhost only, no usage statistics, no browser opened here.
APP_DEFAULTS = [
    "--server.address",
    "localhost",
    "--server.headless",
    "true",
    "--browser.gatherUsageStats",
    "false",
    "--client.toolbarMode",
    "minimal",
    "--global.disableWidgetStateDuplicationWarning",
    "true",
]


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        f"usage: grokviz COMMAND [options]   (grokviz {__version__})",
        "",
        "See grokking happen: train, analyse and explore small transformers.",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "grokviz COMMAND --help lists every option of that command, with its default."]
    return "\n".join(lines)


def run_app(argv: list[str]) -> int:
    """``streamlit run <grokviz/ui/main.py> [our safe defaults] [argv]``; later flags win."""
    if argv[:1] in (["-h"], ["--help"]):
        print(
            "usage: grokviz app [streamlit run options]\n\n"
            "Open the grokviz explorer. It reads runs from $GROKVIZ_RUNS, else ./checkpoints of the folder\n"
            "you start it in (inside a clone of grokviz: the bundled runs). Options are passed to\n"
            "`streamlit run`, e.g. --server.port 8502; see `streamlit run --help`.\n\n"
            f"defaults: {' '.join(APP_DEFAULTS)}"
        )
        return 0
    import click
    from streamlit.web import cli as streamlit_cli

    script = Path(__file__).resolve().parent / "ui" / "main.py"
    args = ["run", str(script), *APP_DEFAULTS, *argv]
    try:
        # Not click's standalone mode: a bad option is one `error:` line here, as for every command.
        streamlit_cli.main.main(args=args, prog_name="streamlit", standalone_mode=False)
    except click.ClickException as exc:
        print(
            f"error: grokviz app: {' '.join(exc.format_message().split())} (see streamlit run --help)", file=sys.stderr
        )
        return 2
    except click.exceptions.Abort:
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"grokviz {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; choose one of {', '.join(COMMANDS)} (grokviz --help)", file=sys.stderr)
        return 2
    if name == "app":
        return run_app(rest)
    module = importlib.import_module(COMMANDS[name][0])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())

"""``grokviz app [streamlit run options]``: open the explorer, ``streamlit run grokviz/ui/main.py``
with grokviz's safe defaults (later flags win)."""

from __future__ import annotations

import sys
from pathlib import Path

# The app's safe defaults, for when it is started outside a clone (where .streamlit/config.toml
# is not in the working folder): localhost only, no usage statistics, no browser opened here.
APP_DEFAULTS = [
    "--server.address",
    "localhost",
    "--server.headless",
    "true",
    # No source-file watcher: it costs the first page about 0.8 s (see .streamlit/config.toml).
    "--server.fileWatcherType",
    "none",
    "--browser.gatherUsageStats",
    "false",
    "--client.toolbarMode",
    "minimal",
    "--global.disableWidgetStateDuplicationWarning",
    "true",
]


def main(argv: list[str] | None = None) -> int:
    """``streamlit run <grokviz/ui/main.py> [our safe defaults] [argv]``; later flags win."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(
            "usage: grokviz app [streamlit run options]\n\n"
            "Open the grokviz explorer. It reads runs from $GROKVIZ_RUNS, else ./checkpoints of the folder\n"
            "you start it in (inside a clone of grokviz: the bundled runs). Options are passed to\n"
            "`streamlit run`, e.g. --server.port 8502; see `streamlit run --help`.\n\n"
            "Its New run page starts trainings as processes of their own. For an app others can reach:\n"
            "GROKVIZ_READ_ONLY=1 removes that page, GROKVIZ_MAX_JOBS=N allows N trainings at once (default 1).\n\n"
            f"defaults: {' '.join(APP_DEFAULTS)}"
        )
        return 0
    import click
    from streamlit.web import cli as streamlit_cli

    script = Path(__file__).resolve().parent.parent / "ui" / "main.py"
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


if __name__ == "__main__":
    sys.exit(main())

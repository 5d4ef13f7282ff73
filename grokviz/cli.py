"""The ``grokviz`` command (also ``python -m grokviz``): one console script that routes to each
subcommand's own module in ``grokviz.commands``.

    grokviz train ...         grokviz.commands.train
    grokviz train-digits ...  grokviz.commands.train_digits (the 10-digit adder)
    grokviz ensemble ...      grokviz.commands.ensemble
    grokviz analyze ...       grokviz.commands.analyze
    grokviz convert ...       grokviz.commands.convert
    grokviz app ...           grokviz.commands.app: the Streamlit explorer (arguments go to ``streamlit run``)

Each subcommand module owns its parser and ``main(argv)``; this module only picks one, and imports
it lazily so that ``grokviz --help`` does not load torch.
"""

from __future__ import annotations

import importlib
import sys

from grokviz import __version__

COMMANDS = {
    "train": ("grokviz.commands.train", "train one model and write a run folder (checkpoints and log)"),
    "train-digits": (
        "grokviz.commands.train_digits",
        "train the 10-digit adder (the 777-parameter recipe) into a run folder",
    ),
    "train-group": (
        "grokviz.commands.train_group",
        "train on composition in a finite group (S_n, A_n, D_n, Z_n) into a run folder",
    ),
    "ensemble": (
        "grokviz.commands.ensemble",
        "train many models at once (seeds x weight decay x ...) into a sweep folder",
    ),
    "analyze": (
        "grokviz.commands.analyze",
        "summarise a checkpoint: losses, key frequencies, neurons, progress measures",
    ),
    "forecast": ("grokviz.commands.forecast", "say whether a run will grok, and when, from its plateau"),
    "convert": ("grokviz.commands.convert", "import other people's models; export ours to TransformerLens"),
    "app": (
        "grokviz.commands.app",
        "open the explorer in the browser (Streamlit); further arguments go to streamlit run",
    ),
}


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
    module = importlib.import_module(COMMANDS[name][0])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())

"""Command-line flags: the parser every command uses, the value types its options share, the
runtime flags (how to train) and one ``--flag`` per Config field (what to train).

Validation has two places, one per kind of value:
- what a flag's text must be (an integer, a list of numbers, a range that is not reversed, a thread
  count of at least 1) is checked here, as argparse parses it;
- what a run's config must be (ranges, finite numbers, combinations) is ``Config.problems`` only,
  whatever builds the config, so the command line and the Python API cannot drift apart.

Either way a bad value ends as one line, ``error: <option> <value>: <what is allowed>``, and exit
status 2, before anything is written (:class:`Parser`, :func:`fail`).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import MISSING, fields
from typing import NoReturn

from grokviz.core.config import Config
from grokviz.core.stored import ConfigError
from grokviz.errors import GrokvizError

# The most seeds one --seeds may name: far beyond any ensemble that fits in memory, and small
# enough that the list itself is built at once.
MAX_SEEDS = 1_000_000


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``error: ...`` on stderr, exit 2) and defaults in ``--help``."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        # No prefix matching: `--weight 1` must not quietly mean --weight-decay.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def _get_values(self, action, arg_strings):
        # argparse drops a value of "--" (its end-of-options marker) even in --opt=--, and hands the
        # option an empty list: refuse it as the value it is (found by tests/test_bad_options.py).
        if action.option_strings and action.nargs is None and arg_strings == ["--"]:
            raise argparse.ArgumentError(action, "'--' is not a value")
        return super()._get_values(action, arg_strings)

    def error(self, message: str) -> NoReturn:
        # argparse prints the usage too; one line that names the option is what a person needs
        # (the usage is one --help away).
        # One line even when a value holds a newline (argparse quotes most values, not all).
        print(f"error: {' '.join(message.split())} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def fail(exc: GrokvizError) -> int:
    """Print a user error as one line and return the exit status 2 (config problems by their flags)."""
    text = exc.as_flags() if isinstance(exc, ConfigError) else str(exc)
    print(f"error: {' '.join(text.split())}", file=sys.stderr)
    return 2


# --- value types -----------------------------------------------------------------------------


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def number(text: str) -> float:
    """A float as Python reads it ('nan' and 'inf' included: the config refuses them, in words)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def threads(text: str) -> int:
    value = integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} threads: at least 1 is needed")
    return value


def step(text: str) -> int:
    value = integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: a step is at least 0")
    return value


def fraction(text: str) -> float:
    """A number in (0, 1]."""
    value = number(text)
    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number in (0, 1]")
    return value


def seeds(text: str) -> list[int]:
    """'0-7' -> [0..7]; '0,3,5' -> [0, 3, 5]; '0-3,10' -> [0, 1, 2, 3, 10]. Reversed or empty ranges are refused."""
    found: list[int] = []
    for part in text.split(","):
        part = part.strip()
        low, dash, high = part.partition("-")
        try:
            first = int(low)
            last = int(high) if dash else first
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a list of seeds like 0-7 or 0,3,5 (seeds are integers >= 0)"
            ) from None
        if last < first:
            raise argparse.ArgumentTypeError(f"{part!r} is a reversed range; write {last}-{first}")
        if len(found) + last - first + 1 > MAX_SEEDS:
            raise argparse.ArgumentTypeError(f"{text!r} names more than {MAX_SEEDS:,} seeds")
        found.extend(range(first, last + 1))
    return found


# A Ray address: "local" (start one for the run), "auto" (the cluster this node belongs to), or
# [ray://]host:port of a cluster's head.
_RAY_ADDRESS = re.compile(r"^(ray://)?[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?:(\d{1,5})$")


def ray_address(text: str) -> str:
    """'local', 'auto' or host:port (ray://host:port for Ray Client), the port in 1-65535."""
    match = _RAY_ADDRESS.match(text)
    if text in ("local", "auto") or (match and 1 <= int(match.group(3)) <= 65535):
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a Ray address; give local, auto or host:port (like 10.0.0.1:6379 or ray://head:10001)"
    )


def numbers(text: str) -> list[float]:
    """'0.3,1,3' -> [0.3, 1.0, 3.0]; every entry must be a number (the config checks their range)."""
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty entry; give comma-separated numbers like 0.3,1,3")
    try:
        return [float(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def sizes(text: str) -> list[int]:
    """'4,7,16' -> [4, 7, 16]: model sizes (integers; the config checks their range)."""
    parts = [part.strip() for part in text.split(",")]
    try:
        return [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers like 4,7,16") from None


def batch_sizes(text: str) -> list[int | None]:
    """'64,512,full' -> [64, 512, None]: training pairs per step, 'full' for the whole training set
    (the config checks each against the training set's size)."""
    return _integers_or(text, lambda part: part == "full", lambda _: None, "'full'; give batch sizes like 64,512,full")


def mlp_sizes(text: str) -> list[int | str]:
    """'14,28' -> [14, 28]; an entry 'Nx' is N times each member's d_model ('4x': d_mlp = 4 d_model)."""
    return _integers_or(
        text, lambda part: re.fullmatch(r"[1-9][0-9]*x", part) is not None, str, "a multiple of d_model like 4x"
    )


def _integers_or(text: str, is_word, word_value, allowed: str) -> list:
    """A comma-separated list of integers and words (``is_word(entry)``, read as ``word_value(entry)``);
    any other entry is refused, naming ``allowed``."""
    found = []
    for part in (part.strip() for part in text.split(",")):
        if is_word(part):
            found.append(word_value(part))
            continue
        try:
            found.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: {part!r} is neither an integer nor {allowed}") from None
    return found


def shapes(text: str) -> list[tuple[int, int]]:
    """'7:14,6:24' -> [(7, 14), (6, 24)]: (d_model, d_mlp) pairs."""
    found = []
    for part in (part.strip() for part in text.split(",")):
        match = re.fullmatch(r"([0-9]+):([0-9]+)", part)
        if not match:
            raise argparse.ArgumentTypeError(
                f"{text!r}: {part!r} is not D_MODEL:D_MLP; give pairs like 7:14,6:24"
            ) from None
        found.append((int(match.group(1)), int(match.group(2))))
    return found


# --- shared groups of flags ----------------------------------------------------------------------


def add_run_folder_flags(parser: argparse.ArgumentParser, resume_help: str) -> None:
    """``--out`` and ``--resume``: the run folder a trainer writes (shared by both ``train`` commands)."""
    parser.add_argument("--out", required=True, help="run folder to create (or continue with --resume)")
    parser.add_argument("--resume", action="store_true", help=resume_help)


def add_runtime_flags(parser: argparse.ArgumentParser, device: str = "auto", eager: bool = True) -> None:
    """How to train, not what (not stored in the run): shared by every trainer's command.

    ``device``: the default of ``--device`` (the adder trains on the CPU unless asked: its tiny
    model is launch-bound on a GPU). ``eager``: offer ``--eager`` (trainers that replay CUDA graphs)."""
    parser.add_argument("--device", default=device, choices=("auto", "cpu", "cuda"), help="auto = cuda when present")
    parser.add_argument(
        "--threads",
        type=threads,
        default=None,
        help="CPU threads, at least 1 (None: torch's, all cores; 1 is faster on a machine busy with other work)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    if eager:
        parser.add_argument(
            "--eager",
            action="store_true",
            help="on CUDA, launch each kernel from Python instead of replaying CUDA graphs (for checks)",
        )


# A config field's declared kind -> the type that reads its flag.
FLAG_TYPES = {"int": integer, "int | None": integer, "float": number, "float | None": number, "str": str}


def add_config_flags(parser: argparse.ArgumentParser, skip: frozenset[str] = frozenset(), config_class=Config) -> None:
    """One ``--flag`` per field of ``config_class`` (defaults and help from the dataclass), except ``skip``.

    Shared with ``grokviz.ensemble``, which replaces the per-member fields by list flags, and with
    ``grokviz.train_digits`` (``DigitsConfig``).
    """
    group = parser.add_argument_group("run config (stored in the run folder)")
    for f in fields(config_class):
        if f.name in skip:
            continue
        default = f.default if f.default is not MISSING else None
        if str(f.type) == "bool":  # --grokfast-divide-lr / --no-grokfast-divide-lr
            group.add_argument(
                config_flag(f.name),
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=default,
                help=f.metadata.get("help"),
            )
            continue
        group.add_argument(
            config_flag(f.name), dest=f.name, type=FLAG_TYPES[str(f.type)], default=default, help=f.metadata.get("help")
        )


def config_flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def given_flags(argv: list[str], names) -> list[str]:
    """Which of the config fields ``names`` were given on the command line ``argv`` (as --flag or --flag=value)."""
    given = []
    for name in names:
        flag = config_flag(name)
        if any(arg == flag or arg.startswith(flag + "=") for arg in argv):
            given.append(name)
    return given


def config_from_args(args: argparse.Namespace, config_class, skip: frozenset[str] = frozenset(), **values):
    """``config_class`` built from the flags of :func:`add_config_flags` (``values`` for the skipped ones)."""
    given = {f.name: getattr(args, f.name) for f in fields(config_class) if f.name not in skip}
    return config_class(**given, **values)


def config_on_resume(args: argparse.Namespace, argv: list[str], family: str, command: str, extendable: bool = False):
    """The config ``--resume`` continues with: the run's own, read from ``args.out``, which must be
    a run of ``family`` (a name of ``grokviz.core.families``).

    A config flag given on the command line that contradicts it is refused, never silently ignored.
    With ``extendable``, ``--steps`` may change: the run is extended (the trainer checks it can be).
    """
    from grokviz.core.families import require_family
    from grokviz.storage.runs import open_run  # imported here: storage loads torch, --help must not

    cfg = open_run(args.out).config
    require_family(cfg, family, args.out, command)
    names = [f.name for f in fields(cfg) if not (extendable and f.name == "steps")]
    clashes = [
        f"--{name.replace('_', '-')}={getattr(args, name)!r} (the run has {getattr(cfg, name)!r})"
        for name in given_flags(argv, names)
        if getattr(args, name) != getattr(cfg, name)
    ]
    if clashes:
        raise GrokvizError(
            f"{args.out}: --resume continues the run with its own config; it differs in "
            + ", ".join(clashes)
            + "; drop those flags (or train a new run)"
            + ("; only --steps may change, to extend it" if extendable else "")
        )
    if extendable and given_flags(argv, ["steps"]):
        cfg = cfg.replace(steps=args.steps)
    return cfg

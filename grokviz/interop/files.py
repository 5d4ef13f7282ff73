"""Reading other people's files safely: pickles only through ``torch.load(weights_only=True)``.

A file that needs full unpickling (which can run arbitrary code) is refused with the reason. The
TransformerLens grokking demo pickles its ``HookedTransformerConfig``; a stand-in class lets the
restricted unpickler read it as plain fields without importing TransformerLens.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from grokviz.errors import GrokvizError

# --- reading pickles safely ---------------------------------------------------------------------


class TransformerLensConfigFields:
    """Stand-in for a pickled ``HookedTransformerConfig``: receives its fields and nothing else.

    The TransformerLens grokking demo saves ``model.cfg`` itself. Registering this inert class
    under TransformerLens' class names lets ``torch.load(weights_only=True)`` rebuild the fields
    (a dataclass pickles as "new object + update its __dict__") without importing or running any
    TransformerLens code; the field values still pass weights_only's allow-list.
    """


TL_CONFIG_PICKLE_NAMES = (
    "transformer_lens.HookedTransformerConfig.HookedTransformerConfig",  # TransformerLens 1.x-2.x
    "transformer_lens.config.HookedTransformerConfig.HookedTransformerConfig",  # 3.x
    "transformer_lens.config.hooked_transformer_config.HookedTransformerConfig",
)


def _stand_ins_to_dicts(value: Any) -> Any:
    if isinstance(value, TransformerLensConfigFields):
        return dict(vars(value))
    if isinstance(value, dict):
        return {k: _stand_ins_to_dicts(v) for k, v in value.items()}
    return value


def load_torch_file(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU, every failure as a GrokvizError naming the file.

    A pickled ``HookedTransformerConfig`` comes back as a plain dict of its fields (see
    :class:`TransformerLensConfigFields`); any other class is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise GrokvizError(f"{path}: no such file")
    stand_ins = [(TransformerLensConfigFields, name) for name in TL_CONFIG_PICKLE_NAMES]
    try:
        with torch.serialization.safe_globals(stand_ins):
            return _stand_ins_to_dicts(torch.load(path, map_location="cpu", weights_only=True))
    except pickle.UnpicklingError as exc:
        # weights_only refuses any class outside torch's allow-list of tensors, containers and numbers.
        match = re.search(r"WeightsUnpickler error:\s*(.*?)(?:\s+Please use|\n\n|$)", str(exc), re.DOTALL)
        detail = " ".join((match.group(1) if match else str(exc).splitlines()[0]).split())
        if "Unsupported global" in detail:
            raise GrokvizError(
                f"{path}: refused: this file holds Python objects that only full unpickling can rebuild "
                f"({detail}); full unpickling can run arbitrary code, so grokviz reads pickles only with "
                "torch.load(weights_only=True). Re-save it with plain tensors, dicts, lists and numbers, e.g. "
                "torch.save({'model': model.state_dict(), 'config': model.cfg.to_dict()}, FILE)"
            ) from None
        raise GrokvizError(
            f"{path}: not a readable torch.save file: torch.load(weights_only=True) fails ({detail}); either it "
            "is not a torch.save file, or it needs full unpickling, which grokviz refuses because it can run "
            "arbitrary code"
        ) from None
    except Exception as exc:  # noqa: BLE001 - the unpickler fails on garbage bytes with any exception type
        raise GrokvizError(f"{path}: not a readable torch.save file ({type(exc).__name__}: {exc})") from None


def read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GrokvizError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GrokvizError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(body, dict):
        raise GrokvizError(f"{path}: expected a JSON object of HookedTransformerConfig arguments")
    return body


# The TransformerLens grokking demo's data seed and fraction: its split equals grokviz's split with
# data_seed=598 (both are torch.randperm(p*p) from a generator seeded 598; checked in the tests).

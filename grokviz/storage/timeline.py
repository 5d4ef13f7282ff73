"""Progress measures over every checkpoint of a run, cached beside the run.

Owns the one piece of analysis that does file I/O: the timeline cache. For the default key
frequencies (those of the run's last checkpoint) the cache is ``<run>/timeline.json``; for a
chosen set it is ``timeline-k<k1>-<k2>....json``. One file holds the rows and their key (format,
key frequencies, each checkpoint's (size, mtime)), so one rename replaces both and no reader can
pair rows with another key (two files could tear). The key makes sure that:

* rows of unchanged checkpoints are reused, new checkpoints are computed (a run still training),
  and a changed or deleted checkpoint is recomputed or dropped;
* a new last checkpoint (which may change the default key frequencies) is noticed;
* the local learning coefficient (``llc=True``; it does not depend on the key frequencies) is
  computed once per checkpoint under the one sampler setting ``analysis.llc.SAMPLER`` and kept
  while the checkpoint and the setting are unchanged, whatever the key frequencies.

Writes are atomic (temp file + rename). A read-only run folder still works: the timeline is
computed and returned, just not stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from grokviz.analysis.group import group_for
from grokviz.analysis.llc import SAMPLER, checkpoint_llc
from grokviz.analysis.neurons import blocks_key_frequencies, layer_activations
from grokviz.analysis.progress import progress_measures
from grokviz.core.config import dataset_for
from grokviz.core.families import require_family
from grokviz.storage.files import atomic_write
from grokviz.storage.runs import Run

TIMELINE_FORMAT = "grokviz.timeline/3"  # /2: rows stored inside the key file; /3: mul, div in the discrete-log basis


def default_key_frequencies(run: Run, step: int | None = None) -> list[int]:
    """Key frequencies (every frequency of a clustered neuron, in any block) of ``step``, default the last one."""
    steps = run.steps()
    if not steps:
        return []
    params = run.load(steps[-1] if step is None else step)
    group = group_for(run.config.task, run.config.p)
    return sorted(blocks_key_frequencies(layer_activations(params, run.config.architecture), group))


def _signature(run: Run, step: int) -> list[int] | None:
    """[size, mtime_ns] of the step's file; None when it vanished since listing (a resumed run prunes)."""
    try:
        stat = run.checkpoint_path(step).stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _cache_path(run: Run, key_freqs: list[int] | None) -> Path:
    stem = "timeline" if key_freqs is None else "timeline-k" + "-".join(str(k) for k in key_freqs)
    return run.path / f"{stem}.json"


def _read_cache(path: Path, default: bool) -> tuple[dict, pd.DataFrame] | None:
    """The stored key and rows, or None when absent, unreadable, of another format, or made for
    the other kind of key frequencies (default vs chosen)."""
    try:
        key = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(key, dict) or key.get("format") != TIMELINE_FORMAT or key.get("default") is not default:
            return None
        rows = pd.DataFrame(key.pop("rows"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if "step" not in rows:
        return None
    return key, rows


def _write_cache(path: Path, key: dict, frame: pd.DataFrame) -> bool:
    """Store the key and rows in one file; False (and nothing raised) when the folder is not writable."""
    # json writes floats at full precision (repr); NaN and inf as NaN/Infinity, which json reads back.
    body = json.dumps({**key, "rows": frame.to_dict("records")}) + "\n"
    try:
        atomic_write(path, lambda tmp: Path(tmp).write_text(body, encoding="utf-8"))
        return True
    except OSError:
        return False


def _known_llc(cached: tuple[dict, pd.DataFrame] | None, signatures: dict) -> dict[int, float]:
    """step -> LLC from a cache's rows of unchanged checkpoints, made under today's sampler setting."""
    if not cached or cached[0].get("llc_sampler") != SAMPLER.to_dict() or "llc" not in cached[1]:
        return {}
    stored = cached[0].get("checkpoints", {})
    known = {}
    for step, value in zip(cached[1]["step"], cached[1]["llc"]):
        step = str(int(step))
        if step in signatures and stored.get(step) == signatures[step] and value == value:  # not NaN
            known[int(step)] = float(value)
    return known


def timeline(
    run: Run,
    key_freqs=None,
    progress: Callable[[int, int], None] | None = None,
    use_cache: bool = True,
    llc: bool = False,
) -> pd.DataFrame:
    """One row per checkpoint step: ``step`` and every key of ``progress_measures``; with ``llc``
    also ``llc``, the local learning coefficient on the training pairs (seconds per checkpoint).

    ``key_freqs``: the fixed key frequencies for restricted/excluded loss; default those of the
    run's last checkpoint (as in the paper). ``progress(done, total)`` is called as checkpoints
    are computed (not for rows taken from the cache). The frame's ``attrs["key_freqs"]`` holds
    the frequencies used.
    """
    require_family(run.config, "modular", str(run.path), "the progress measures (--timeline)")
    chosen = None if key_freqs is None else sorted({int(k) for k in key_freqs})
    cache_path = _cache_path(run, chosen)
    signatures = {str(step): _signature(run, step) for step in run.steps()}
    signatures = {step: signature for step, signature in signatures.items() if signature is not None}
    steps = [int(step) for step in signatures]
    cached = _read_cache(cache_path, default=chosen is None) if use_cache else None

    if chosen is None:
        # The default key frequencies depend only on the last checkpoint: reuse them while it is unchanged.
        last = str(steps[-1]) if steps else None
        if cached and last is not None and cached[0].get("last") == [last, signatures[last]]:
            used = [int(k) for k in cached[0]["key_freqs"]]
        else:
            used = default_key_frequencies(run)
    else:
        used = chosen

    reusable: dict[int, dict] = {}
    if cached and [int(k) for k in cached[0].get("key_freqs", [])] == used:
        stored = cached[0].get("checkpoints", {})
        for record in cached[1].to_dict("records"):
            step = str(int(record["step"]))
            if step in signatures and stored.get(step) == signatures[step]:
                reusable[int(step)] = {k: v for k, v in record.items() if k != "llc"}
    # The LLC does not depend on the key frequencies: take it from this cache and the default one.
    known_llc = _known_llc(cached, signatures) if use_cache else {}
    if use_cache and chosen is not None:
        known_llc = {**_known_llc(_read_cache(_cache_path(run, None), default=True), signatures), **known_llc}

    dataset = dataset_for(run.config)
    group = group_for(run.config.task, run.config.p)
    todo = [step for step in steps if step not in reusable or (llc and step not in known_llc)]
    rows, done = [], 0
    if progress is not None:
        progress(0, len(todo))
    for step in steps:
        row = reusable.get(step)
        if row is None:
            params = run.load(step)
            row = {"step": step, **progress_measures(params, dataset, used, group, run.config.architecture)}
        if step in known_llc:
            row = {**row, "llc": known_llc[step]}
        elif llc:
            row = {**row, "llc": checkpoint_llc(run.load(step), dataset, run.config.architecture)}
        rows.append(row)
        if step in todo:
            done += 1
            if progress is not None:
                progress(done, len(todo))
    frame = pd.DataFrame(rows)
    if len(frame):
        frame = frame.astype({"step": "int64"})

    if todo or cached is None or len(cached[1]) != len(frame) or ("llc" in frame and "llc" not in cached[1]):
        key = {
            "format": TIMELINE_FORMAT,
            "default": chosen is None,  # key frequencies of the last checkpoint, or chosen ones
            "key_freqs": used,
            "last": [str(steps[-1]), signatures[str(steps[-1])]] if steps else None,
            "checkpoints": signatures,
            "llc_sampler": SAMPLER.to_dict(),
        }
        if use_cache:
            _write_cache(cache_path, key, frame)
    frame.attrs["key_freqs"] = used
    return frame

"""The ``grokviz analyze --json`` object of a digits (10-digit adder) checkpoint.

Keys: family, step, n_params, shape (layers, d_model, heads, FFN width, normalisation, unembed),
verification (pairs, exact_match, loss, per_position accuracy by answer position, by carry chain),
and the last log row at or before the step when the run has a log. Definitions: docs/adder.md.
"""

from __future__ import annotations

from grokviz.analysis import digits
from grokviz.core import digits_model, digits_tasks
from grokviz.core.digits_config import DigitsConfig
from grokviz.core.families import SummaryRequest
from grokviz.core.params import Params, n_params


def summarise_digits(cfg: DigitsConfig, step: int, params: Params, log_row: dict | None = None) -> dict:
    pairs = digits_tasks.verification_set()
    scores = digits.score(params, pairs)
    out = {
        "family": "digits",
        "step": step,
        "n_params": n_params(digits_model.param_shapes(cfg)),
        "shape": {
            "n_layers": cfg.n_layers,
            "d_model": cfg.d_model,
            "n_heads": cfg.n_heads,
            "d_mlp": cfg.d_mlp,
            "normalization": cfg.normalization,
            "unembed": cfg.unembed,
            "mlp_bias": cfg.mlp_bias,
        },
        "verification": {
            "pairs": len(pairs),
            "seed": digits_tasks.VERIFY_SEED,
            "exact_match": scores.exact_match,
            "loss": scores.loss,
            "per_position": dict(zip(digits_tasks.answer_labels(), scores.per_position)),
            "by_carry_chain": digits.by_carry_chain(pairs, scores.correct),
        },
    }
    if log_row is not None:
        out["log"] = log_row
    return out


def summarise_checkpoint(request: SummaryRequest) -> dict:
    """What ``grokviz analyze`` reports of an adder checkpoint (the family table's summary):
    :func:`summarise_digits` with the run's last log row at or before the step. The request's
    ``key_freqs`` and ``threshold`` are the modular family's (``analyze`` refuses ``--key-freqs`` here)."""
    log_row = None
    frame = request.log() if request.log is not None else None
    if frame is not None:
        earlier = frame[frame["step"] <= request.step]
        if len(earlier):
            log_row = {k: (int(v) if k == "step" else float(v)) for k, v in earlier.iloc[-1].items()}
    return summarise_digits(request.config, request.step, request.params, log_row)


def human(path: str, out: dict) -> str:
    v, s = out["verification"], out["shape"]
    worst = min(v["per_position"].items(), key=lambda kv: kv[1])
    lines = [
        f"{path}: step {out['step']} of the 10-digit adder ({out['n_params']} parameters: {s['n_layers']} layer(s), "
        f"d_model {s['d_model']}, {s['n_heads']} head(s), FFN {s['d_mlp']})",
        f"  verification set ({v['pairs']:,} pairs, seed {v['seed']}): exact match {v['exact_match']:.2%}, "
        f"loss {v['loss']:.4g}",
        "  accuracy per answer digit: "
        + ", ".join(f"{k} {acc:.2%}" for k, acc in v["per_position"].items())
        + f" (worst: {worst[0]})",
        "  exact match by longest carry chain: "
        + ", ".join(f"{r['chain']}: {r['exact_match']:.1%} ({r['pairs']})" for r in v["by_carry_chain"]),
    ]
    return "\n".join(lines)

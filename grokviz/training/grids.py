"""The members of a sweep: grids of configs, the product of the axes a command line or a notebook gives.

:func:`grid_configs` (modular and group members), :func:`digits_grid` (adder members) and
:func:`shape_grid` (model sizes, as config changes either grid takes). An axis given as an empty
list is refused, never replaced by the base value. Training the members is
``grokviz.training.ensemble``'s.
"""

from __future__ import annotations

import itertools

from grokviz.core.config import Config
from grokviz.errors import GrokvizError


def refuse_empty(axes: dict) -> None:
    """Refuse, naming them, the axes given as empty lists (None: not given, the base value's)."""
    empty = [name for name, values in axes.items() if values is not None and not len(values)]
    if empty:
        raise GrokvizError(f"an ensemble axis has no values: {', '.join(empty)}")


def shape_grid(base, *, d_models=None, d_mlps=None, n_heads=None, pairs=None, keep_d_head=False) -> list[dict]:
    """The model shapes of a sweep, as config changes: ``pairs`` of (d_model, d_mlp), or the product
    d_models x d_mlps x n_heads (an axis left out keeps ``base``'s value). A d_mlp given as ``"4x"``
    is 4 x the member's d_model. A modular config's ``d_head`` follows as d_model / n_heads (the
    paper's 128 / 4 = 32) unless ``keep_d_head``; both must then divide."""
    if pairs is not None and (d_models is not None or d_mlps is not None):
        raise GrokvizError("give the shapes as D_MODEL:D_MLP pairs or as d_model and d_mlp lists, not both")
    refuse_empty({"d_model": d_models, "d_mlp": d_mlps, "n_heads": n_heads, "shapes": pairs})
    if pairs is None:
        pairs = [
            (d, int(m[:-1]) * d if isinstance(m, str) else m)
            for d in (d_models or [base.d_model])
            for m in (d_mlps or [base.d_mlp])
        ]
    found = []
    for (d, m), h in itertools.product(pairs, n_heads or [base.n_heads]):
        change = {"d_model": d, "d_mlp": m, "n_heads": h}
        if base.family != "digits" and not keep_d_head:
            if d % h:
                raise GrokvizError(f"n_heads={h} must divide d_model={d} (d_head is d_model / n_heads)")
            change["d_head"] = d // h
        found.append(change)
    return found


def grid_configs(
    base: Config,
    *,
    seeds=None,
    weight_decays=None,
    frac_trains=None,
    lrs=None,
    grokfast_lambs=None,
    shapes: list[dict] | None = None,
    n_layers=None,
    batch_sizes=None,
) -> list[Config]:
    """The product of the given axes (an axis left out, None, keeps ``base``'s value), the model
    shapes outermost (:func:`shape_grid`'s changes), then depth, batch size (None in
    ``batch_sizes``: the full batch) and weight decay.

    An axis given as an empty list is an error, never the base value: an empty range must not
    quietly train the default member."""
    refuse_empty(
        {
            "weight_decays": weight_decays,
            "frac_trains": frac_trains,
            "lrs": lrs,
            "seeds": seeds,
            "grokfast_lambs": grokfast_lambs,
            "shapes": shapes,
            "n_layers": n_layers,
            "batch_sizes": batch_sizes,
        }
    )
    axes = (
        [{}] if shapes is None else shapes,
        [base.n_layers] if n_layers is None else n_layers,
        [base.batch_size] if batch_sizes is None else batch_sizes,
        [base.weight_decay] if weight_decays is None else weight_decays,
        [base.frac_train] if frac_trains is None else frac_trains,
        [base.lr] if lrs is None else lrs,
        [base.seed] if seeds is None else seeds,
        [base.grokfast_lamb] if grokfast_lambs is None else grokfast_lambs,
    )
    return [
        base.replace(
            n_layers=depth,
            batch_size=batch,
            weight_decay=wd,
            frac_train=frac,
            lr=lr,
            seed=seed,
            grokfast_lamb=lamb,
            **shape,
        )
        for shape, depth, batch, wd, frac, lr, seed, lamb in itertools.product(*axes)
    ]


def digits_grid(base, *, seeds=None, lrs=None, weight_decays=None, shapes: list[dict] | None = None) -> list:
    """Adder members (``DigitsConfig``): the product lr x shape x weight decay x seed, lr outermost, so
    that with ``group_size`` = the number of seeds one learning rate's groups all train before the next's."""
    refuse_empty({"seeds": seeds, "lrs": lrs, "weight_decays": weight_decays, "shapes": shapes})
    axes = (lrs or [base.lr], shapes or [{}], weight_decays or [base.weight_decay], seeds or [base.seed])
    return [
        base.replace(lr=lr, weight_decay=wd, seed=seed, **shape) for lr, shape, wd, seed in itertools.product(*axes)
    ]

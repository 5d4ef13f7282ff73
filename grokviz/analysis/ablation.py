"""Frequency ablations as callers run them, and one prediction explained by frequency.

Owns (definitions in docs/analysis.md, "Frequency ablation"):

* :func:`ablate` — remove, or keep only, a set of frequencies at one of the three sites
  (``logits``, ``embedding``, ``neurons``: the projections of ``grokviz.analysis.projections``);
  returns loss and accuracy on train, test and all pairs before and after, and the correctness
  grid (:class:`AblationResult`). It builds the baseline its site needs (:func:`site_baseline`)
  or takes a precomputed one (the app caches them per checkpoint);
* :func:`ablate_baseline` — the same from a given :class:`~grokviz.analysis.baseline.Baseline`;
* :func:`predict` — one input's logits and each frequency's share of the correct logit.

With a discrete-log :class:`~grokviz.analysis.group.Group` (``mul``, ``div``) the metrics, before
and after alike, are taken on the dataset's pairs without 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from grokviz.analysis.baseline import Baseline, SplitMetrics, baseline, evaluate
from grokviz.analysis.fourier import check_frequencies, fourier_basis, frequency_rows
from grokviz.analysis.group import Group, additive
from grokviz.analysis.layers import resolve_layer
from grokviz.analysis.projections import ablated_logits, check_mode, check_site, residue_sign
from grokviz.core.architecture import REFERENCE, Architecture
from grokviz.core.fast_path import forward_all_pairs, forward_last
from grokviz.core.params import Params, p_of
from grokviz.core.tasks import Dataset
from grokviz.errors import GrokvizError


@dataclass
class AblationResult:
    before: dict[str, SplitMetrics]  # keys "train", "test", "all"
    after: dict[str, SplitMetrics]
    correct_before: torch.Tensor  # [p (a), p (b)] bool; False where (a, b) is not in the dataset
    correct_after: torch.Tensor  # [p, p] bool
    frequencies: list[int] = field(default_factory=list)
    mode: str = "remove"
    site: str = "logits"


def site_baseline(
    params: Params, site: str, group: Group | None = None, arch: Architecture = REFERENCE, layer: int | None = None
) -> Baseline:
    """The baseline an ablation at ``site`` needs: the full :func:`~grokviz.analysis.baseline.baseline`
    (activations of block ``layer`` too; None: the last) at the neurons site, the all-pairs logits
    alone at the logits and embedding sites (one forward, no activations kept)."""
    check_site(site)
    if site == "neurons":
        return baseline(params, group, arch, layer)
    logits = forward_all_pairs(params, arch=arch)  # [p*p, p]
    return Baseline(p=p_of(params), logits=logits, acts=None, group=group, arch=arch, params=params)


def ablate(
    params: Params,
    dataset: Dataset,
    frequencies,
    mode: str = "remove",
    site: str = "logits",
    group: Group | None = None,
    arch: Architecture = REFERENCE,
    base: Baseline | None = None,
    layer: int | None = None,
) -> AblationResult:
    """Remove (or keep only) ``frequencies`` at ``site`` of the model ``params``: a whole ablation in one call.

    Returns an :class:`AblationResult`: loss and accuracy on train, test and all pairs before and
    after (``before``, ``after``), the correctness grids [p, p] before and after, and the
    validated, sorted frequencies with the mode and site. ``base`` is a precomputed baseline of
    these params (e.g. one the app caches per checkpoint: :func:`site_baseline` of this site, or
    the full :func:`~grokviz.analysis.baseline.baseline`, which serves every site); it then
    carries the group and architecture. Without one, :func:`site_baseline` builds it from
    ``params``, ``group`` and ``arch``. ``layer``: whose neurons the neurons site projects (None:
    the last block's; a given ``base`` carries its own).
    """
    check_mode(mode)
    check_site(site)
    if layer is not None and site != "neurons":
        raise GrokvizError(
            f"layer={layer} chooses whose neurons are ablated; it applies to site='neurons' only, not {site!r}"
        )
    if base is None:
        base = site_baseline(params, site, group, arch, layer)
    elif layer is not None:  # a given baseline carries its layer: it must be the one asked for
        weights = base.params if base.params is not None else params
        if weights is not None and base.layer != resolve_layer(weights, layer):
            raise GrokvizError(f"layer={layer}: the given baseline holds layer {base.layer}'s neurons")
    return ablate_baseline(base, params, dataset, frequencies, mode, site)


def ablate_baseline(
    base: Baseline, params: Params | None, dataset: Dataset, frequencies, mode: str = "remove", site: str = "logits"
) -> AblationResult:
    """:func:`ablate` from a given :class:`~grokviz.analysis.baseline.Baseline` (``params`` None:
    the baseline's own weights, where a site runs the model again).

    With a discrete-log group the metrics (before and after) are on the pairs without 0.
    """
    chosen = check_frequencies(frequencies, base.p)
    frame = base.frame
    analysed = frame.restrict(dataset)
    sign = frame.sign if base.group is not None else residue_sign(dataset)
    after_logits = ablated_logits(base, chosen, mode, site, params, sign)
    before, correct_before = base.evaluate(analysed)
    after, correct_after = evaluate(after_logits, analysed)
    return AblationResult(
        before=before,
        after=after,
        correct_before=correct_before,
        correct_after=correct_after,
        frequencies=chosen,
        mode=mode,
        site=site,
    )


# --- one prediction -----------------------------------------------------------------------------


@dataclass
class Prediction:
    """One input's logits and how each frequency adds to the logit of the correct answer.

    Over the output axis c the logits decompose exactly as
    ``logits[c] = mean_logit + sum_k (alpha_k cos(w_k c) + beta_k sin(w_k c))``;
    ``contributions[k]`` is frequency k's term at c = label, ``components[i]`` the whole wave
    of ``frequencies[i]`` over c. In a grokked model each key frequency's wave peaks at the
    answer (constructive interference) and they cancel elsewhere.
    """

    logits: torch.Tensor  # [p]
    answer: int  # argmax of the logits
    label: int
    contributions: dict[int, float]
    frequencies: list[int] = field(default_factory=list)
    components: torch.Tensor | None = None  # [len(frequencies), n (class c = classes[column])]
    mean_logit: float = 0.0
    classes: torch.Tensor | None = None  # [n] the class of each column (0..p-1, or g^l in log order)


def predict(
    params: Params,
    a: int,
    b: int,
    frequencies,
    label: int | None = None,
    group: Group | None = None,
    arch: Architecture = REFERENCE,
) -> Prediction:
    """Logits for (a, b), the answer, and each frequency's contribution to the ``label`` logit.

    ``label`` defaults to the model's answer (for pairs outside the task, e.g. b = 0 in div).
    With a discrete-log ``group`` the logits of c = g^0 .. g^(p-2) are decomposed in log order on
    the basis of Z_{p-1} (``components`` columns follow ``classes``); a label of 0 is outside the
    group, so its contributions are NaN.
    """
    p = p_of(params)
    chosen = check_frequencies(frequencies, p)
    with torch.no_grad():
        logits = forward_last(params, torch.tensor([a]), torch.tensor([b]), arch=arch)[0]  # [p]
    answer = int(logits.argmax())
    label = answer if label is None else int(label)
    frame = group if group is not None else additive(p)
    classes = frame.tokens  # [n]: the class c of each column
    n = len(classes)
    on_group = logits.double()[classes]  # [n]
    basis = fourier_basis(n, torch.float64)  # [n (row), n (element)]
    coefficients = basis @ on_group  # [n (row)]
    components = torch.stack(
        [coefficients[rows] @ basis[rows] for rows in (frequency_rows([k], n) for k in chosen)]
    )  # [len(chosen), n]
    column = frame.element(label)
    contributions = {
        k: float(components[i, column]) if column is not None else float("nan") for i, k in enumerate(chosen)
    }
    return Prediction(
        logits=logits,
        answer=answer,
        label=label,
        contributions=contributions,
        frequencies=chosen,
        components=components.float(),
        mean_logit=float(on_group.mean()),
        classes=classes,
    )

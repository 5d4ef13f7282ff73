"""Frequency ablations, loss/accuracy on the splits, one prediction explained.

Owns (definitions in docs/analysis.md, "Frequency ablation"):

* :func:`ablate` — remove, or keep only, a set of frequencies at one of three sites:
  ``logits`` (project the all-pairs logits on/off the cos/sin(w_k(a+b)) directions),
  ``embedding`` (project W_E[:p] and run the model again), ``neurons`` (project each neuron's
  activations on/off the frequencies' 3x3 blocks and continue through the rest of the model:
  linearly through W_out, W_U where the architecture has no LayerNorm, else by the model's own
  forward with the projected activations put in at ``blocks.0.mlp.hook_post``); returns
  loss and accuracy on train, test and all pairs before and after, and the correctness grid.
* :func:`predict` — one input's logits and each frequency's share of the correct logit.

Speed (p = 113, one CPU core; numbers from scripts/bench_analysis.py): an ablation needs the
un-ablated all-pairs logits and neuron activations, one forward over p^2 pairs (~70 ms).
:func:`baseline` computes them once per checkpoint (keep it: the app caches it per step), plus,
on first use, every frequency's 3x3 block of the activations' 2-D transform (~10 ms).
:func:`ablate_baseline` / :func:`ablated_logits` then cost ~10 ms at the logits and neurons sites
(the neurons site is linear in the activations, so it needs only the chosen blocks), and one
more all-pairs forward at the embedding site. ``ablate(params, ...)`` is
``ablate_baseline(baseline(params), ...)``. The logits and embedding sites need only
``Baseline(p=p, logits=...)``; the neurons site also needs ``acts`` and ``W_L``.

All p^2 pairs are always evaluated (the projections are orthogonal only on the full grid);
metrics use only the pairs of the dataset (``div`` has no b = 0), and the correctness grid is
False on pairs outside it.

For subtraction the directions are cos/sin(w_k(a-b)) (detected from the dataset's labels);
for every other task a+b is used, which is only meaningful for ``add`` (callers label it).

With a discrete-log :class:`~grokviz.analysis.group.Group` (``mul``, ``div``; ``Baseline.group``)
every site works on the (p-1)^2 pairs with non-zero operands, re-indexed by log, with the
directions cos/sin(w_k(log a ± log b)), w_k = 2 pi k / (p-1): the logits and neurons of pairs
containing 0 are left as they are, token 0's embedding row too, and the metrics are taken on the
dataset's pairs without 0 (before and after alike).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch
import torch.nn.functional as F
from einops import einsum, rearrange

from grokviz.analysis.fourier import check_frequencies, fourier_basis, frequency_rows, unembed_matrix
from grokviz.analysis.group import Group, additive
from grokviz.analysis.neurons import all_pairs, block_index, blocks_of, forward_all_pairs, frequency_blocks
from grokviz.core.architecture import REFERENCE, Architecture
from grokviz.core.model import Params, forward_last, p_of
from grokviz.core.tasks import Dataset

SITES = ("logits", "embedding", "neurons")
MODES = ("remove", "keep")
SPLITS = ("train", "test", "all")


@dataclass
class SplitMetrics:
    loss: float  # mean cross-entropy, computed in float64
    accuracy: float


@dataclass
class AblationResult:
    before: dict[str, SplitMetrics]  # keys "train", "test", "all"
    after: dict[str, SplitMetrics]
    correct_before: torch.Tensor  # [p (a), p (b)] bool; False where (a, b) is not in the dataset
    correct_after: torch.Tensor  # [p, p] bool
    frequencies: list[int] = field(default_factory=list)
    mode: str = "remove"
    site: str = "logits"


def all_pairs_logits(params: Params, arch: Architecture = REFERENCE) -> torch.Tensor:
    """[p*p, p] position-2 logits for every pair, row-major (index a * p + b)."""
    return forward_all_pairs(params, arch=arch)


@dataclass
class Baseline:
    """The un-ablated all-pairs quantities of one checkpoint (compute once, reuse per change)."""

    p: int
    logits: torch.Tensor  # [p*p, p]
    acts: torch.Tensor | None  # [p (a), p (b), d_mlp] post-ReLU at position 2 (the neurons site needs it)
    acts_fourier: torch.Tensor | None = None  # [p, p, d_mlp] full fourier_2d(acts), only if a caller has it
    W_L: torch.Tensor | None = None  # [d_mlp, p] = W_out @ W_U (the neurons site needs it)
    group: Group | None = None  # None: the additive basis of Z_p, sign read from the dataset
    arch: Architecture = REFERENCE  # the model's; without a linear readout the neurons site reruns it
    params: Params | None = None  # the weights (the neurons site of a LayerNorm model needs them)

    _before: dict = field(default_factory=dict, repr=False)  # id(dataset) -> (dataset, evaluation)

    def evaluate(self, dataset: Dataset) -> tuple[dict[str, SplitMetrics], torch.Tensor]:
        """:func:`evaluate` of the un-ablated logits, memoised per dataset object."""
        stored = self._before.get(id(dataset))
        if stored is None or stored[0] is not dataset:
            stored = (dataset, evaluate(self.logits, dataset))
            self._before[id(dataset)] = stored
        return stored[1]

    @property
    def frame(self) -> Group:
        return self.group if self.group is not None else additive(self.p)

    @property
    def group_acts(self) -> torch.Tensor:
        """[n (l_a), n (l_b), d_mlp] the activations re-indexed by group element (``acts`` when additive)."""
        return self.frame.on_group(self.acts)

    @cached_property
    def blocks(self) -> torch.Tensor:
        """[K, 3, 3, d_mlp] every frequency's 3x3 block of the group activations' 2-D transform (not centred)."""
        if self.acts_fourier is not None:
            return blocks_of(self.acts_fourier)
        return frequency_blocks(self.group_acts)

    @cached_property
    def mlp_logits(self) -> torch.Tensor:
        """[n*n, p] the neurons' part of the group pairs' logits, acts @ W_L (only keep-at-neurons needs it)."""
        return rearrange(self.group_acts, "a b neuron -> (a b) neuron") @ self.W_L


def baseline(params: Params, group: Group | None = None, arch: Architecture = REFERENCE) -> Baseline:
    """One all-pairs forward: logits and activations (their frequency blocks follow on first use)."""
    p = p_of(params)
    cache: dict = {}
    logits = forward_all_pairs(params, cache, arch)  # [p*p, p]
    acts = rearrange(cache["blocks.0.mlp.hook_post"], "(a b) neuron -> a b neuron", a=p)
    return Baseline(p=p, logits=logits, acts=acts, W_L=unembed_matrix(params), group=group, arch=arch, params=params)


# --- evaluation -------------------------------------------------------------------------------


def evaluate(logits: torch.Tensor, dataset: Dataset) -> tuple[dict[str, SplitMetrics], torch.Tensor]:
    """logits [p*p, p] over all pairs -> (metrics per split, correctness grid [p, p] bool)."""
    p = dataset.p
    pair = dataset.a * p + dataset.b  # [n_pairs] index into the all-pairs axis
    chosen = logits[pair]  # [n_pairs, p]
    # Float64: a grokked model's loss is ~1e-7, below what fp32 log-softmax resolves.
    losses = F.cross_entropy(chosen.double(), dataset.labels, reduction="none")  # [n_pairs]
    correct = chosen.argmax(dim=-1) == dataset.labels  # [n_pairs]
    metrics = {}
    for split, index in (("train", dataset.train_idx), ("test", dataset.test_idx), ("all", None)):
        part_loss = losses if index is None else losses[index]
        part_correct = correct if index is None else correct[index]
        if len(part_loss) == 0:
            metrics[split] = SplitMetrics(loss=float("nan"), accuracy=float("nan"))
        else:
            metrics[split] = SplitMetrics(loss=float(part_loss.mean()), accuracy=float(part_correct.double().mean()))
    grid = torch.zeros(p * p, dtype=torch.bool)
    grid[pair] = correct
    return metrics, grid.reshape(p, p)


def residue_sign(dataset: Dataset) -> int:
    """-1 when the dataset's labels are (a - b) mod p (subtraction), else +1 (a + b)."""
    if torch.equal(dataset.labels, (dataset.a - dataset.b) % dataset.p):
        return -1
    return 1


# --- the three sites --------------------------------------------------------------------------


def project_logits(
    logits: torch.Tensor, frequencies, mode: str = "remove", sign: int = 1, group: Group | None = None
) -> torch.Tensor:
    """The logits-site ablation, ANALYSIS.md's formulas, in O(p^3) instead of O(p^4).

    logits [p*p, p]. The directions c_k, s_k depend on (a, b) only through s = (a + sign*b) mod p,
    and every residue s occurs p times, so projecting on them is: average the logits over the
    pairs of each residue (M [p (s), p (class)]), project M on the chosen 1-D frequencies
    (B_S^T B_S M), and read the result back at each pair's residue.
    Keep-only adds back the per-class mean of L - L' (= the per-class mean of L, as the
    projected part has mean zero over pairs).
    A discrete-log ``group`` does the same on its n*n pairs (s = log a + sign log b mod n, the
    basis of Z_n); the rows of pairs containing 0 are returned unchanged. ``sign`` is then the group's.
    """
    _check_mode(mode)
    p = logits.shape[1]
    chosen = check_frequencies(frequencies, p)
    discrete_log = group is not None and group.discrete_log
    if discrete_log:
        n, residue, sign = group.order, group.residue, group.sign
        on_group = group.on_group_rows(logits)  # [n*n, p]
    else:
        n, on_group = p, logits
        a, b = all_pairs(p)
        residue = (a + sign * b) % p  # [p*p]
    mean_by_residue = torch.zeros(n, p, dtype=logits.dtype).index_add_(0, residue, on_group) / n  # [n (s), p]
    basis = fourier_basis(n, logits.dtype)[frequency_rows(chosen, n)]  # [2|S|, n (s)]
    projected = (basis.T @ (basis @ mean_by_residue))[residue]  # [n*n, p]
    if mode == "remove":
        changed = on_group - projected
    else:
        changed = projected + on_group.mean(dim=0, keepdim=True)
    return group.onto_all_pairs(logits, changed) if discrete_log else changed


def project_embedding(params: Params, frequencies, mode: str = "remove", group: Group | None = None) -> Params:
    """Params with W_E[:p] projected off (remove) or onto (keep) the frequencies' cos/sin rows.

    Keep-only also keeps the constant (mean) embedding row: it is the same for every token,
    carries no information about it, and keeping it makes keep-all equal to the original.
    The '=' row is untouched; with a discrete-log ``group`` the rows of tokens 1..p-1 are
    projected in log order on the basis of Z_{p-1}, and token 0's row is untouched too.
    """
    _check_mode(mode)
    W_E = params["embed.W_E"]  # [d_vocab, d_model]
    p = W_E.shape[0] - 1
    chosen = check_frequencies(frequencies, p)
    tokens = group.tokens if group is not None and group.discrete_log else torch.arange(p)  # [n]
    n = len(tokens)
    rows = frequency_rows(chosen, n) if mode == "remove" else [0] + frequency_rows(chosen, n)
    basis = fourier_basis(n, W_E.dtype)[rows]  # [n_rows, n (element)]
    on_group = W_E[tokens]  # [n, d_model]
    projected = basis.T @ (basis @ on_group)  # [n, d_model]
    out = dict(params)
    new = W_E.clone()
    new[tokens] = on_group - projected if mode == "remove" else projected
    out["embed.W_E"] = new
    return out


def block_entries(frequencies, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The entries of the union of the frequencies' 3x3 blocks, minus (0, 0), as indices
    (frequency - 1, position in block row, position in block column), positions 0..2 standing for
    basis rows (0, 2k-1, 2k).

    (0, 0) is each neuron's mean over all pairs: it belongs to no frequency, so remove leaves
    it and keep-only keeps it (as the logits site keeps the per-class mean). The other entries
    belong to exactly one frequency, so the union has no repeats. For an even basis size ``n``
    frequency n/2 has no sine row, so its block is 2x2 (positions 0 and 1).
    """
    which, rows, cols = [], [], []
    for k in frequencies:
        size = 2 if n is not None and 2 * k == n else 3
        for row in range(size):
            for col in range(size):
                if (row, col) != (0, 0):
                    which.append(k - 1), rows.append(row), cols.append(col)
    as_long = lambda values: torch.tensor(values, dtype=torch.long)  # noqa: E731
    return as_long(which), as_long(rows), as_long(cols)


def project_neurons_logits(base: Baseline, frequencies, mode: str = "remove") -> torch.Tensor:
    """The neurons-site ablation as logits [p*p, p], from the cached baseline.

    The logits are linear in the activations N (logits = rest + N @ W_L), so projecting N onto
    the blocks (P N) changes them by (P N) @ W_L, and P N only involves the chosen entries of
    F = B N B^T (``base.blocks``): (P N)[a, b] = sum over block entries (i, j) of B[i, a] B[j, b] F[i, j].
    Each neuron's mean is kept in both modes (see :func:`block_entries`).
    Keep-all is not the original here: cross-frequency terms (i of k, j of k' != k) lie in no
    block, and keep-only drops them too. With a discrete-log group, N is the group pairs'
    activations (log order) and only their logits change.
    """
    _check_mode(mode)
    n = base.frame.order
    design, entries = _block_projection(base, frequencies, base.logits.dtype)
    projected = design @ (entries @ base.W_L)  # [n*n, p] = (P N) @ W_L, without the mean
    on_group = base.frame.on_group_rows(base.logits)  # [n*n, p]
    if mode == "remove":
        changed = on_group - projected
    else:
        mean_logits = (base.blocks[0, 0, 0] / n) @ base.W_L  # [p]: F[0, 0] B[0, a] B[0, b] = mean N
        changed = on_group - base.mlp_logits + mean_logits + projected
    return base.frame.onto_all_pairs(base.logits, changed)


def projected_activations(base: Baseline, frequencies, mode: str = "remove") -> torch.Tensor:
    """[p*p, d_mlp] the activations after the neurons-site projection, row-major over all pairs.

    The same projection as :func:`project_neurons_logits`, written out on the activations:
    remove gives N - P N, keep gives mean(N) + P N; pairs outside a discrete-log group keep theirs.
    """
    _check_mode(mode)
    design, entries = _block_projection(base, frequencies, base.acts.dtype)
    projected = design @ entries  # [n*n, d_mlp] = P N without the mean
    on_group = rearrange(base.group_acts, "a b neuron -> (a b) neuron")
    changed = on_group - projected if mode == "remove" else base.blocks[0, 0, 0] / base.frame.order + projected
    return base.frame.onto_all_pairs(rearrange(base.acts, "a b neuron -> (a b) neuron"), changed)


def _block_projection(base: Baseline, frequencies, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The neurons-site projection P N = design @ entries (without each neuron's mean), as
    (design [n*n, n_entries], entries [n_entries, d_mlp] = F[i, j]) over the chosen block entries."""
    n = base.frame.order
    chosen = check_frequencies(frequencies, base.p)
    which, rows, cols = block_entries(chosen, n)
    index = block_index(n)  # [K, 3] basis rows (0, 2k-1, 2k)
    i, j = index[which, rows], index[which, cols]  # basis rows of each entry, [n_entries]
    basis = fourier_basis(n, dtype)  # [n, n]
    design = einsum(basis[i], basis[j], "entry a, entry b -> a b entry").reshape(n * n, -1)  # [n*n, n_entries]
    return design, base.blocks[which, rows, cols]


def project_neurons_forward(base: Baseline, frequencies, mode: str = "remove", params: Params | None = None):
    """The neurons-site ablation as logits [p*p, p], by the model's own forward: the projected
    activations replace ``blocks.0.mlp.hook_post`` and the rest of the model runs on them.

    Exact for every architecture; on one without LayerNorm it equals :func:`project_neurons_logits`
    (tested), which needs no forward."""
    params = base.params if params is None else params
    if params is None:
        raise ValueError("the neurons site of this architecture runs the model again: pass params")
    acts = projected_activations(base, frequencies, mode)
    return forward_all_pairs(params, arch=base.arch, hooks={"blocks.0.mlp.hook_post": lambda _: acts})


def ablated_logits(
    base: Baseline, frequencies, mode: str = "remove", site: str = "logits", params: Params | None = None, sign: int = 1
) -> torch.Tensor:
    """[p*p, p] logits after the ablation (``params``, or ``base.params``, runs the model again at
    the embedding site, and at the neurons site of a model with LayerNorm)."""
    params = base.params if params is None else params
    if site == "logits":
        return project_logits(base.logits, frequencies, mode, sign, base.group)
    if site == "neurons":
        if base.arch.linear_readout:
            return project_neurons_logits(base, frequencies, mode)
        return project_neurons_forward(base, frequencies, mode, params)
    if site == "embedding":
        if params is None:
            raise ValueError("the embedding site runs the model again: pass params")
        return all_pairs_logits(project_embedding(params, frequencies, mode, base.group), base.arch)
    raise ValueError(f"site={site!r} is unknown; choose one of {SITES}")


def ablate_baseline(
    base: Baseline, params: Params | None, dataset: Dataset, frequencies, mode: str = "remove", site: str = "logits"
) -> AblationResult:
    """:func:`ablate` from a precomputed :class:`Baseline` (the fast path the app uses).

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


def ablate(
    params: Params,
    dataset: Dataset,
    frequencies,
    mode: str = "remove",
    site: str = "logits",
    group: Group | None = None,
    arch: Architecture = REFERENCE,
) -> AblationResult:
    """Remove (or keep only) ``frequencies`` at ``site``; metrics before/after on train, test, all."""
    _check_mode(mode)
    if site not in SITES:
        raise ValueError(f"site={site!r} is unknown; choose one of {SITES}")
    return ablate_baseline(baseline(params, group, arch), params, dataset, frequencies, mode, site)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is unknown; choose one of {MODES}")


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

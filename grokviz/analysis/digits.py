"""Analysis of the 10-digit adder: exact match and per-digit accuracy, accuracy by carry chain,
ablations of the attention head and of FFN neurons, and a linear probe for the carry.

Pure functions: parameters and pairs in, tensors or dataclasses out (no Streamlit, no files).
Scores are teacher-forced, which gives greedy decoding's exact match (see
``digits_model.answer_scores``); per-position accuracy is each digit's, given the true digits before it.
Definitions: docs/adder.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grokviz.core import digits_model, digits_tasks
from grokviz.core.params import Params
from grokviz.errors import GrokvizError

ABLATION_MODES = ("zero", "mean")
PROBE_SITES = ("resid_pre", "resid_mid", "resid_post")
CHUNK = 4096  # pairs per forward: bounded memory on any set size


@dataclass(frozen=True)
class Scores:
    """A model on a set of pairs (teacher-forced)."""

    loss: float
    exact_match: float
    per_position: list[float]  # [12]: accuracy of the digit of 10^k, then of EOS
    correct: torch.Tensor  # [n] bool: the whole answer is right


@dataclass(frozen=True)
class Ablation:
    """What to ablate: the attention head ``head`` of ``layer``, or FFN neuron ``neuron`` of ``layer``
    (``kind`` "head" or "neuron"), replaced by zeros or by its mean over the pairs scored."""

    kind: str
    layer: int
    index: int
    mode: str = "zero"

    def __post_init__(self) -> None:
        if self.kind not in ("head", "neuron"):
            raise GrokvizError(f"ablation kind {self.kind!r}: choose 'head' or 'neuron'")
        if self.mode not in ABLATION_MODES:
            raise GrokvizError(f"ablation mode {self.mode!r}: choose one of {ABLATION_MODES}")

    @property
    def hook(self) -> str:
        return f"blocks.{self.layer}.attn.hook_z" if self.kind == "head" else f"blocks.{self.layer}.mlp.hook_post"

    def describe(self) -> str:
        what = f"head {self.layer}.{self.index}" if self.kind == "head" else f"neuron {self.layer}.{self.index}"
        return f"{self.mode}-ablate {what}"


def check_ablation(params: Params, ablation: Ablation) -> None:
    """Refuse a layer, head or neuron the model does not have, in words."""
    n_layers = digits_model.n_layers_of(params)
    if not 0 <= ablation.layer < n_layers:
        raise GrokvizError(f"layer {ablation.layer}: the model has layers 0..{n_layers - 1}")
    if ablation.kind == "head":
        size = params[f"blocks.{ablation.layer}.attn.W_Q"].shape[0]
    else:
        size = params[f"blocks.{ablation.layer}.mlp.W_in"].shape[1]
    if not 0 <= ablation.index < size:
        raise GrokvizError(
            f"{ablation.kind} {ablation.index}: layer {ablation.layer} has {ablation.kind}s 0..{size - 1}"
        )


def _chunks(pairs: digits_tasks.PairSet):
    x, labels = digits_tasks.split_sequence(pairs.tokens)
    for start in range(0, len(pairs), CHUNK):
        yield x[start : start + CHUNK], labels[start : start + CHUNK]


@torch.no_grad()
def mean_activation(params: Params, pairs: digits_tasks.PairSet, hook: str) -> torch.Tensor:
    """The mean of one activation over ``pairs``, per answer position: [12, ...] (the fast path's axes)."""
    total, n = None, 0
    for x, _ in _chunks(pairs):
        cache: dict = {}
        digits_model.forward(params, x, answer_only=True, cache=cache)
        part = cache[hook].double().sum(0)
        total = part if total is None else total + part
        n += x.shape[0]
    return (total / n).float()


def _ablation_hooks(ablation: Ablation, mean: torch.Tensor | None) -> dict:
    index = ablation.index

    def replace(act: torch.Tensor) -> torch.Tensor:
        act = act.clone()
        # hook_z: [batch, query, head, d_head]; hook_post: [batch, query, d_mlp]
        act[:, :, index] = 0.0 if mean is None else mean[:, index]
        return act

    return {ablation.hook: replace}


@torch.no_grad()
def score(params: Params, pairs: digits_tasks.PairSet, ablation: Ablation | None = None) -> Scores:
    """Loss, exact match and per-position accuracy on ``pairs``, optionally with one ablation
    (a mean ablation uses the mean over the same pairs)."""
    hooks = None
    if ablation is not None:
        check_ablation(params, ablation)
        mean = mean_activation(params, pairs, ablation.hook) if ablation.mode == "mean" else None
        hooks = _ablation_hooks(ablation, mean)
    losses, per_pos, correct = 0.0, torch.zeros(digits_tasks.ANSWER_LEN, dtype=torch.float64), []
    for x, labels in _chunks(pairs):
        logits = digits_model.forward(params, x, answer_only=True, hooks=hooks)  # [batch, 12, d_vocab]
        loss, _, pos = digits_model.answer_scores(logits, labels)
        losses += float(loss) * x.shape[0]
        per_pos += pos * x.shape[0]
        correct.append((logits.argmax(-1) == labels).all(-1))
    n = len(pairs)
    right = torch.cat(correct)
    return Scores(losses / n, float(right.double().mean()), (per_pos / n).tolist(), right)


def by_carry_chain(pairs: digits_tasks.PairSet, correct: torch.Tensor) -> list[dict]:
    """Exact match grouped by the longest carry chain of each pair: rows of chain, pairs, exact_match."""
    chains = digits_tasks.longest_carry_chain(pairs.a, pairs.b)
    rows = []
    for chain in range(digits_tasks.N_DIGITS + 1):
        picked = chains == chain
        n = int(picked.sum())
        if n:
            rows.append({"chain": chain, "pairs": n, "exact_match": float(correct[picked].double().mean())})
    return rows


@dataclass(frozen=True)
class Probe:
    """A least-squares linear probe for "carry into digit k" at the answer position predicting digit k."""

    site: str
    digits: list[int]  # the digits probed (1..10: digit 0 never has a carry in, EOS has none)
    accuracy: list[float]  # held-out accuracy per digit
    baseline: list[float]  # held-out accuracy of always guessing the training half's majority
    carry_rate: list[float]  # fraction of held-out pairs with a carry into that digit


@torch.no_grad()
def carry_probe(params: Params, pairs: digits_tasks.PairSet, site: str = "resid_mid", layer: int = -1) -> Probe:
    """Fit on the first half of ``pairs``, score on the second: for each digit k = 1..10, a linear map
    of the residual stream at the position that predicts digit k (``site`` of block ``layer``) to
    +1 (carry into k) / -1 (none), by least squares with a bias, read by its sign."""
    if site not in PROBE_SITES:
        raise GrokvizError(f"probe site {site!r}: choose one of {PROBE_SITES}")
    if len(pairs) < 20:
        raise GrokvizError(f"a probe needs at least 20 pairs, got {len(pairs)}")
    layer = layer % digits_model.n_layers_of(params)
    hook = f"blocks.{layer}.hook_{site}"
    feats = []
    for x, _ in _chunks(pairs):
        cache: dict = {}
        digits_model.forward(params, x, answer_only=True, cache=cache)
        act = cache[hook]
        if act.shape[1] != digits_tasks.ANSWER_LEN:  # resid_pre covers every position
            act = act[:, digits_tasks.ANSWER_POSITIONS]
        feats.append(act.double())
    features = torch.cat(feats)  # [n, 12, d_model]
    carry = digits_tasks.carries(pairs.a, pairs.b)  # [n, 11]
    half = len(pairs) // 2
    digits, accuracy, baseline, rate = list(range(1, digits_tasks.N_SUM)), [], [], []
    for k in digits:
        design = torch.cat([features[:, k], torch.ones(len(pairs), 1, dtype=torch.float64)], dim=1)  # [n, d+1]
        target = carry[:, k].double() * 2 - 1  # [n]
        ridge = 1e-6 * torch.eye(design.shape[1], dtype=torch.float64)
        train_x, train_y = design[:half], target[:half]
        weights = torch.linalg.solve(train_x.T @ train_x + ridge, train_x.T @ train_y)
        predicted = torch.where(design[half:] @ weights >= 0, 1.0, -1.0)
        truth = target[half:]
        accuracy.append(float((predicted == truth).double().mean()))
        majority = 1.0 if float(train_y.mean()) >= 0 else -1.0
        baseline.append(float((truth == majority).double().mean()))
        rate.append(float((truth > 0).double().mean()))
    return Probe(site, digits, accuracy, baseline, rate)


@dataclass(frozen=True)
class Answer:
    """The model's greedy answer to one a + b, digit by digit."""

    a: int
    b: int
    tokens: list[int]  # [12] the model's answer tokens
    probabilities: list[float]  # [12] each chosen token's probability
    true_tokens: list[int]  # [12]
    value: int  # the answer read back (digits only)
    well_formed: bool
    pattern: torch.Tensor  # [layer, head, 12, 33]: attention of each answer position over the input

    @property
    def correct(self) -> bool:
        return self.well_formed and self.value == self.a + self.b


@torch.no_grad()
def answer(params: Params, a: int, b: int) -> Answer:
    """Greedy decoding of a + b, then the attention patterns of the sequence the model wrote."""
    for name, value in (("a", a), ("b", b)):
        if not 0 <= value <= digits_tasks.MAX_OPERAND:
            raise GrokvizError(f"{name}={value}: operands are 0 to {digits_tasks.MAX_OPERAND:,}")
    full = digits_tasks.encode(torch.tensor([a]), torch.tensor([b]))  # [1, 34]
    prompt, true_answer = full[:, : digits_tasks.PROMPT_LEN], full[0, digits_tasks.PROMPT_LEN :]
    tokens, probs = digits_model.greedy_decode(params, prompt)
    cache: dict = {}
    written = torch.cat([prompt, tokens[:, :-1]], dim=1)  # [1, 33]: what the model read at each step
    digits_model.forward(params, written, answer_only=True, cache=cache)
    n_layers = digits_model.n_layers_of(params)
    patterns = []
    for layer in range(n_layers):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"][0]  # [head, query, key]
        if pattern.shape[1] != digits_tasks.ANSWER_LEN:
            pattern = pattern[:, digits_tasks.ANSWER_POSITIONS]
        patterns.append(pattern)
    value, well_formed = digits_tasks.decode_answer(tokens)
    return Answer(
        a,
        b,
        tokens[0].tolist(),
        probs[0].tolist(),
        true_answer.tolist(),
        int(value[0]),
        bool(well_formed[0]),
        torch.stack(patterns),
    )

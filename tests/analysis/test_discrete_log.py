"""The discrete-log Fourier basis of mul and div (grokviz.analysis.group and the analyses over it).

Every analysis of a ``mul`` model at a small p is compared with a straightforward computation:
explicit logs by repeated multiplication, the basis of Z_{p-1} from its formula, loops over pairs.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from grokviz.analysis import baseline, fourier, neurons, progress, projections
from grokviz.analysis.circle import circle
from grokviz.analysis.group import group_for, primitive_root
from grokviz.analysis.summary import summarise
from grokviz.core.config import Config, dataset_for
from grokviz.core.fast_path import forward_last
from grokviz.core.params import init_params

PRIMES = (5, 7, 11, 13, 31, 97, 113)


def _explicit_logs(p: int, g: int) -> dict[int, int]:
    """token -> log_g token, by multiplying by g until 1 comes back."""
    logs, x = {}, 1
    for log in range(p - 1):
        logs[x] = log
        x = x * g % p
    return logs


def _explicit_basis(n: int) -> torch.Tensor:
    """Rows const, cos k, sin k (k < n/2), cos n/2 (even n), each divided by its norm, from the formula."""
    rows = [[1.0] * n]
    for k in range(1, n // 2 + 1):
        rows.append([math.cos(2 * math.pi * k * x / n) for x in range(n)])
        if 2 * k != n:
            rows.append([math.sin(2 * math.pi * k * x / n) for x in range(n)])
    basis = torch.tensor(rows, dtype=torch.float64)
    return basis / basis.norm(dim=1, keepdim=True)


@pytest.mark.parametrize("p", PRIMES)
def test_primitive_root_is_the_smallest_generator(p):
    g = primitive_root(p)
    assert sorted(pow(g, log, p) for log in range(p - 1)) == list(range(1, p))
    for smaller in range(2, g):  # no smaller number generates the whole group
        assert len({pow(smaller, log, p) for log in range(p - 1)}) < p - 1
    assert {5: 2, 7: 3, 31: 3, 97: 5, 113: 3}.get(p, g) == g


@pytest.mark.parametrize("p", PRIMES)
def test_log_reindexing_is_a_bijection(p):
    group = group_for("mul", p)
    assert group.order == p - 1 and group.generator == primitive_root(p)
    tokens = group.tokens.tolist()
    assert sorted(tokens) == list(range(1, p))  # onto 1..p-1, each once
    logs = _explicit_logs(p, group.generator)
    assert [group.element(x) for x in range(1, p)] == [logs[x] for x in range(1, p)]
    assert [tokens[group.element(x)] for x in range(1, p)] == list(range(1, p))  # inverse
    assert group.element(0) is None
    # Multiplication is addition of logs, division subtraction, mod p - 1.
    for a in range(1, p, 3):
        for b in range(1, p, 2):
            assert logs[a * b % p] == (logs[a] + logs[b]) % (p - 1)
            assert logs[a * pow(b, p - 2, p) % p] == (logs[a] - logs[b]) % (p - 1)


@pytest.mark.parametrize("n", [4, 6, 12, 30, 96, 112])
def test_basis_of_z_n_is_orthonormal_for_even_n(n):
    basis = fourier.fourier_basis(n, torch.float64)
    assert basis.shape == (n, n)
    assert torch.allclose(basis @ basis.T, torch.eye(n, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(basis, _explicit_basis(n), atol=1e-12)
    # The last frequency n/2 is a cosine only: (-1)^x / sqrt(n).
    alternating = torch.tensor([(-1.0) ** x for x in range(n)], dtype=torch.float64) / math.sqrt(n)
    assert torch.allclose(basis[-1], alternating, atol=1e-12)
    assert fourier.basis_labels(n)[-1] == f"cos {n // 2}" and fourier.n_frequencies(n) == n // 2
    assert fourier.frequency_rows([n // 2], n) == [n - 1]


def _params(p: int, seed: int = 0, d_model: int = 24) -> tuple[Config, dict]:
    cfg = Config(task="mul", p=p, d_model=d_model, n_heads=2, d_head=8, d_mlp=40, frac_train=0.5, seed=seed)
    torch.manual_seed(seed)
    return cfg, {name: t.double() for name, t in init_params(cfg).items()}


@pytest.mark.parametrize("p, k", [(31, 4), (31, 15), (97, 20), (97, 48), (13, 6)])
def test_synthetic_log_embedding_has_all_its_energy_at_k(p, k):
    cfg, params = _params(p)
    group = group_for("mul", p)
    direction = torch.randn(cfg.d_model, dtype=torch.float64)
    W_E = params["embed.W_E"].clone()
    for x in range(1, p):
        W_E[x] = math.cos(2 * math.pi * k * group.element(x) / (p - 1)) * direction
    W_E[0] = 5.0 * direction  # token 0 is outside the group: it must not count
    params["embed.W_E"] = W_E
    spectrum = fourier.embed_spectrum(params, group)
    assert spectrum.shape == ((p - 1) // 2,)
    assert spectrum[k - 1] ** 2 == pytest.approx(float(spectrum.pow(2).sum()), rel=1e-12)
    assert float(spectrum.pow(2).sum()) > 1.0
    # The additive basis sees no such concentration.
    additive = fourier.embed_spectrum(params)
    assert float(additive.max() ** 2 / additive.pow(2).sum()) < 0.9


def _explicit_analysis(cfg: Config, params: dict, freqs: list[int]):
    """Neuron FVEs, spectra, ablated logits and losses computed the slow, obvious way."""
    p, n = cfg.p, cfg.p - 1
    g = primitive_root(p)
    logs = _explicit_logs(p, g)
    token = {log: x for x, log in logs.items()}
    basis = _explicit_basis(n)
    cache: dict = {}
    a_all = torch.arange(p).repeat_interleave(p)
    b_all = torch.arange(p).repeat(p)
    with torch.no_grad():
        logits = forward_last(params, a_all, b_all, cache=cache)  # [p*p, p]
    post = cache["blocks.0.mlp.hook_post"].reshape(p, p, -1)
    N = torch.zeros(n, n, post.shape[2], dtype=torch.float64)
    for la in range(n):
        for lb in range(n):
            N[la, lb] = post[token[la], token[lb]]
    # 2-D transform and FVE of each frequency's block (2x2 for k = n/2).
    Fourier = torch.einsum("ia,jb,abc->ijc", basis, basis, N)
    energy = Fourier.pow(2)
    total = energy.sum(dim=(0, 1)) - energy[0, 0]
    fve = []
    for k in range(1, n // 2 + 1):
        idx = [0, 2 * k - 1] if 2 * k == n else [0, 2 * k - 1, 2 * k]
        block = energy[idx][:, idx].sum(dim=(0, 1)) - energy[0, 0]
        fve.append(block / total)
    fve = torch.stack(fve, dim=1)  # [d_mlp, K]
    # Spectra over the logs.
    W_E = torch.stack([params["embed.W_E"][token[log]] for log in range(n)])  # [n, d_model]
    W_L = params["blocks.0.mlp.W_out"] @ params["unembed.W_U"]
    W_L = torch.stack([W_L[:, token[log]] for log in range(n)], dim=1)  # [d_mlp, n]

    def norms(coefficients):  # [n, ...] -> [K]
        sq = coefficients.reshape(n, -1).pow(2).sum(dim=1)
        return torch.stack([(sq[2 * k - 1] + (0 if 2 * k == n else sq[2 * k])).sqrt() for k in range(1, n // 2 + 1)])

    # Logit ablations: unit directions cos/sin(w_k(log a + log b)) over the (p-1)^2 pairs.
    rows = [token[la] * p + token[lb] for la in range(n) for lb in range(n)]
    L = logits[rows]  # [n*n, p]
    directions = []
    for k in freqs:
        angle = torch.tensor(
            [2 * math.pi * k * (la + lb) / n for la in range(n) for lb in range(n)], dtype=torch.float64
        )
        for wave in (torch.cos(angle), torch.sin(angle)):
            if wave.norm() > 1e-6:  # sin of the frequency n/2 is zero at every pair
                directions.append(wave / wave.norm())
    D = torch.stack(directions, dim=1)  # [n*n, n_directions]
    removed, kept = logits.clone(), logits.clone()
    removed[rows] = L - D @ (D.T @ L)
    kept_part = D @ (D.T @ L)
    kept[rows] = kept_part + (L - kept_part).mean(dim=0)
    return dict(fve=fve, W_E=norms(basis @ W_E), W_L=norms((W_L @ basis.T).T), removed=removed, kept=kept, N=N)


def _loss(logits, a, b, labels):
    pair = a * (int(logits.shape[1])) + b
    return float(F.cross_entropy(logits[pair].double(), labels))


def test_mul_model_analysis_equals_an_explicit_computation():
    cfg, params = _params(13, seed=3)
    group = group_for("mul", 13)
    freqs = [2, 6]  # 6 = (p-1)/2: the cosine-only frequency
    want = _explicit_analysis(cfg, params, freqs)
    base = baseline.baseline(params, group)
    stats = neurons.neuron_stats(base.group_acts, blocks=base.blocks)
    assert torch.allclose(base.group_acts, want["N"])
    live = ~stats.dead  # a dead neuron has no variance (explicit: 0/0); grokviz reports FVE 0 for it
    assert live.sum() > 10 and torch.allclose(stats.fve.double()[live], want["fve"][live], atol=1e-6)
    assert torch.allclose(fourier.embed_spectrum(params, group), want["W_E"], atol=1e-10)
    assert torch.allclose(fourier.unembed_spectrum(params, group), want["W_L"], atol=1e-10)
    removed = projections.project_logits(base.logits, freqs, "remove", group.sign, group)
    kept = projections.project_logits(base.logits, freqs, "keep", group.sign, group)
    assert torch.allclose(removed, want["removed"], atol=1e-10)
    assert torch.allclose(kept, want["kept"], atol=1e-10)
    # Restricted and excluded loss: on the dataset's pairs without 0, from the explicit logits.
    dataset = dataset_for(cfg)
    keep = (dataset.a != 0) & (dataset.b != 0)
    train = torch.zeros(len(dataset.a), dtype=torch.bool)
    train[dataset.train_idx] = True
    measures = progress.progress_measures(params, dataset, freqs, group)
    a, b, y = dataset.a[keep], dataset.b[keep], dataset.labels[keep]
    assert measures["restricted_loss"] == pytest.approx(_loss(want["kept"], a, b, y), rel=1e-9)
    t = train & keep
    assert measures["excluded_loss"] == pytest.approx(
        _loss(want["removed"], dataset.a[t], dataset.b[t], dataset.labels[t]), rel=1e-9
    )
    assert measures["gini_embed"] == pytest.approx(progress.gini(want["W_E"]), abs=1e-9)
    # The whole dataset (pairs with 0 included) for the plain losses.
    assert measures["train_loss"] == pytest.approx(
        _loss(base.logits, dataset.a[train], dataset.b[train], dataset.labels[train]), rel=1e-9
    )


def test_neuron_and_embedding_ablations_equal_explicit_projections():
    cfg, params = _params(11, seed=1)
    group = group_for("mul", 11)
    n, p = 10, 11
    basis = _explicit_basis(n)
    base = baseline.baseline(params, group)
    for freqs in ([1], [3, 5]):  # 5 = n/2
        # Neurons: project each neuron's log-indexed activations on the blocks, then through W_L.
        idx = [i for k in freqs for i in ([2 * k - 1] if 2 * k == n else [2 * k - 1, 2 * k])]
        coefficients = torch.einsum("ia,jb,abc->ijc", basis, basis, base.group_acts)
        mask = torch.zeros(n, n, dtype=torch.bool)
        for k in freqs:
            block = [0, 2 * k - 1] if 2 * k == n else [0, 2 * k - 1, 2 * k]
            mask[torch.tensor(block)[:, None], torch.tensor(block)[None, :]] = True
        mask[0, 0] = False
        part = torch.einsum("ia,jb,ijc->abc", basis, basis, coefficients * mask[:, :, None])
        want = base.logits.clone()
        want[group.pair_index] -= part.reshape(n * n, -1) @ base.W_L
        got = projections.project_neurons_logits(base, freqs, "remove")
        assert torch.allclose(got, want, atol=1e-9)
        # Embedding: tokens 1..p-1 in log order projected off the rows; token 0 and '=' untouched.
        projected = projections.project_embedding(params, freqs, "remove", group)["embed.W_E"]
        rows = basis[idx]
        W_log = params["embed.W_E"][group.tokens]
        assert torch.allclose(projected[group.tokens], W_log - rows.T @ (rows @ W_log), atol=1e-12)
        assert torch.equal(projected[0], params["embed.W_E"][0]) and torch.equal(projected[p], params["embed.W_E"][p])


def test_probe_uses_the_log_terms():
    cfg, params = _params(13, seed=2)
    group = group_for("mul", 13)
    n, k = 12, 2
    acts = group.on_group(neurons.neuron_activations(params))  # [n, n, d_mlp]
    la, lb = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    w = 2 * math.pi * k / n
    ca, sa, cb, sb = (
        f(w * t.double()).reshape(-1) for f, t in ((torch.cos, la), (torch.sin, la), (torch.cos, lb), (torch.sin, lb))
    )
    design = torch.stack([torch.ones_like(ca), ca, sa, cb, sb, ca * cb, ca * sb, sa * cb, sa * sb], dim=1)
    fit = torch.linalg.lstsq(design, acts.reshape(n * n, -1).double()).solution.T  # [d_mlp, 9]
    assert torch.allclose(neurons.probe_coefficients(acts, k), fit, atol=1e-9)
    result = neurons.probe(acts, neuron=3, a=group.element(7), b=group.element(5), frequency=k)
    assert result.activation == pytest.approx(float(neurons.neuron_activations(params)[7, 5, 3]))
    # The cosine-only frequency n/2: its sine terms are zero, their coefficients too (not NaN).
    half = neurons.probe_coefficients(acts, n // 2)
    assert torch.isfinite(half).all() and torch.all(half[:, [2, 4, 6, 7, 8]] == 0)


def test_summary_reports_basis_and_generator():
    cfg, params = _params(13, seed=0)
    out = summarise(cfg, 0, {k: v.float() for k, v in params.items()})
    assert out["basis"] == "discrete-log" and out["generator"] == 2 and out["fourier_task"] is True
    assert all(1 <= k <= 6 for k in out["key_frequencies"])
    add = summarise(dataclasses.replace(cfg, task="add"), 0, {k: v.float() for k, v in params.items()})
    assert add["basis"] == "additive" and add["generator"] is None
    poly = summarise(dataclasses.replace(cfg, task="x2_plus_y2"), 0, {k: v.float() for k, v in params.items()})
    assert poly["basis"] == "additive" and poly["fourier_task"] is False


def test_circle_of_a_planted_rotation_is_a_regular_polygon_in_log_order():
    cfg, params = _params(31, seed=0, d_model=16)
    group = group_for("mul", 31)
    k, n = 7, 30
    u, v = torch.eye(16, dtype=torch.float64)[0] * 3, torch.eye(16, dtype=torch.float64)[1] * 3
    W_E = params["embed.W_E"].clone()
    W_U = params["unembed.W_U"].clone()
    for x in range(1, 31):
        angle = 2 * math.pi * k * group.element(x) / n
        W_E[x] = math.cos(angle) * u + math.sin(angle) * v + 0.01 * W_E[x]
        W_U[:, x] = math.cos(angle) * u + math.sin(angle) * v
    params["embed.W_E"], params["unembed.W_U"] = W_E, W_U
    for side in ("embedding", "unembedding"):
        drawn = circle(params, k, side, group)
        assert sorted(drawn.tokens.tolist()) == list(range(1, 31))  # token 0 left out
        radius = drawn.xy.norm(dim=1)
        assert torch.allclose(radius, radius.mean().expand_as(radius), rtol=0.05)
        assert drawn.plane_share > 0.95
        # Joined in the order of k * log x mod n: the angles increase (up to the plane's rotation and reflection).
        measured = torch.atan2(drawn.xy[:, 1], drawn.xy[:, 0])
        step = torch.remainder(measured.diff(), 2 * math.pi)
        step = torch.minimum(step, 2 * math.pi - step)
        assert torch.all(step < 2 * math.pi * math.gcd(k, n) / n + 0.05)
    # Additive basis: tokens 0..p-1 all drawn.
    assert sorted(circle(params, 3).tokens.tolist()) == list(range(31))

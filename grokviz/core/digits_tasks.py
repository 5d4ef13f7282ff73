"""The digits task family: decimal addition of operands with up to 10 digits (gpt-acc-jax's 777-parameter adder).

Token ids are those of yhavinga/gpt-acc-jax: ``'0'``-``'9'`` = 0-9, ``'+'`` = 10, ``'='`` = 11,
PAD = 12, EOS = 13. One example is 34 tokens::

    prompt (22): a as 10 digits, most significant first, '+', b likewise, '='
    answer (12): a + b as 11 digits, LEAST significant first, then EOS

The model reads the prompt and the first 11 answer tokens (33 input tokens) and is scored at the
12 positions that predict an answer token: position ``PROMPT_LEN - 1 + k`` predicts answer token
``k``. Least significant digit first means the carry into a digit has already been written when
that digit is predicted.

Everything here works on whole batches as tensors (no per-example Python): a batch of 512 costs
well under a millisecond, where gpt-acc-jax's per-example loop cost most of a 65 ms step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from grokviz.errors import GrokvizError

N_DIGITS = 10  # operand digits
N_SUM = N_DIGITS + 1  # digits of the sum
PLUS, EQUALS, PAD, EOS = 10, 11, 12, 13
D_VOCAB = 14
TOKEN_TEXT = [*"0123456789", "+", "=", "<PAD>", "<EOS>"]
PROMPT_LEN = 2 * N_DIGITS + 2  # 22
ANSWER_LEN = N_SUM + 1  # 12: eleven digits and EOS
SEQ_LEN = PROMPT_LEN + ANSWER_LEN - 1  # 33 input tokens (the last answer token is never an input)
N_CTX = 35  # the recipe's context (its learned positional table has 35 rows)
MAX_OPERAND = 10**N_DIGITS - 1
ANSWER_POSITIONS = list(range(PROMPT_LEN - 1, PROMPT_LEN - 1 + ANSWER_LEN))  # 21..32
# Seed and size of the verification set (the number the README quotes).
VERIFY_SEED, VERIFY_SIZE = 2025, 10_000
_POW10 = torch.tensor([10**i for i in range(N_SUM)], dtype=torch.int64)  # [digit]


def answer_labels() -> list[str]:
    """Names of the 12 answer positions: the sum's digits by place value, then EOS."""
    return [f"10^{k}" for k in range(N_SUM)] + ["EOS"]


def digits_of(values: torch.Tensor, n: int) -> torch.Tensor:
    """[batch] non-negative int64 -> [batch, n] decimal digits, least significant first."""
    return (values.unsqueeze(-1) // _POW10[:n]) % 10


def value_of(digits: torch.Tensor) -> torch.Tensor:
    """[batch, n] digits, least significant first -> [batch] int64."""
    return (digits.long() * _POW10[: digits.shape[-1]]).sum(-1)


def encode(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Operands [batch] int64 in [0, 10^10) -> full sequences [batch, 34]: prompt then answer."""
    a, b = torch.as_tensor(a, dtype=torch.int64), torch.as_tensor(b, dtype=torch.int64)
    batch = a.shape[0]
    a_msb = digits_of(a, N_DIGITS).flip(-1)  # [batch, 10], most significant first
    b_msb = digits_of(b, N_DIGITS).flip(-1)
    answer = digits_of(a + b, N_SUM)  # [batch, 11], least significant first
    plus = torch.full((batch, 1), PLUS, dtype=torch.int64)
    equals = torch.full((batch, 1), EQUALS, dtype=torch.int64)
    eos = torch.full((batch, 1), EOS, dtype=torch.int64)
    return torch.cat([a_msb, plus, b_msb, equals, answer, eos], dim=1)


def split_sequence(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Full sequences [batch, 34] -> (model input [batch, 33], answer labels [batch, 12])."""
    return tokens[:, :SEQ_LEN], tokens[:, PROMPT_LEN:]


def decode_answer(answer: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Answer tokens [batch, 12] -> (sum [batch] int64, well_formed [batch] bool).

    Well formed: 11 digit tokens then EOS. A malformed answer's value counts only its digit tokens
    (the others read as 0) and is never an exact match.
    """
    digits = answer[:, :N_SUM]
    is_digit = digits <= 9
    well_formed = is_digit.all(-1) & (answer[:, N_SUM] == EOS)
    return value_of(torch.where(is_digit, digits, 0)), well_formed


def parse_operand(text: str, name: str = "a") -> int:
    """A typed operand: an integer in [0, 9,999,999,999] (spaces, '_' and ',' between digits allowed)."""
    cleaned = str(text).strip().replace("_", "").replace(",", "").replace(" ", "")
    if not cleaned.isdigit() or not cleaned.isascii():
        raise GrokvizError(
            f"{name}={text!r} is not a whole number; type digits 0-9 only, from 0 to {MAX_OPERAND:,} (10 digits)"
        )
    if len(cleaned.lstrip("0")) > N_DIGITS:
        raise GrokvizError(f"{name}={text!r} has more than {N_DIGITS} digits; the adder takes 0 to {MAX_OPERAND:,}")
    return int(cleaned)


def sample_operands(
    batch: int, max_digits: int, generator: torch.Generator, min_digits: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """The recipe's sampler: per example a digit count n uniform in [min_digits, max_digits], then
    both operands uniform below 10^n. Drawn digit by digit (uniform digits below place n are a
    uniform number below 10^n), which stays exact in int64 at any n <= 18."""
    n = torch.randint(min_digits, max_digits + 1, (batch, 1), generator=generator)  # [batch, 1]
    places = torch.arange(max_digits).unsqueeze(0)  # [1, digit]
    keep = places < n  # [batch, digit]
    digits = torch.randint(0, 10, (2, batch, max_digits), generator=generator) * keep  # [operand, batch, digit]
    a, b = value_of(digits[0]), value_of(digits[1])
    return a, b


def carries(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[batch] operands -> [batch, 11] carry INTO each digit of the sum (0 or 1), least significant first."""
    da, db = digits_of(a, N_DIGITS), digits_of(b, N_DIGITS)  # [batch, 10]
    carry_in = torch.zeros(a.shape[0], N_SUM, dtype=torch.int64)
    carry = torch.zeros(a.shape[0], dtype=torch.int64)
    for k in range(N_DIGITS):  # 10 columns, each a batch operation
        carry = (da[:, k] + db[:, k] + carry) // 10
        carry_in[:, k + 1] = carry
    return carry_in


def longest_carry_chain(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[batch] -> [batch] the longest run of consecutive columns that carry out (0 = no carry)."""
    carry_out = carries(a, b)[:, 1:]  # [batch, 10]: column k carries into k + 1
    run = torch.zeros(a.shape[0], dtype=torch.int64)
    best = torch.zeros_like(run)
    for k in range(N_DIGITS):
        run = (run + 1) * carry_out[:, k]
        best = torch.maximum(best, run)
    return best


@dataclass(frozen=True)
class PairSet:
    """A fixed set of (a, b) pairs and its encoded sequences."""

    name: str
    a: torch.Tensor  # [n] int64
    b: torch.Tensor  # [n] int64

    @property
    def tokens(self) -> torch.Tensor:
        return encode(self.a, self.b)  # [n, 34]

    def __len__(self) -> int:
        return int(self.a.shape[0])


def edge_cases() -> tuple[torch.Tensor, torch.Tensor]:
    """0+0, max+max, max+1 and 1+max, and a carry chain through every digit count: (10^k - 1) + 1,
    (10^k - 1) + (10^k - 1) and 5...5 + 4...45 for k = 1..10."""
    pairs = [(0, 0), (MAX_OPERAND, MAX_OPERAND), (MAX_OPERAND, 1), (1, MAX_OPERAND)]
    for k in range(1, N_DIGITS + 1):
        nines = 10**k - 1
        pairs += [(nines, 1), (nines, nines), (int("5" * k), int("4" * (k - 1) + "5"))]
    a, b = zip(*pairs)
    return torch.tensor(a, dtype=torch.int64), torch.tensor(b, dtype=torch.int64)


def verification_set() -> PairSet:
    """10,000 pairs drawn with numpy's ``default_rng(2025)`` (operands uniform in [0, 10^10)), then
    the edge cases: the set every reported exact match is measured on."""
    rng = np.random.default_rng(VERIFY_SEED)
    drawn = torch.from_numpy(rng.integers(0, MAX_OPERAND + 1, size=(2, VERIFY_SIZE), dtype=np.int64))
    ea, eb = edge_cases()
    return PairSet("verification", torch.cat([drawn[0], ea]), torch.cat([drawn[1], eb]))


def validation_set(size: int, seed: int) -> PairSet:
    """The trainer's validation set: ``size`` pairs of 10-digit-range operands (uniform in
    [0, 10^10)), from a seed derived from the run's data seed, disjoint in use from the verification set."""
    generator = torch.Generator().manual_seed(seed)
    a, b = sample_operands(size, N_DIGITS, generator, min_digits=N_DIGITS)
    return PairSet("validation", a, b)

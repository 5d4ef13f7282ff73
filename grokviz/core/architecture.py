"""Which 1-layer transformer a modular run is: the options beside the paper's reference model.

The reference (*Progress measures for grokking*) has no LayerNorm, biases in the MLP only, a
learned positional embedding, causal attention, an untied unembedding and ReLU. The PyTorch
model blog posts train (``nn.TransformerEncoderLayer``) is post-LayerNorm with every bias, no positional
embedding and bidirectional attention. An :class:`Architecture` names one point of that space;
``Config.architecture`` builds it from a run's config. Dropout is a training setting, not part of
the function a checkpoint computes, so it lives only in the config.

The parameters a checkpoint stores follow from it (``grokviz.core.params.param_shapes``), in
TransformerLens' names where TransformerLens has the component: ``blocks.0.ln1.w``/``.b``,
``blocks.0.attn.b_Q``, ``unembed.b_U``, ``ln_final.w``. A post-LayerNorm block, which
TransformerLens cannot express, uses ``ln1`` after attention and ``ln2`` after the MLP.
"""

from __future__ import annotations

from dataclasses import dataclass

LAYERNORMS = ("none", "pre", "post")
# "mlp": the reference (b_in, b_out only); "all": attention (b_Q, b_K, b_V, b_O), MLP and
# unembedding (b_U) biases, as PyTorch's layers have; "none": no bias anywhere.
BIASES = ("mlp", "all", "none")
POS_EMBEDS = ("learned", "none")
ATTENTIONS = ("causal", "bidirectional")
UNEMBEDS = ("untied", "tied")
ACTIVATIONS = ("relu", "gelu")
# PyTorch's nn.LayerNorm and TransformerLens' LayerNorm both default to this.
LN_EPS = 1e-5


@dataclass(frozen=True)
class Architecture:
    """The function a modular checkpoint computes, apart from its weights."""

    layernorm: str = "none"
    biases: str = "mlp"
    pos_embed: str = "learned"
    attention: str = "causal"
    unembed: str = "untied"
    activation: str = "relu"

    @property
    def is_reference(self) -> bool:
        """The paper's architecture: the one the table-driven fast path computes."""
        return self == REFERENCE

    @property
    def linear_readout(self) -> bool:
        """Whether the logits are linear in the MLP's activations (no LayerNorm after the MLP).

        Then a neuron's effect on the logits is its row of ``W_out @ W_U`` exactly, and an
        ablation of activations can be read through that map instead of a second forward.
        """
        return self.layernorm == "none"

    def describe(self) -> str:
        """A few words for a headline: 'reference' or what differs from it."""
        if self.is_reference:
            return "reference architecture"
        words = []
        if self.layernorm != "none":
            words.append(f"{self.layernorm}-LayerNorm")
        if self.biases != "mlp":
            words.append(f"biases: {self.biases}")
        if self.pos_embed == "none":
            words.append("no positional embedding")
        if self.attention != "causal":
            words.append(f"{self.attention} attention")
        if self.unembed != "untied":
            words.append(f"{self.unembed} unembedding")
        if self.activation != "relu":
            words.append(self.activation.upper())
        return ", ".join(words)


REFERENCE = Architecture()

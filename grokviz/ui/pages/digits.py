"""The Adder page: watch the 10-digit adder (a digits run) learn column-and-carry addition.

A page of its own (the explorer's tabs are about modular arithmetic): the run picker
(``grokviz.ui.run_picker``, offering digits runs only) and the step slider in the sidebar; tabs
for the training curves and the per-digit heatmap, accuracy by carry chain, any a + b answered
digit by digit with its attention, ablations of the head or an FFN neuron (at this step and over
the run), and a linear probe for the carry. A run of another family (typed as a folder, or named
in the URL) is refused in words, with a link to its family's page. Its data shaping is
``grokviz.ui.views.digits``, its charts ``grokviz.ui.charts.digits``.
"""

from __future__ import annotations

import streamlit as st
import torch

from grokviz.analysis import digits
from grokviz.core import digits_model, digits_tasks
from grokviz.core.digits_config import DigitsConfig
from grokviz.core.params import n_params
from grokviz.errors import GrokvizError
from grokviz.ui import catalog, loaders, run_picker
from grokviz.ui.charts import digits as charts
from grokviz.ui.views import digits as digits_views
from grokviz.ui.widgets import show_error

TABS = ["Training", "Carry chains", "Try a + b", "Ablation", "Carry probe"]
OVER_RUN_PAIRS = 2000  # verification pairs per checkpoint for the over-the-run views


ADDER = run_picker.Picker(
    family=DigitsConfig.family,
    what="the Adder page",
    title="grokviz: adder",
    caption="A 777-parameter transformer learns 10-digit addition (the recipe of yhavinga/gpt-acc-jax).",
    key_prefix="adder_",
    run_label="Adder run",
    empty_header="No adder runs",
    folder_help="Adder runs are read from {root} and from this folder.",
    empty_text=(
        "No 10-digit adder runs in {root}. Train one with `{train} --out checkpoints/NAME "
        "--save-dtype float16` (about 20 minutes on a 2-core CPU), or open a clone of grokviz, which bundles "
        "checkpoints/adder-777."
    ),
)


def pick_run():
    """(run, steps, step) from the sidebar, or None after a message on the page."""
    return run_picker.pick_run_and_step(ADDER, "adder_step")


def render() -> None:
    picked = pick_run()
    if picked is None:
        return
    run, steps, step = picked
    run_path, cfg = str(run.path), run.config
    mtime = catalog.checkpoint_mtime(run, step)
    try:
        params = loaders.load_params(run_path, step, mtime)
        scores = loaders.digits_scores(run_path, step, mtime)
    except GrokvizError as exc:
        show_error(exc)
        return
    st.header(f"{run.name}: 10-digit addition with {n_params(digits_model.param_shapes(cfg))} parameters")
    cols = st.columns(4)
    cols[0].metric("Exact match (verification set)", f"{scores.exact_match:.2%}")
    cols[1].metric("Loss per answer token", f"{scores.loss:.4f}")
    cols[2].metric("Step", f"{step:,}", help=f"of {cfg.steps:,} steps; checkpoints are dense early and around jumps")
    cols[3].metric("Curriculum at this step", f"1-{cfg.max_digits_at(min(step, cfg.steps - 1))} digits")
    st.caption(
        f"Verification set: {len(loaders.verification_pairs()):,} pairs (10,000 drawn with seed "
        f"{digits_tasks.VERIFY_SEED}, plus edge cases). Exact match = all 11 digits and EOS right."
    )
    tabs = st.tabs(TABS, key="adder_tab", bind="query-params")
    drawers = [_training, _chains, _try, _ablation, _probe]
    for tab, draw in zip(tabs, drawers):
        with tab:
            if tab.open:
                try:
                    draw(run, steps, step, params, scores)
                except GrokvizError as exc:
                    show_error(exc)


def _training(run, steps, step, params, scores) -> None:
    log = loaders.load_log(str(run.path), *catalog.log_signature(run))[0]
    if log.empty:
        st.info("No training log yet.")
        return
    left, right = st.columns(2)
    exact = digits_views.curve_frame(log, {"val_exact": "validation", "train_exact": "training batch"})
    left.altair_chart(charts.curves(exact, step, "Exact match", "exact match"), width="stretch")
    loss = digits_views.curve_frame(log, {"val_loss": "validation", "train_loss": "training batch"})
    right.altair_chart(charts.curves(loss, step, "Loss per answer token", "loss", log_y=True), width="stretch")
    st.altair_chart(charts.digit_heatmap(digits_views.digit_heatmap_frame(log), step), width="stretch")
    st.caption(
        "The training batches follow the curriculum (1-3 digits, then 1-6, then 1-10); the validation set is "
        "10-digit pairs throughout, so its digits beyond the curriculum stay near chance until the stage opens."
    )
    with st.expander("When each digit was learned"):
        st.dataframe(digits_views.first_learned(log), hide_index=True)


def _chains(run, steps, step, params, scores) -> None:
    rows = digits.by_carry_chain(loaders.verification_pairs(), scores.correct)
    st.altair_chart(charts.chain_bars(digits_views.chain_frame(rows)), width="stretch")
    st.dataframe(digits_views.chain_frame(rows), hide_index=True)


def _try(run, steps, step, params, scores) -> None:
    left, right = st.columns(2)
    a_text = left.text_input("a", value="1234567890", key="adder_a", bind="query-params")
    b_text = right.text_input("b", value="9876543210", key="adder_b", bind="query-params")
    try:
        a = digits_tasks.parse_operand(a_text, "a")
        b = digits_tasks.parse_operand(b_text, "b")
    except GrokvizError as exc:
        show_error(exc)
        return
    result = digits.answer(params, a, b)
    verdict = "right" if result.correct else f"wrong (the sum is {a + b:,})"
    st.subheader(f"{a:,} + {b:,} = {result.value:,}: {verdict}")
    st.dataframe(
        digits_views.answer_table(result),
        hide_index=True,
        height=35 * 13 + 3,  # all 12 positions, no scrolling
        column_config={"probability": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.3f")},
    )
    read = digits_tasks.encode(torch.tensor([a]), torch.tensor([b]))[0].tolist()
    written = read[: digits_tasks.PROMPT_LEN] + result.tokens[:-1]
    labels = digits_views.key_labels(written)
    for layer in range(result.pattern.shape[0]):
        for head in range(result.pattern.shape[1]):
            frame = digits_views.attention_frame(result.pattern[layer, head])
            st.altair_chart(
                charts.attention_heatmap(frame, labels, f"Attention of head {layer}.{head}"), width="stretch"
            )


def _ablation(run, steps, step, params, scores) -> None:
    n_heads = params["blocks.0.attn.W_Q"].shape[0]
    d_mlp = params["blocks.0.mlp.W_in"].shape[1]
    n_layers = digits_model.n_layers_of(params)
    cols = st.columns(4)
    kind = cols[0].radio(
        "Ablate",
        ["head", "neuron"],
        format_func={"head": "attention head", "neuron": "FFN neuron"}.get,
        key="adder_abl_kind",
        horizontal=True,
    )
    layer = int(cols[1].number_input("Layer", 0, n_layers - 1, 0, key="adder_abl_layer")) if n_layers > 1 else 0
    size = n_heads if kind == "head" else d_mlp
    index = int(cols[2].number_input("Head" if kind == "head" else "Neuron", 0, size - 1, 0, key="adder_abl_index"))
    mode = cols[3].radio("Replace by", ["zero", "mean"], key="adder_abl_mode", horizontal=True)
    ablation = digits.Ablation(kind, layer, index, mode)
    mtime = catalog.checkpoint_mtime(run, step)
    after = loaders.digits_scores(str(run.path), step, mtime, ablation)
    st.metric(
        f"Exact match after: {ablation.describe()}",
        f"{after.exact_match:.2%}",
        delta=f"{(after.exact_match - scores.exact_match) * 100:+.2f} points",
    )
    st.altair_chart(
        charts.before_after(digits_views.scores_frame(scores, after), f"{ablation.describe()} at step {step:,}"),
        width="stretch",
    )
    signature = tuple((s, catalog.checkpoint_mtime(run, s)) for s in steps)

    def compute(report):
        history = {}
        for i, (s, m) in enumerate(signature):
            history[s] = (
                loaders.digits_scores(str(run.path), s, m, None, OVER_RUN_PAIRS),
                loaders.digits_scores(str(run.path), s, m, ablation, OVER_RUN_PAIRS),
            )
            report(i + 1, len(signature))
        return history

    history = loaders.remembered(
        "adder_ablation", (str(run.path), signature, ablation), compute, "ablating every checkpoint"
    )
    frame = digits_views.ablation_history_frame(history)
    st.altair_chart(
        charts.curves(
            frame,
            step,
            f"Exact match over the run, {ablation.describe()} (first {OVER_RUN_PAIRS:,} pairs)",
            "exact match",
        ),
        width="stretch",
    )


def _probe(run, steps, step, params, scores) -> None:
    site = st.radio(
        "Residual stream at",
        digits.PROBE_SITES,
        index=1,
        key="adder_probe_site",
        horizontal=True,
        help="resid_pre: embeddings only; resid_mid: after attention; resid_post: after the FFN.",
    )
    mtime = catalog.checkpoint_mtime(run, step)
    probe = loaders.digits_probe(str(run.path), step, mtime, site)
    st.altair_chart(
        charts.probe_bars(
            digits_views.probe_frame(probe), f"Linear probe for 'carry into this digit' at step {step:,}"
        ),
        width="stretch",
    )
    st.caption(
        "At the position that predicts digit k, a least-squares linear read-out of the residual stream "
        "(fit on 2,000 verification pairs, scored on the other 2,000) for whether a carry comes into digit k."
    )
    signature = tuple((s, catalog.checkpoint_mtime(run, s)) for s in steps)

    def compute(report):
        history = {}
        for i, (s, m) in enumerate(signature):
            history[s] = loaders.digits_probe(str(run.path), s, m, site)
            report(i + 1, len(signature))
        return history

    history = loaders.remembered("adder_probe", (str(run.path), signature, site), compute, "probing every checkpoint")
    st.altair_chart(charts.probe_heatmap(digits_views.probe_history_frame(history), step), width="stretch")


if __name__ == "__main__":  # run by st.navigation as the Adder page (grokviz.ui.navigation)
    render()

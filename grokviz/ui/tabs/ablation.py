"""The Ablation tab: remove (or keep only) chosen Fourier frequencies at the logits, the embedding
or the neurons, and watch accuracy and loss change, at this step and over the whole run."""

from __future__ import annotations

import streamlit as st

from grokviz.analysis import ablation, fourier
from grokviz.errors import GrokvizError
from grokviz.ui import charts, loaders
from grokviz.ui.state import View
from grokviz.ui.views import frequencies, grids, metrics
from grokviz.ui.widgets import layer_choice, show_error

SITE_HELP = {
    "logits": "project the all-pairs logits off / onto cos(w(a+b)) and sin(w(a+b))",
    "embedding": "project W_E's token rows off / onto the frequencies' cos and sin, then run the model",
    "neurons": "project each neuron's activations over (a, b) off / onto the frequencies' 3x3 blocks, then run the "
    "rest of the model on them (with more than one layer: the chosen layer's neurons at the '=' position)",
}
MODE_LABELS = {"remove": "remove", "keep": "keep only"}  # also the URL's values


def render(view: View) -> None:
    """Frequencies, mode and site are in the URL; the default frequencies are the key frequencies."""
    if view.too_big:
        st.info(view.too_big)
        return
    n_freq = fourier.n_frequencies(view.p)
    all_freqs = list(range(1, n_freq + 1))
    stored_freqs = st.session_state.get("freqs")
    if stored_freqs is not None and list(stored_freqs) != frequencies.ints_in_range(stored_freqs, 1, n_freq):
        st.session_state["freqs"] = frequencies.ints_in_range(stored_freqs, 1, n_freq)
    controls = st.columns([3, 1.2, 1.2])
    chosen = controls[0].multiselect(
        "Frequencies",
        all_freqs,
        default=view.key_freqs,
        key="freqs",
        bind="query-params",
        help="Default: the key frequencies of the last checkpoint (the numbers of their clustered neurons are below).",
    )
    mode = controls[1].radio("Mode", list(MODE_LABELS), format_func=MODE_LABELS.get, key="mode", bind="query-params")
    site = controls[2].radio(
        "Site",
        list(SITE_HELP),
        key="site",
        bind="query-params",
        help="; ".join(f"{k}: {v}" for k, v in SITE_HELP.items()),
    )
    # The neurons site projects one block's neurons: the layer choice (shared with the Neurons tab).
    layer = layer_choice(view.n_layers) if site == "neurons" else view.n_layers - 1
    st.caption(
        f"Key frequencies of the last checkpoint (step {view.steps[-1]:,}), with their clustered neurons: "
        + (", ".join(frequencies.frequency_label(k, view.key_counts) for k in view.key_counts) or "none yet")
        + "."
    )
    if not chosen:
        st.info("Choose at least one frequency to ablate.")
    else:

        def compute_ablation(at_step: int, cached: bool = True):
            at_mtime = view.mtime(at_step)
            at_params = loaders.load_params(view.run_path, at_step, at_mtime)
            # The cached baseline of the shown step (the neurons site's holds the activations); over
            # the run (not cached) ablate builds the one its site needs.
            if site == "neurons":
                base = loaders.ablation_baseline(view.run_path, at_step, at_mtime, layer) if cached else None
            else:
                base = loaders.logits_base(view.run_path, at_step, at_mtime)
            return ablation.ablate(
                at_params,
                view.dataset,
                chosen,
                mode,
                site,
                view.group,
                view.arch,
                base=base,
                layer=layer if site == "neurons" else None,  # a layer chooses whose neurons; other sites have none
            )

        try:
            result = compute_ablation(view.step)
        except (GrokvizError, ValueError) as exc:
            show_error(exc)
            result = None
        if result is not None:
            where = f"layer {layer}'s neurons" if site == "neurons" and view.n_layers > 1 else f"the {site}"
            what = f"{MODE_LABELS[mode]} frequencies {{{', '.join(map(str, chosen))}}} at {where}"
            st.caption(f"Step {view.step:,}: {what} ({SITE_HELP[site]}).")
            if view.group.discrete_log:
                st.caption(
                    "Discrete-log basis: a and b stand for log a and log b, every site works on the pairs without 0, "
                    "and the metrics are taken on the train and test pairs without 0 (pairs with 0 show as not in the task)."
                )
            cols = st.columns(4)
            for column, split in zip(cols, ("train", "test")):
                b_, a_ = result.before[split], result.after[split]
                column.metric(
                    f"{split.capitalize()} accuracy after",
                    f"{a_.accuracy:.1%}",
                    f"{a_.accuracy - b_.accuracy:+.1%} (was {b_.accuracy:.1%})",
                )
            for column, split in zip(cols[2:], ("train", "test")):
                b_, a_ = result.before[split], result.after[split]
                column.metric(
                    f"{split.capitalize()} loss after", f"{a_.loss:.3g}", f"was {b_.loss:.3g}", delta_color="off"
                )
            left, right = st.columns([1, 1.3])
            with left:
                st.altair_chart(
                    charts.correctness_grid(
                        grids.grid_status(
                            result.correct_after,
                            view.dataset.is_train_grid(),
                            grids.valid_grid(view.dataset, view.group),
                        ),
                        title="Which (a, b) are still answered correctly",
                        subtitle=f"after the ablation; before it {result.before['all'].accuracy:.1%} of all pairs were",
                    ),
                    width="content",
                )
            with right:
                st.dataframe(
                    metrics.metrics_display(metrics.metrics_table(result.before, result.after)), width="stretch"
                )
                st.markdown("**The same ablation at every checkpoint**")
                memo_key = (view.run_path, view.signature, tuple(chosen), mode, site, layer)
                stored = loaders.memo_store().get(("ablation-timeline", memo_key))
                slot = st.empty()
                if stored is None and slot.button(
                    "Apply to every checkpoint",
                    icon=":material/timeline:",
                    help="Runs the ablation on all saved checkpoints (a few seconds per 10).",
                ):
                    slot.empty()  # the charts take the button's place
                    try:
                        stored = loaders.remembered(
                            "ablation-timeline",
                            memo_key,
                            lambda report: metrics.ablation_over_run(
                                view.steps, lambda s: compute_ablation(s, cached=False), report
                            ),
                            "Ablating every checkpoint",
                        )
                    except GrokvizError as exc:
                        show_error(exc)
                if stored is not None:
                    for metric in ("accuracy", "loss"):
                        spec = loaders.static_chart(
                            ("ablation", metric, memo_key, view.phase_key),
                            lambda: charts.ablation_timeline(stored, metric, phases=view.phase_bands),
                        )
                        st.vega_lite_chart(charts.add_step_rule(spec, view.step), width="stretch")
                    st.caption(f"Solid: before; dashed: after ({what}).")

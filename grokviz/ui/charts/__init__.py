"""Altair chart builders for the app: data in, chart out (no files, no analysis, no Streamlit).

``base`` holds what every chart shares (colours, titles, phase bands, the step rule); ``training``
draws the explorer's charts over a whole run, ``inputs`` its charts of one checkpoint, ``circle``
the Circles tab's: import those from here. ``compare`` and ``digits`` draw the Compare and Adder
pages and are imported as modules.
"""

from grokviz.ui.charts.base import (  # noqa: F401
    CURRENT_COLOR,
    FIT_WIDTH,
    FIXED,
    HEATMAP_SCHEME,
    KEY_COLOR,
    LOG_LABELS,
    MEASURE_COLORS,
    OTHER_COLOR,
    PHASE_COLORS,
    SERIES_PALETTE,
    SPLIT_COLORS,
    add_step_rule,
    decades,
    phase_layer,
    static_spec,
    step_rule,
    title_params,
    with_context,
)
from grokviz.ui.charts.circle import circle_chart  # noqa: F401
from grokviz.ui.charts.inputs import (  # noqa: F401
    GRID_STATUS,
    OUTCOME_COLORS,
    attention_chart,
    contributions_chart,
    correctness_grid,
    heatmap,
    logits_chart,
    neuron_spectrum,
    neuron_strip,
    sweep_grid,
    waves_chart,
)
from grokviz.ui.charts.training import (  # noqa: F401
    ablation_timeline,
    curves,
    spectrum_chart,
    spectrum_heatmap,
    with_spectrum,
)

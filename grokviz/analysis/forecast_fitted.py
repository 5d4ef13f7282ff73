"""The forecaster's fitted constants: data, not code. ``scripts/eval_forecast.py`` prints this dict
after fitting on the grid of docs/forecast.md; paste its output here to refit.
``grokviz.analysis.forecast.fitted_constants`` reads it."""

# Printed by scripts/eval_forecast.py on the grid of docs/forecast.md (fitted on its 40 fitting runs).
FITTED: dict = {
    "rho": 0.48922465985224717,
    "min_rate": 1e-06,
    "models": {
        "train": {
            "names": ["progress", "gini_unembed"],
            "mean": [0.600153767589798, 0.32992455380692814],
            "scale": [0.3846638320045706, 0.09295096032494185],
            "coef": [0.21465923842169596, -0.32202719253020223],
            "intercept": 0.3213348985327509,
            "q_low": -0.2630181072710466,
            "q_high": 0.3474235378903363,
            "bands": [[0.4, -0.4700890250367048, 0.3644256545219514]],
        },
        "all": {
            "names": ["progress", "gini_unembed"],
            "mean": [0.600153767589798, 0.32992455380692814],
            "scale": [0.3846638320045706, 0.09295096032494185],
            "coef": [0.21465923842169596, -0.32202719253020223],
            "intercept": 0.3213348985327509,
            "q_low": -0.2630181072710466,
            "q_high": 0.3474235378903363,
            "bands": [[0.4, -0.4700890250367048, 0.3644256545219514]],
        },
    },
}

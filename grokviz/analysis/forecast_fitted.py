"""The forecaster's fitted constants: data, not code. ``scripts/eval_forecast.py`` prints this dict
after fitting on the grid of docs/forecast.md; paste its output here to refit.
``grokviz.analysis.forecast.fitted_constants`` reads it."""

# Printed by scripts/eval_forecast.py on the grid of docs/forecast.md (fitted on its 40 fitting runs:
# 392 forecasts at every 5% from 15% to 85% of their grok steps).
FITTED: dict = {
    "rho": 0.48922465985224717,
    "min_rate": 1e-06,
    "models": {
        "train": {
            "names": ["progress", "gini_unembed_clock", "train_loss_change"],
            "mean": [0.6909948067998841, 0.3707091000110755, -5.343964132766686],
            "scale": [0.41410910648321725, 0.44076265001128406, 4.063849316342111],
            "coef": [0.007193346920798569, 0.3538586591601581, -0.08814307229445312],
            "intercept": 0.3537018484567691,
            "q_low": -0.21639159497818006,
            "q_high": 0.317791897993513,
            "bands": [[0.4, -0.3585821740509703, 0.16565817791209392]],
        },
        "all": {
            "names": ["progress", "gini_unembed_clock", "test_loss_clock", "gini_unembed_rise"],
            "mean": [0.6909948067998841, 0.3707091000110755, 0.89625636653072, 0.1674393939577881],
            "scale": [0.41410910648321725, 0.44076265001128406, 0.5562982730886077, 0.10544820450112626],
            "coef": [-0.02429399853323629, 0.35490046333721764, 0.07754372080392351, 0.14971601233784057],
            "intercept": 0.3537018484567691,
            "q_low": -0.16817094358429865,
            "q_high": 0.3365356525530404,
            "bands": [[0.4, -0.3891126972155038, 0.2108837744877224]],
        },
    },
    "levels": {
        "gini_unembed": 0.5309400256652415,
        "gini_embed": 0.33577870752898337,
        "excluded_loss": 5.138469426655044,
        "restricted_loss_train": 0.0003347853258891197,
        "test_loss": 0.15524072177189324,
        "restricted_loss": 0.0003675218362644676,
    },
}

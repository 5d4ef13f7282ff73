"""grokviz: train, load and explain grokking in small transformers.

Layers, upstream to downstream (nothing reaches back upstream):

    core/       config, tasks, architecture (the options beside the paper's), params (the modular
                model's tensors, TransformerLens names), forward (every architecture's forward: the
                definition), fast_path (position 2 only: what training and analysis run), errors;
                digits_config, digits_tasks, digits_model: the 10-digit adder (docs/adder.md)
    training/   optimiser, CUDA graphs, file writer, single run, ensemble, digits (the adder)
    storage/    run and sweep folders (two families: modular, digits), the timeline cache,
                "run or checkpoint + step"
    analysis/   fourier, neurons, ablation (with baseline, projections), attention, progress
                measures, the analyze summary; digits, digits_summary (the adder)
    interop/    one module per foreign format (the paper's code, TransformerLens, PyTorch's
                nn.TransformerEncoder, digits_tl), and one for the files of the first two
    ui/         the Streamlit app: loaders, sidebar, one module per tab, charts, views; the
                Adder page (pages/adder.py, adder_views, charts/adder)

The commands are ``grokviz.train``, ``grokviz.train_digits``, ``grokviz.ensemble``, ``grokviz.analyze``, ``grokviz.convert``
(each ``python -m``-able), routed by ``grokviz.cli`` as the ``grokviz`` console script.
"""

__version__ = "0.3.0"

from grokviz.errors import GrokvizError  # noqa: E402


def __getattr__(name: str):
    # Config is the library's front door, but importing it loads torch: keep `grokviz --help` fast.
    if name == "Config":
        from grokviz.core.config import Config

        return Config
    raise AttributeError(f"module 'grokviz' has no attribute {name!r}")


__all__ = ["Config", "GrokvizError", "__version__"]

"""grokviz: train, load and explain grokking in small transformers.

``import grokviz as gv`` is the library's front door (docs/api.md): ``gv.open_run``,
``gv.open_sweep``, ``gv.Config`` (and ``gv.DigitsConfig``, ``gv.GroupsConfig``), ``gv.train``,
``gv.analyze``, ``gv.ablate``, ``gv.probe``, ``gv.forecast`` and ``gv.charts``, implemented in
``grokviz.api``. Each name is imported on first use, so ``import grokviz`` loads no torch.

Layers, upstream to downstream (nothing reaches back upstream; docs/development.md maps them):
``core`` (configs, tasks, models, the family table) -> ``training`` -> ``storage`` (run folders)
-> ``analysis`` -> ``ui`` (the Streamlit app); ``commands`` (the ``grokviz`` command lines, routed
by ``grokviz.cli``) and ``api`` sit on top.
"""

__version__ = "0.3.0"

from grokviz.errors import GrokvizError  # noqa: E402

# Name -> "module:attribute" (or "module" for a submodule), imported when first asked for.
_LAZY = {
    "Config": "grokviz.core.config:Config",
    "DigitsConfig": "grokviz.core.digits_config:DigitsConfig",
    "GroupsConfig": "grokviz.core.groups_config:GroupsConfig",
    "open_run": "grokviz.api.functions:open_run",
    "open_sweep": "grokviz.api.functions:open_sweep",
    "train": "grokviz.api.functions:train",
    "analyze": "grokviz.api.functions:analyze",
    "ablate": "grokviz.api.functions:ablate",
    "probe": "grokviz.api.functions:probe",
    "key_frequencies": "grokviz.api.functions:key_frequencies",
    "neuron_table": "grokviz.api.functions:neuron_table",
    "forecast": "grokviz.api.functions:forecast",
    "charts": "grokviz.api.charts",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'grokviz' has no attribute {name!r}")
    import importlib

    module, _, attribute = _LAZY[name].partition(":")
    loaded = importlib.import_module(module)
    value = getattr(loaded, attribute) if attribute else loaded
    globals()[name] = value  # once: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["GrokvizError", "__version__", *_LAZY]

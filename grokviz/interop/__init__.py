"""Other people's models in, ours out. One module per foreign format:

* ``progress_measures``: the paper's reference code (left-multiplying weights, ``random.shuffle`` split);
* ``transformer_lens``: TransformerLens ``HookedTransformer`` state dicts and the grokking demo's file;
* ``torch_encoder``: PyTorch ``nn.TransformerEncoder`` state dicts (seed 000's blog-post model);
* ``files``: reading pickles safely; ``imported``: the :class:`ImportedRun` every importer returns
  and :func:`write_run`, which turns it into a run folder.

``grokviz convert`` is the command line. The names below are the public API.
"""

from grokviz.interop.imported import ImportedRun, merge_histories, per_pair_losses, write_run
from grokviz.interop.progress_measures import (
    from_progress_measures_state_dict,
    import_progress_measures,
    load_progress_measures_checkpoint,
    reference_split,
)
from grokviz.interop.torch_encoder import import_torch_encoder
from grokviz.interop.transformer_lens import (
    TL_ZERO_BIASES,
    from_transformer_lens,
    import_transformer_lens,
    to_transformer_lens,
)

__all__ = [
    "TL_ZERO_BIASES",
    "ImportedRun",
    "from_progress_measures_state_dict",
    "from_transformer_lens",
    "import_progress_measures",
    "import_torch_encoder",
    "import_transformer_lens",
    "load_progress_measures_checkpoint",
    "merge_histories",
    "per_pair_losses",
    "reference_split",
    "to_transformer_lens",
    "write_run",
]

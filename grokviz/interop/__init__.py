"""Other people's models in, ours out. One module per foreign format (and one for its files):

* ``progress_measures``: the paper's reference code (left-multiplying weights, ``random.shuffle`` split),
  its files read by ``progress_measures_file``;
* ``transformer_lens``: TransformerLens ``HookedTransformer`` state dicts (1 to 4 blocks), exported and converted;
  ``transformer_lens_file``: their files and the grokking demo's, read;
* ``torch_encoder``: PyTorch ``nn.TransformerEncoder`` state dicts (the model blog posts train; 1 to 4 layers);
* ``files``: reading pickles safely; ``imported``: the :class:`ImportedRun` every importer returns
  and :func:`write_run`, which turns it into a run folder.

``grokviz convert`` is the command line. The names below are the public API.
"""

from grokviz.interop.imported import ImportedRun, merge_histories, per_pair_losses, write_run
from grokviz.interop.progress_measures import from_progress_measures_state_dict, reference_split
from grokviz.interop.progress_measures_file import import_progress_measures, load_progress_measures_checkpoint
from grokviz.interop.torch_encoder import import_torch_encoder
from grokviz.interop.transformer_lens import TL_ZERO_BIASES, from_transformer_lens, to_transformer_lens
from grokviz.interop.transformer_lens_file import import_transformer_lens

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

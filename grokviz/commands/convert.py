"""Bring your own model: ``grokviz convert {progress-measures,transformer-lens,torch-encoder,export-tl} ...``.

* ``progress-measures FILE --out DIR``: a checkpoint of the paper's reference code (single model
  or full run) -> a grokviz run folder.
* ``transformer-lens FILE [--config JSON] [--task add] --out DIR``: a TransformerLens
  ``HookedTransformer`` (a ``.safetensors`` state dict with a JSON config, or the grokking demo's
  ``torch.save``'d dict, ``model.cfg`` included) -> a grokviz run folder.
* ``torch-encoder FILE --p P [--task add] --out DIR``: a PyTorch ``nn.TransformerEncoder`` model's
  state dict (as blog posts train it: post-LayerNorm, biases, no positional embedding; 1 to 4 encoder layers)
  -> a grokviz run folder.
* ``to-tracker RUN --tracker tensorboard|wandb|mlflow``: a run folder's log and progress measures
  sent to an experiment tracker after the fact (``grokviz.training.trackers.export_run``).
* ``export-tl RUN_OR_CHECKPOINT [--step N] --out FILE.safetensors``: one of our checkpoints ->
  ``FILE.safetensors`` (a state dict ``HookedTransformer.load_state_dict`` accepts) and ``FILE.json``
  (the ``HookedTransformerConfig`` arguments).

The conversions live in ``grokviz.interop``; this module only parses arguments and prints. What
an importer had to guess is printed and kept in the run's ``run.json`` (``source``). Errors a user
can cause print ``error: ...`` and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grokviz.commands.flags import Parser, fail, integer, number
from grokviz.commands.flags import step as step_number
from grokviz.core.architecture import ACTIVATIONS
from grokviz.core.tasks import TASKS
from grokviz.errors import GrokvizError


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="grokviz convert",
        description="Import models from the paper's reference code, TransformerLens or PyTorch's nn.TransformerEncoder "
        "into grokviz run folders, "
        "and export grokviz checkpoints for TransformerLens.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    pm = commands.add_parser(
        "progress-measures",
        help="import a checkpoint of the paper's reference code",
        description="Import a .pth file of the reference code of 'Progress measures for grokking': either "
        "{'model': state_dict, 'config'?, 'train_losses'?, 'test_losses'?, 'optimizer'?, 'scheduler'?, ...} or "
        "{'state_dicts': [...], 'epochs': [...], 'train_losses'?, 'test_losses'?}. Read with "
        "torch.load(weights_only=True).",
    )
    pm.add_argument("file", type=Path, help="the .pth file")
    pm.add_argument("--out", type=Path, required=True, help="run folder to create (e.g. checkpoints/NAME)")

    tl = commands.add_parser(
        "transformer-lens",
        help="import a TransformerLens HookedTransformer",
        description="Import a TransformerLens HookedTransformer: a .safetensors state dict (config from --config, "
        "or FILE.json beside it, or the tensor shapes), or a torch.save'd dict as the grokking demo saves it with "
        "'model', 'config' (model.cfg, read as its fields without importing TransformerLens, or a dict) and "
        "optionally 'checkpoints', 'checkpoint_epochs', 'train_losses', 'test_losses', 'train_indices'. Read with "
        "torch.load(weights_only=True).",
    )
    tl.add_argument("file", type=Path, help=".safetensors, .pt or .pth file")
    tl.add_argument("--config", type=Path, default=None, help="JSON file of HookedTransformerConfig arguments")
    tl.add_argument("--task", default="add", choices=sorted(TASKS), help="operation the model was trained on")
    tl.add_argument("--out", type=Path, required=True, help="run folder to create (e.g. checkpoints/NAME)")

    te = commands.add_parser(
        "torch-encoder",
        help="import a PyTorch nn.TransformerEncoder model (as blog posts train it)",
        description="Import torch.save(model.state_dict()) of nn.Embedding(p + 1, d), an nn.TransformerEncoder of 1 to "
        "4 nn.TransformerEncoderLayer(d, nhead, dim_feedforward, batch_first=True) and nn.Linear(d, p + 1) on the last "
        "position. Sizes come from the shapes; what a state dict does not record (heads, norm order, activation, "
        "dropout) from the options below, PyTorch's defaults otherwise. Read with torch.load(weights_only=True).",
    )
    te.add_argument("file", type=Path, help="the .pt/.pth state dict")
    te.add_argument("--p", type=integer, required=True, help="the modulus (embedding.weight has p + 1 rows)")
    te.add_argument("--task", default="add", choices=sorted(TASKS), help="operation the model was trained on")
    te.add_argument("--n-heads", type=integer, default=4, help="nhead of the encoder layer (not in a state dict)")
    te.add_argument(
        "--norm-first",
        action="store_true",
        help="the layer was built with norm_first=True (pre-LN; needs the encoder's final norm)",
    )
    te.add_argument("--activation", default="relu", choices=ACTIVATIONS, help="the encoder layer's activation")
    te.add_argument(
        "--dropout",
        type=number,
        default=None,
        help="the dropout it was trained with (recorded only; default: PyTorch's 0.1 for one layer, 0 for more, "
        "which grokviz trains without dropout)",
    )
    te.add_argument(
        "--frac-train", type=number, default=0.5, help="grokviz's own split for train/test metrics (not in the file)"
    )
    te.add_argument("--seed", type=integer, default=0, help="seed of that split")
    te.add_argument("--step", type=step_number, default=0, help="the training step to record for the weights")
    te.add_argument("--out", type=Path, required=True, help="run folder to create (e.g. checkpoints/NAME)")

    ex = commands.add_parser(
        "export-tl",
        help="export one checkpoint for TransformerLens",
        description="Write FILE (.safetensors state dict for HookedTransformer.load_state_dict) and FILE with the "
        "suffix .json (HookedTransformerConfig arguments).",
    )
    ex.add_argument("source", type=Path, help="a run folder or one step_*.safetensors checkpoint")
    ex.add_argument("--step", type=step_number, default=None, help="step to export from a run folder (None: the last)")
    ex.add_argument("--out", type=Path, required=True, help="output .safetensors file")

    tt = commands.add_parser(
        "to-tracker",
        help="send an existing run folder to TensorBoard, Weights & Biases or MLflow",
        description="Send every log row of a run folder (with the learning rate) and, at each checkpoint, the sum of "
        "squared weights and the progress measures (restricted and excluded loss for the key frequencies of the last "
        "checkpoint, Gini of the spectra) to a tracker, as --tracker on the trainers would have: TensorBoard event files "
        "in RUN/tensorboard, a W&B run (offline unless WANDB_MODE says otherwise; files in RUN/wandb), an MLflow run "
        "(MLFLOW_TRACKING_URI, else a file store in RUN/mlruns).",
    )
    tt.add_argument("run", type=Path, help="the run folder")
    tt.add_argument("--tracker", required=True, choices=("tensorboard", "wandb", "mlflow"), help="where to send it")
    tt.add_argument(
        "--no-timeline",
        action="store_true",
        help="send only the measures of each checkpoint that need no key frequencies (no restricted/excluded loss)",
    )
    tt.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _print_import(kind: str, imported, out: Path) -> None:
    steps = [step for step, _ in imported.checkpoints]
    shown = steps if len(steps) <= 6 else steps[:3] + ["..."] + steps[-2:]
    print(
        f"{out}: imported from {kind}: {len(steps)} checkpoint(s) at steps {shown}, {len(imported.log_rows)} log rows"
    )
    cfg = imported.config
    print(
        f"config: task={cfg.task} p={cfg.p} frac_train={cfg.frac_train} seed={cfg.seed} data_seed={cfg.data_seed} "
        f"n_layers={cfg.n_layers} d_model={cfg.d_model} n_heads={cfg.n_heads} d_head={cfg.d_head} d_mlp={cfg.d_mlp} "
        f"lr={cfg.lr:g} weight_decay={cfg.weight_decay:g}"
    )
    print(f"architecture: {cfg.architecture.describe()}")
    for note in imported.notes:
        print(f"  - {note}")


def export_tl(source: Path, step: int | None, out: Path) -> tuple[Path, Path, int]:
    """Write the TransformerLens state dict and config of one checkpoint; returns (tensors, config, step)."""
    from safetensors.torch import save_file

    from grokviz.core.families import family_of
    from grokviz.storage.files import atomic_write
    from grokviz.storage.target import open_checkpoint

    if out.suffix != ".safetensors":
        raise GrokvizError(f"{out}: the output must end in .safetensors (the config is written beside it as .json)")
    if out.is_dir():
        raise GrokvizError(f"{out}: is a folder; --out names the .safetensors file to write")
    checkpoint = open_checkpoint(source, step)
    cfg, step, params = checkpoint.config, checkpoint.step, checkpoint.params
    to_transformer_lens = family_of(cfg).exporter("transformer-lens", str(source))
    try:
        tl_config, state_dict = to_transformer_lens(params, cfg)
    except GrokvizError as exc:  # an architecture TransformerLens cannot express: name the run
        raise GrokvizError(f"{source}: {exc}") from None
    config_path = out.with_suffix(".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "format": "grokviz.transformer-lens/1",
        "step": str(step),
        "grokviz_config": cfg.to_json(),
        "grokviz_family": cfg.family,
        "hooked_transformer_config": json.dumps(tl_config),
    }
    tensors = {k: v.contiguous() for k, v in state_dict.items()}
    atomic_write(out, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    atomic_write(config_path, lambda tmp: Path(tmp).write_text(json.dumps(tl_config, indent=2) + "\n"))
    return out, config_path, step


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from grokviz import interop
        from grokviz.storage.runs import require_new_folder

        if args.command in ("progress-measures", "transformer-lens", "torch-encoder"):
            require_new_folder(args.out)  # before the file is read: nothing is overwritten
            for name in ("file", "config"):
                given = getattr(args, name, None)
                if given is not None and not given.is_file():
                    raise GrokvizError(f"{given}: no such file")
        if args.command == "progress-measures":
            imported = interop.import_progress_measures(args.file)
            interop.write_run(imported, args.out)
            _print_import("the reference code", imported, args.out)
        elif args.command == "transformer-lens":
            imported = interop.import_transformer_lens(args.file, args.config, task=args.task)
            interop.write_run(imported, args.out)
            _print_import("TransformerLens", imported, args.out)
        elif args.command == "torch-encoder":
            from grokviz.interop.torch_encoder import import_torch_encoder

            imported = import_torch_encoder(
                args.file,
                args.p,
                task=args.task,
                n_heads=args.n_heads,
                norm_first=args.norm_first,
                activation=args.activation,
                dropout=args.dropout,
                frac_train=args.frac_train,
                seed=args.seed,
                step=args.step,
            )
            interop.write_run(imported, args.out)
            _print_import("a PyTorch nn.TransformerEncoder", imported, args.out)
        elif args.command == "to-tracker":
            from grokviz.storage.runs import open_run
            from grokviz.training.trackers import export_run, require

            require(args.tracker)  # before the run is read
            if not args.run.is_dir():
                raise GrokvizError(f"{args.run}: no such run folder")
            run = open_run(args.run)
            sent = export_run(run, args.tracker, progress=not args.no_progress, timeline=not args.no_timeline)
            print(f"{run.path}: {sent} steps sent to {args.tracker}")
        else:
            tensors, config, step = export_tl(args.source, args.step, args.out)
            print(f"step {step} written for TransformerLens: {tensors} (state dict) and {config} (config)")
            print(
                "load it with:\n"
                "  import json; from safetensors.torch import load_file\n"
                "  from transformer_lens import HookedTransformer, HookedTransformerConfig\n"
                f"  model = HookedTransformer(HookedTransformerConfig(**json.load(open({str(config)!r}))))\n"
                f"  model.load_state_dict(load_file({str(tensors)!r}))"
            )
    except GrokvizError as exc:
        return fail(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

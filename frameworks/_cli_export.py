"""``python -m frameworks export CHECKPOINT --format torch|orbax|safetensors``: a kit checkpoint out as a model file
of its framework (``frameworks.export``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from frameworks import export

#: How each format is loaded, printed after the export.
HINTS = {
    "torch": "torch.load(OUT/state_dict.pt) is the state_dict (weights only); OUT/model.pt the whole nn.Sequential "
             "(a pickle: torch.load(..., weights_only=False) only for a file you trust)",
    "orbax": "restore with orbax.checkpoint.StandardCheckpointer().restore(OUT, abstract nnx.state(model, nnx.Param))",
    "safetensors": "model.load_state_dict(safetensors.torch.load_file(OUT)) fills an nn.Sequential",
}
SUFFIXES = {"torch": "-torch", "orbax": "-orbax", "safetensors": ".safetensors"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``export`` command's options."""
    parser.add_argument("checkpoint", type=Path, help="a kit checkpoint (the .npz of train --checkpoint)")
    parser.add_argument("--format", required=True, choices=export.FORMATS,
                        help="torch: a folder with model.pt (the nn.Sequential) and state_dict.pt; orbax: a Flax "
                             "NNX state checkpoint folder; safetensors: one file of the state_dict's tensors")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write (default: beside the checkpoint, NAME-torch/, NAME-orbax/ or "
                             "NAME.safetensors)")
    parser.add_argument("--dtype", choices=export.DTYPES, default="float64",
                        help="the exported numbers (default float64: the round trip is exact)")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    """Read the checkpoint, write the format, say what was written and how to load it."""
    from frameworks._checkpoint import load_checkpoint

    checkpoint = load_checkpoint(args.checkpoint)
    out = args.out or args.checkpoint.with_name(args.checkpoint.stem + SUFFIXES[args.format])
    written = export.save(checkpoint, out, format=args.format, dtype=args.dtype, overwrite=args.force)
    print(f"wrote {written} ({args.format}, {args.dtype}): {checkpoint.config.arch.describe()}, "
          f"{checkpoint.implementation} after {checkpoint.epoch} epochs")
    print(HINTS[args.format].replace("OUT", str(written)))
    return 0

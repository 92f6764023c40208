"""``python -m frameworks train IMPL``: train one implementation, write its history and curves."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from frameworks._config import TrainConfig
from frameworks._data import load_dataset
from frameworks._registry import IMPLEMENTATIONS, get


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every training command shares; unset ones keep the config's (or the dataset's) defaults."""
    parser.add_argument("--dataset", default="circles", help="circles, digits, mnist, or a .mat/.npz path")
    parser.add_argument("--data-dir", type=Path, default=None, help="for --dataset mnist: the IDX folder or mnist.mat")
    group = parser.add_argument_group("training (defaults: the lab's; digits/mnist use its MNIST settings)")
    group.add_argument("--nh", type=int)
    group.add_argument("--eta", type=float)
    group.add_argument("--batch-size", type=int)
    group.add_argument("--epochs", type=int)
    group.add_argument("--seed", type=int)
    group.add_argument("--dtype", choices=("float32", "float64"))
    group.add_argument("--device", choices=("cpu", "gpu", "tpu"))
    group.add_argument("--loss-reduction", choices=("mean", "sum"))
    group.add_argument("--precision", choices=("highest", "native"))
    group.add_argument("--init", choices=("lab", "native"))
    group.add_argument("--model", choices=("lab", "double_softmax"))
    group.add_argument("--devices", type=int, help="JAX data parallelism over this many devices")
    group.add_argument("--no-fuse", dest="fuse", action="store_false", default=None,
                       help="JAX: one jitted step a call instead of a scanned epoch")


def config_from(args: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    """The config of the parsed options: ``base`` (default: the dataset's preset), then every option given."""
    if base is None:
        base = TrainConfig.mnist() if args.dataset in ("digits", "mnist") else TrainConfig()
    given = {name: getattr(args, name) for name in (
        "nh", "eta", "batch_size", "epochs", "seed", "dtype", "device", "loss_reduction", "precision", "init",
        "model", "fuse", "devices") if getattr(args, name, None) is not None}
    return base.replace(**given)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("implementation", help=f"one of {', '.join(IMPLEMENTATIONS)}")
    add_config_arguments(parser)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default runs/train/<impl>)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="save the run here (atomically) every --checkpoint-every epochs and at the end")
    parser.add_argument("--checkpoint-every", type=int, default=10)
    parser.add_argument("--resume", type=Path, default=None,
                        help="continue a checkpointed run (from any implementation) up to --epochs")


def run(args: argparse.Namespace) -> int:
    from frameworks import plots

    impl = get(args.implementation)
    dataset = load_dataset(args.dataset, path=args.data_dir)
    resume = None
    if args.resume is not None:
        from frameworks._checkpoint import load_checkpoint

        resume = load_checkpoint(args.resume)
    config = config_from(args, resume.config if resume else None)
    out = args.out or Path("runs/train") / impl.id.replace("/", "-")
    result = impl.train(dataset, config, progress=True, resume=resume, checkpoint=args.checkpoint,
                        checkpoint_every=args.checkpoint_every)
    out.mkdir(parents=True, exist_ok=True)
    (out / "history.json").write_text(json.dumps(result.to_dict(), indent=1))
    plots.curves(result.history, out / "curves.png", title=f"{impl.id} on {dataset.name}")
    h = result.history
    if result.epochs_done:
        print(f"{impl.id} on {dataset.name}: {result.epochs_done} epochs in {result.wall_time:.2f} s; "
              f"train loss {h['train_loss'][-1]:.4f} acc {h['train_acc'][-1]:.3f}, "
              f"test loss {h['test_loss'][-1]:.4f} acc {h['test_acc'][-1]:.3f}")
    if result.diverged:
        print(f"diverged at epoch {result.diverged}: stopped, kept epoch {result.diverged - 1}")
    print(f"wrote {out / 'history.json'} and {out / 'curves.png'}")
    return 1 if result.diverged else 0

"""``python -m frameworks train IMPL``: train one implementation, write its history and curves."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from frameworks import optim
from frameworks._arch import ACTIVATIONS
from frameworks._config import INITS, TrainConfig
from frameworks._data import Dataset, load_dataset
from frameworks._errors import KitError
from frameworks._registry import IMPLEMENTATIONS, get

LAB, MNIST = TrainConfig(), TrainConfig.mnist()
PROGRESS_HELP = "progress bars (default: only when stderr is a terminal)"


def _default(name: str) -> str:
    """The default of a config field for the help: the lab's, and the MNIST settings' where they differ."""
    lab, mnist = getattr(LAB, name), getattr(MNIST, name)
    return f"default {lab}" if lab == mnist else f"default {lab}; digits/mnist {mnist}"


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every training command shares; unset ones keep the config's (or the dataset's) defaults."""
    parser.add_argument("--dataset", default="circles", help="circles, digits, mnist, or a .mat/.npz path "
                        "(default circles)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="for --dataset mnist only: the IDX folder or mnist.mat (default: the cache folder, "
                             "$KIT_DATA/mnist or the platform's user cache dir)")
    parser.add_argument("--download", action="store_true",
                        help="for --dataset mnist only: fetch the four IDX archives into --data-dir (or the cache "
                             "folder) first, each checked against its published MD5; mirrors: $KIT_MNIST_MIRRORS "
                             "(comma-separated base URLs) or torchvision's (default: no download)")
    parser.add_argument("--validation", type=float, default=0.0, metavar="FRACTION",
                        help="hold out this fraction of the training rows as a validation split (stratified, "
                             "fixed); the history gains val_loss and val_acc (default 0: the lab trains on all)")
    group = parser.add_argument_group(
        "training", "defaults: the lab's, TrainConfig(); --dataset digits and mnist start from TrainConfig.mnist()")
    group.add_argument("--nh", type=int, help=f"hidden units ({_default('nh')})")
    group.add_argument("--hidden", type=_widths, metavar="W1,W2,...",
                       help="hidden widths of a deeper network, e.g. 128,64 (default: one layer of --nh units)")
    group.add_argument("--activation", type=_activations, metavar="NAME[,NAME...]",
                       help=f"hidden activation, one for all or one a layer: {', '.join(ACTIVATIONS)} "
                            "(default tanh; gelu is exact, gelu_tanh the approximation)")
    group.add_argument("--norm", choices=("none", "layer"),
                       help="layer: a LayerNorm (eps 1e-5) after each hidden Linear (default none)")
    group.add_argument("--dropout", type=float, help="dropout rate after each hidden activation (default 0)")
    group.add_argument("--dropout-rng", choices=("kit", "native"),
                       help="kit: masks drawn once in NumPy, shared by all; native: each framework's own "
                            "generator, the trap (default kit)")
    group.add_argument("--eta", type=float, help=f"the learning rate ({_default('eta')})")
    group.add_argument("--optimizer", metavar="SPEC",
                       help="sgd (the lab's), adam, adamw, rmsprop, adagrad, or with PyTorch's arguments, e.g. "
                            "\"AdamW(weight_decay=0.05)\" (default: plain SGD)")
    group.add_argument("--schedule", metavar="SPEC",
                       help="a torch.optim.lr_scheduler, e.g. \"StepLR(30, gamma=0.5)\", \"OneCycleLR(0.1, 3000)\"; "
                            "cosine: CosineAnnealingLR over the run's epochs (default: none)")
    group.add_argument("--clip", metavar="SPEC",
                       help="\"ClipGradNorm(1.0)\" or \"ClipGradValue(0.5)\" (default: none)")
    group.add_argument("--batch-size", type=int, help=f"rows per minibatch ({_default('batch_size')})")
    group.add_argument("--epochs", type=int, help=f"passes over the training set ({_default('epochs')})")
    group.add_argument("--seed", type=int, help=f"seeds the init and the batch order ({_default('seed')})")
    group.add_argument("--dtype", choices=("float32", "float64"), help=f"compute dtype ({_default('dtype')})")
    group.add_argument("--device", choices=("cpu", "gpu", "tpu"),
                       help="device kind (default: the framework's default device)")
    group.add_argument("--loss-reduction", choices=("mean", "sum"),
                       help=f"mean: the lab's batch mean; sum: the cheat-sheet's trap ({_default('loss_reduction')})")
    group.add_argument("--precision", choices=("highest", "native"),
                       help=f"float32 matmuls: full (highest) or the framework's TF32/bf16 ({_default('precision')})")
    group.add_argument("--init", choices=INITS,
                       help="initial weights drawn once in NumPy (lab: N(0, 0.3^2); torch, flax: their Linear "
                            f"defaults; xavier; he), or native: each framework's own draw ({_default('init')})")
    group.add_argument("--model", choices=("lab", "double_softmax"),
                       help=f"double_softmax: the softmax-twice trap, module stages ({_default('model')})")
    group.add_argument("--devices", type=int,
                       help=f"JAX data parallelism over this many devices ({_default('devices')})")
    group.add_argument("--torch-threads", type=_threads, metavar="N|auto",
                       help="PyTorch's intra-op threads during the run (default 1; auto: by size, 1 for small "
                            "products, PyTorch's own count for MNIST-sized ones, faster on an idle machine)")
    group.add_argument("--compile", action="store_true", default=None,
                       help="torch/nn, torch/optim: torch.compile the model (its compile time reported apart)")
    group.add_argument("--no-fuse", dest="fuse", action="store_false", default=None,
                       help="JAX: one jitted step a call instead of the fused run (default: fused)")


def _threads(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--torch-threads takes a number of threads or auto, got {text!r}") from None


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"hidden widths are integers separated by commas, e.g. 128,64; got "
                                         f"{text!r}") from None
    return widths


def _activations(text: str) -> str | tuple[str, ...]:
    names = tuple(text.split(","))
    for name in names:
        if name not in ACTIVATIONS:
            raise argparse.ArgumentTypeError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")
    return names[0] if len(names) == 1 else names


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """``--progress/--no-progress``; read it with :func:`progress_enabled`."""
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help=PROGRESS_HELP)


def progress_enabled(args: argparse.Namespace) -> bool:
    """Whether to draw progress bars: ``--progress``/``--no-progress`` if given, else only when stderr is a terminal
    (a log redirected to a file gets no carriage-return lines)."""
    return args.progress if args.progress is not None else sys.stderr.isatty()


def config_from(args: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    """The config of the parsed options: ``base`` (default: the dataset's preset), then every option given."""
    if base is None:
        base = TrainConfig.mnist() if args.dataset in ("digits", "mnist") else TrainConfig()
    given = {name: getattr(args, name) for name in (
        "nh", "hidden", "activation", "norm", "dropout", "dropout_rng", "eta", "batch_size", "epochs", "seed",
        "dtype", "device", "loss_reduction", "precision", "init", "model", "fuse", "devices", "torch_threads",
        "compile")
        if getattr(args, name, None) is not None}
    if given.get("norm") == "none":
        given["norm"] = None
    if given.get("torch_threads") == "auto":
        given["torch_threads"] = None  # chosen by the products' size
    for name, kinds in (("optimizer", optim.OPTIMIZERS), ("schedule", optim.SCHEDULES), ("clip", optim.CLIPS)):
        text = getattr(args, name, None)
        if text is None:
            continue
        if name == "schedule" and text.strip().lower() == "cosine":
            given[name] = optim.CosineAnnealingLR(given.get("epochs", base.epochs))
            continue
        named = {k.lower(): k for k in kinds}
        given[name] = optim.parse(named.get(text.strip().lower(), text), kinds)
    return base.replace(**given)


def dataset_from(args: argparse.Namespace) -> Dataset:
    """The dataset of ``--dataset`` (and ``--data-dir`` and ``--download``, which only ``--dataset mnist`` takes)."""
    if args.data_dir is not None and args.dataset != "mnist":
        raise KitError(f"--data-dir is for --dataset mnist only; --dataset {args.dataset} takes none "
                       "(a .mat or .npz file is given as --dataset PATH).")
    path = args.data_dir
    if getattr(args, "download", False):
        if args.dataset != "mnist":
            raise KitError(f"--download is for --dataset mnist only; --dataset {args.dataset} needs no download.")
        if path is not None and path.suffix == ".mat":
            raise KitError(f"--download fetches the four IDX archives into a folder; --data-dir {path} is a .mat file.")
        from frameworks._download import download_mnist

        path = download_mnist(path, progress=progress_enabled(args) if hasattr(args, "progress") else None)
    return load_dataset(args.dataset, path=path, validation=getattr(args, "validation", 0.0))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``train`` command's options."""
    parser.add_argument("implementation", help=f"one of {', '.join(IMPLEMENTATIONS)}")
    add_config_arguments(parser)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default runs/train/<impl>)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="save the run here (atomically) every --checkpoint-every epochs and at the end")
    parser.add_argument("--checkpoint-every", type=int, default=10, help="epochs between checkpoints (default 10)")
    parser.add_argument("--resume", type=Path, default=None,
                        help="continue a checkpointed run (from any implementation) up to --epochs")
    add_progress_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Train, write ``history.json`` and ``curves.png``; exit status 1 when the run diverged."""
    from frameworks import plots

    impl = get(args.implementation)
    dataset = dataset_from(args)
    resume = None
    if args.resume is not None:
        from frameworks._checkpoint import load_checkpoint

        resume = load_checkpoint(args.resume)
    # how a run was computed (torch.compile) is not what it computed: a resume compiles only when asked again
    config = config_from(args, resume.config.replace(compile=False) if resume else None)
    out = args.out or Path("runs/train") / impl.id.replace("/", "-")
    out.mkdir(parents=True, exist_ok=True)  # before training: an unwritable folder must not cost the run
    result = impl.train(dataset, config, progress=progress_enabled(args), resume=resume, checkpoint=args.checkpoint,
                        checkpoint_every=args.checkpoint_every)
    (out / "history.json").write_text(json.dumps(result.to_dict(), indent=1))
    plots.curves(result.history, out / "curves.png", title=f"{impl.id} on {dataset.name}")
    h = result.history
    if result.epochs_done:
        compiled = f" ({result.compile_time:.2f} s compiling)" if result.compile_time else ""
        print(f"{impl.id} on {dataset.name}: {result.epochs_done} epochs in {result.wall_time:.2f} s{compiled}; "
              f"train loss {h['train_loss'][-1]:.4f} acc {h['train_acc'][-1]:.3f}, "
              f"test loss {h['test_loss'][-1]:.4f} acc {h['test_acc'][-1]:.3f}")
    if result.diverged:
        print(f"diverged at epoch {result.diverged}: stopped, kept epoch {result.diverged - 1}")
    print(f"wrote {out / 'history.json'} and {out / 'curves.png'}")
    return 1 if result.diverged else 0

"""``nas train``: train one network by the CIFAR-10 proxy and print its result."""

from __future__ import annotations

import argparse
import json

from nas.commands.options import seed

HELP = "train a network briefly on CIFAR-10 (the search's proxy) and print its accuracy"

SETTINGS = (  # flag, type, help; each default is ProxySettings's
    ("epochs", int, "training epochs"),
    ("train-images", int, "training images, a stratified subset of CIFAR-10's training split"),
    ("val-images", int, "validation images, held out of the same split"),
    ("batch-size", int, "batch size"),
    ("width-mult", float, "multiplier of the stem and stage widths"),
    ("lr", float, "peak learning rate"),
    ("threads", int, "torch threads (0: one per core)"),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="network config YAML")
    p.add_argument("--data", metavar="DIR",
                   help="CIFAR-10 folder (python batches or ImageFolder); default $NAS_DATA, "
                        "else a copy downloaded into the cache on first use")
    p.add_argument("--download", action="store_true",
                   help="download CIFAR-10 into the --data folder if it is not there")
    add_proxy_arguments(p)
    p.add_argument("--seed", type=seed, default=0, help="seed of weights and batches (default 0)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")


def add_proxy_arguments(p: argparse.ArgumentParser, leave_out: tuple[str, ...] = ()) -> None:
    """The proxy-training settings as options (``nas train``, ``nas search``)."""
    from nas.evaluate.settings import ProxySettings  # no torch: --help stays fast

    defaults = ProxySettings()
    for flag, kind, text in SETTINGS:
        if flag not in leave_out:
            default = getattr(defaults, flag.replace("-", "_"))
            p.add_argument(f"--{flag}", type=kind, help=f"{text} (default {default})")


def proxy_settings(args: argparse.Namespace):
    """ProxySettings with the options given on the command line."""
    import dataclasses

    from nas.evaluate.settings import ProxySettings

    changes = {flag.replace("-", "_"): getattr(args, flag.replace("-", "_"), None)
               for flag, _, _ in SETTINGS}
    return dataclasses.replace(ProxySettings(),
                               **{k: v for k, v in changes.items() if v is not None})


def run(args: argparse.Namespace) -> int:
    from nas.evaluate import data
    from nas.evaluate.proxy import NUM_CLASSES, evaluate, proxy_network
    from nas.generators import load_network
    from nas.network import check_fits

    network = load_network(args.config)
    settings = proxy_settings(args)
    check_fits(proxy_network(network, settings.width_mult), NUM_CLASSES, 32, settings.batch_size)
    cifar = data.load(args.data, download=args.download)
    data.stratified_split(cifar.train_labels, settings.train_images, settings.val_images,
                          settings.split_seed)  # DataError now for a split the data cannot give
    result = evaluate(network, cifar, settings, args.seed)
    if args.json:
        print(json.dumps({**result.to_dict(), "settings": settings.to_dict(), "seed": args.seed}))
    elif result.status == "ok":
        print(f"{args.config}: top-1 {result.top1:.2f}%  loss {result.loss:.4f}  "
              f"({result.seconds:.1f} s, {result.images_per_second:.0f} images/s, "
              f"proxy {result.flops / 1e6:.1f}MF {result.params / 1e6:.2f}M params)")
    else:
        print(f"{args.config}: failed: {result.reason}")
    return 0 if result.status == "ok" else 1

"""The `uniperceiver-hf` command.

    uniperceiver-hf convert --checkpoint PATH --output DIR          official checkpoint -> transformers folder
    uniperceiver-hf export hub --model DIR --output DIR [...]       push-ready Hub folder with its card

Each subcommand is one module of `tools/` with `add_parser(subparsers)`, which registers its parser and sets
`run`, the function that executes it: a new subcommand (or a new `export` format) is one module and one line here.
"""

import argparse

from . import convert, hub


COMMANDS = (convert,)  # uniperceiver-hf <command>
EXPORT_FORMATS = (hub,)  # uniperceiver-hf export <format>


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uniperceiver-hf", description="Uni-Perceiver for Hugging Face transformers."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(commands)
    export = commands.add_parser("export", help="write a model in another form (hub: a push-ready folder)")
    formats = export.add_subparsers(dest="format", required=True, metavar="FORMAT")
    for module in EXPORT_FORMATS:
        module.add_parser(formats)
    return parser


def main(argv: list[str] | None = None):
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    main()

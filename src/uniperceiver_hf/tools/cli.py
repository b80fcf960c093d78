"""The `uniperceiver-hf` command.

    uniperceiver-hf convert --checkpoint PATH --output DIR          official checkpoint -> transformers folder
    uniperceiver-hf export hub --model DIR --output DIR [...]       push-ready Hub folder with its card
    uniperceiver-hf export onnx --model M --output DIR [--int8]     onnxruntime graphs of the features
    uniperceiver-hf extract --model M --dataset D --column C --output OUT [...]   sharded, resumable features
    uniperceiver-hf index --features OUT --output INDEX_DIR [...]   faiss index of extracted features
    uniperceiver-hf serve --index INDEX_DIR --model M [--port P]    HTTP search service over an index

Each subcommand is one module of `tools/` with `add_parser(subparsers)`, which registers its parser and sets
`run`, the function that executes it: a new subcommand (or a new `export` format) is one module and one line here.
"""

import argparse

from . import convert, extract, hub, index, onnx_export, serve


COMMANDS = (convert, extract, index, serve)  # uniperceiver-hf <command>
EXPORT_FORMATS = (hub, onnx_export)  # uniperceiver-hf export <format>


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uniperceiver-hf", description="Uni-Perceiver for Hugging Face transformers."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(commands)
    export = commands.add_parser(
        "export", help="write a model in another form (hub: a push-ready folder; onnx: onnxruntime graphs)"
    )
    formats = export.add_subparsers(dest="format", required=True, metavar="FORMAT")
    for module in EXPORT_FORMATS:
        module.add_parser(formats)
    return parser


def main(argv: list[str] | None = None):
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    main()

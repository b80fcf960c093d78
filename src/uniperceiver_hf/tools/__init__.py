"""The `uniperceiver-hf` command's subcommands, one module each: `convert` (official checkpoints) and `export hub`
(a push-ready folder). They build on the model code at the package root; the root never imports them."""

"""The `uniperceiver-hf` command: its subcommands run the tools' functions, and the old entry points still work."""

import json
import subprocess
import sys

from uniperceiver_hf.tools import cli
from uniperceiver_hf.tools.hub import model_code_files


def test_subcommands_are_registered():
    parser = cli.build_parser()
    args = parser.parse_args(["convert", "--checkpoint", "a.pth", "--output", "out"])
    assert (args.command, args.checkpoint, args.output) == ("convert", "a.pth", "out")
    args = parser.parse_args(["export", "hub", "--model", "m", "--output", "o", "--fp16"])
    assert (args.command, args.format, args.model, args.fp16) == ("export", "hub", "m", True)


def test_convert_then_export_hub(golden_dir, tmp_path, capsys):
    converted = tmp_path / "converted"
    cli.main(
        [
            "convert",
            "--checkpoint",
            str(golden_dir / "tiny_model_checkpoint.pth"),
            "--output",
            str(converted),
            "--num-attention-heads",
            "4",
        ]
    )
    assert "2 layers x 64" in capsys.readouterr().out
    pushed = cli.main(
        [
            "export",
            "hub",
            "--model",
            str(converted),
            "--output",
            str(tmp_path / "push"),
            "--converted",
            "tiny_model_checkpoint.pth",
        ]
    )
    assert {p.name for p in pushed.glob("*.py")} == {p.name for p in model_code_files()}
    assert "auto_map" in json.loads((pushed / "config.json").read_text())


def test_the_old_module_entry_points_still_run():
    for module, usage in (
        ("uniperceiver_hf.convert", "uniperceiver-hf convert"),
        ("uniperceiver_hf.tools.hub", "uniperceiver-hf export hub"),
    ):
        result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0 and usage in result.stdout, result.stderr[-2000:]

"""The package layout: the root holds the model code, which never imports `training/`, `tools/` or `metrics/`, and
imports its own modules only as flat siblings (`from .x import y`), the one form remote code survives."""

import ast
from pathlib import Path

from conftest import run_without_package

import uniperceiver_hf


ROOT = Path(uniperceiver_hf.__file__).parent
SUBPACKAGES = ("training", "tools", "metrics")
MODEL_CODE = sorted(path.stem for path in ROOT.glob("*_uniperceiver.py"))


def test_the_root_holds_the_model_code_and_the_subpackages():
    modules = {path.stem for path in ROOT.glob("*.py")}
    # `convert.py` keeps `python -m uniperceiver_hf.convert`, the command the model cards quote.
    assert modules - set(MODEL_CODE) == {"__init__", "convert"}
    assert {path.name for path in ROOT.iterdir() if (path / "__init__.py").is_file()} == set(SUBPACKAGES)


def test_model_code_imports_only_flat_siblings():
    for name in MODEL_CODE:
        for node in ast.walk(ast.parse((ROOT / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1 and node.module in MODEL_CODE, (name, node.module, node.level)
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
                names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module]
                assert not any(module.split(".")[0] == "uniperceiver_hf" for module in names), (name, names)


IMPORT_MODULES = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(f"uniperceiver_hf.{name}")
"""


def test_every_root_module_imports_with_the_subpackages_blocked(tmp_path):
    subpackages = ("uniperceiver_hf.training", "uniperceiver_hf.tools", "uniperceiver_hf.metrics")
    run_without_package(IMPORT_MODULES, *MODEL_CODE, tmp_path=tmp_path, blocked=subpackages, timeout=300)

"""transformers' own common test suites (`ModelTesterMixin`, `ConfigTester`, `ProcessorTesterMixin`), taken from
the source distribution of the installed transformers version and run unmodified against our testers.

The wheel ships no tests, so `pip download --no-binary :all:` fetches the sdist once into
`~/.cache/uniperceiver-hf/` (`UNIPERCEIVER_HF_CACHE` overrides it); only its `tests/*.py` are extracted, never
into the repository. The sdist lacks four helpers the common modules import, so small stand-ins are written
next to them (see `_STAND_INS`): the mixins of the export and generation suites (whose tests the sdist does not
carry), the common config kwargs, and the CI fixture-URL mapper (URLs are returned as they are).

Without network the suites are skipped with the reason, except in CI (`CI` set), where that is a failure.
"""

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import warnings
from pathlib import Path

import pytest
import transformers


CACHE_DIR = Path(os.environ.get("UNIPERCEIVER_HF_CACHE", Path.home() / ".cache" / "uniperceiver-hf"))

_STAND_INS = {
    "tests/__init__.py": "",
    "tests/exporters/__init__.py": "",
    "tests/exporters/test_export.py": (
        '"""Stand-in: the sdist ships no tests/exporters, so the export tests cannot run from it."""\n\n\n'
        "class ExportTesterMixin:\n    pass\n"
    ),
    "tests/generation/__init__.py": "",
    "tests/generation/test_utils.py": (
        '"""Stand-in: the sdist ships no tests/generation (Uni-Perceiver does not use `generate`)."""\n\n\n'
        "class GenerationTesterMixin:\n    pass\n"
    ),
    "tests/utils/__init__.py": "",
    "tests/utils/test_configuration_utils.py": (
        '"""Stand-in: a non-default value for every common `PreTrainedConfig` field (the sdist lacks tests/utils)."""\n'
        "\n"
        "config_common_kwargs = {\n"
        '    "return_dict": False,\n'
        '    "output_hidden_states": True,\n'
        '    "output_attentions": True,\n'
        '    "dtype": "float16",\n'
        '    "chunk_size_feed_forward": 3,\n'
        '    "architectures": ["UniPerceiverModel"],\n'
        '    "id2label": {0: "no", 1: "maybe", 2: "yes"},\n'
        '    "label2id": {"no": 0, "maybe": 1, "yes": 2},\n'
        '    "problem_type": "single_label_classification",\n'
        "}\n"
    ),
    "utils/fetch_hub_objects_for_ci.py": (
        '"""Stand-in: transformers\' CI maps fixture URLs to pre-downloaded files; here URLs stay URLs."""\n\n\n'
        "def url_to_local_path(url, return_url_if_not_found=True):\n    return url\n"
    ),
}


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"transformers' common tests are required in CI: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def _download_and_extract(version: str, root: Path) -> None:
    """The sdist's `tests/*.py` plus the stand-ins, written to a temporary folder that is then renamed to `root`
    (so that concurrent runs never see half a folder)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent) as work:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
        command += ["--retries", "1", "--timeout", "20", "--dest", work, f"transformers=={version}"]
        result = subprocess.run(command, capture_output=True, text=True)
        archives = list(Path(work).glob("transformers-*.tar.gz"))
        if result.returncode != 0 or not archives:
            _unavailable(f"could not download the transformers {version} sdist: {result.stderr.strip()[-300:]}")
        staging = Path(work) / "root"
        with tarfile.open(archives[0]) as archive:
            for member in archive.getmembers():
                parts = Path(member.name).parts
                if member.isfile() and len(parts) == 3 and parts[1] == "tests" and parts[2].endswith(".py"):
                    target = staging / "tests" / parts[2]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.extractfile(member).read())
        if not (staging / "tests" / "test_modeling_common.py").is_file():
            _unavailable(f"the transformers {version} sdist has no tests/test_modeling_common.py")
        for relative, text in _STAND_INS.items():
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            (staging / relative).write_text(text)
        try:
            staging.rename(root)
        except OSError:
            if not root.is_dir():  # anything but "another run finished first"
                raise


def use_transformers_common_tests(*modules: str) -> Path:
    """Makes the `tests` package of the installed transformers importable (downloading it once), imports the named
    modules of it (e.g. `"test_modeling_common"`) and returns its root folder.

    The imports run here so that the marks transformers registers in its own conftest (`flash_attn_test`, ...) do
    not warn as unknown marks.
    """
    if importlib.util.find_spec("parameterized") is None:
        _unavailable(
            "transformers' common tests import `parameterized` (in the dev extras): pip install parameterized"
        )
    version = transformers.__version__
    root = CACHE_DIR / f"transformers-{version}-tests"
    if not (root / "tests" / "test_modeling_common.py").is_file():
        if root.exists():  # an interrupted older layout: start again
            shutil.rmtree(root)
        _download_and_extract(version, root)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        for module in modules:
            importlib.import_module(f"tests.{module}")
    return root

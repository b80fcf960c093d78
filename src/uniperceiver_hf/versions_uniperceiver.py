"""The transformers releases this code is tested on, and the error that names them when another release breaks loading.

CI runs the whole suite on the newest releases a fresh `pip install` resolves and a named subset on the declared
floors (`constraints/floor.txt`). transformers changes its loading plumbing between minor releases (5.25 resolves
every sub-processor through its Auto class), so a failure on an untested release is reported as such rather than as
whatever the new plumbing happened to raise.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import transformers
from packaging.version import Version


# The declared floor (pyproject.toml, constraints/floor.txt) and the newest minor release CI has passed on.
TESTED_TRANSFORMERS_FLOOR = "5.23.0"
TESTED_TRANSFORMERS_NEWEST_MINOR = "5.25"


def installed_transformers_version() -> str:
    return transformers.__version__


def tested_transformers_range() -> str:
    """The tested range as a pip specifier, e.g. `>=5.23.0,<5.26`."""
    major, minor = Version(TESTED_TRANSFORMERS_NEWEST_MINOR).release[:2]
    return f">={TESTED_TRANSFORMERS_FLOOR},<{major}.{minor + 1}"


def is_tested_transformers(version: str | None = None) -> bool:
    """Whether `version` (default: the installed transformers) lies in the tested range; pre-releases never do."""
    installed = Version(version if version is not None else installed_transformers_version())
    major, minor = Version(TESTED_TRANSFORMERS_NEWEST_MINOR).release[:2]
    return (
        not installed.is_prerelease
        and Version(TESTED_TRANSFORMERS_FLOOR) <= installed
        and installed.release[:2] <= (major, minor)
    )


@contextmanager
def explain_untested_transformers(what: str) -> Iterator[None]:
    """Re-raise a failure to load `what` as a `RuntimeError` naming the installed transformers and the tested range
    when the installed release is outside it; inside the range the original error passes unchanged."""
    try:
        yield
    except Exception as error:
        if is_tested_transformers():
            raise
        raise RuntimeError(
            f"Loading {what} failed under transformers {installed_transformers_version()}, which is outside the range "
            f"uniperceiver-hf is tested on (transformers{tested_transformers_range()}). Install a tested release, "
            f"e.g. `pip install 'transformers{tested_transformers_range()}'`. The error was: "
            f"{type(error).__name__}: {error}"
        ) from error


__all__ = [
    "TESTED_TRANSFORMERS_FLOOR",
    "TESTED_TRANSFORMERS_NEWEST_MINOR",
    "explain_untested_transformers",
    "installed_transformers_version",
    "is_tested_transformers",
    "tested_transformers_range",
]

"""The package's version: from its installed metadata (setuptools-scm takes it from the git
tag at install time), or ``0.0.0+unknown`` in a checkout that was never installed."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("neurocnnf")
except PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0.0.0+unknown"

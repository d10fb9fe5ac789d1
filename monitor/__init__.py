"""apivigil: continuous security monitoring of APIs (NIST SP 800-137)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("apivigil")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"

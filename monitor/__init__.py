"""apivigil: continuous security monitoring of APIs (NIST SP 800-137).

`__version__` is vocabulary shared with checks, alerts and dashboards (User-Agent headers):
they may import this package itself, and of its modules only the vocabulary ones (the
import-linter contracts in pyproject.toml)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("apivigil")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"

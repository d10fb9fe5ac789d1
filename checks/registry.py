"""The closed registry: which class implements each CheckKind, and which model holds its
parameters.

Adding a check means adding its module and one line in each table below. Nothing is
imported until a kind is asked for: validating a config imports only the parameter models
(light), and a scan of one check imports that check's collect/evaluate code and no other's
(sslyze, the advisory index, httpx, ... cost hundreds of milliseconds at start-up).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final, TypeVar

from checks.interface import Check, CheckParams
from monitor.model import CheckKind

AnyCheck = Check[Any, Any]

# "module:attribute", in the order the config model lists the checks
_CHECK_CLASSES: Final[Mapping[CheckKind, str]] = {
    CheckKind.CERT_EXPIRY: "checks.cert_expiry.check:CertExpiryCheck",
    CheckKind.TLS_POSTURE: "checks.tls_posture.check:TlsPostureCheck",
    CheckKind.CONFIG_DRIFT: "checks.config_drift.check:ConfigDriftCheck",
    CheckKind.PATCH_LEVEL: "checks.patch_level.check:PatchLevelCheck",
    CheckKind.API_INVENTORY: "checks.api_inventory.check:ApiInventoryCheck",
    CheckKind.AUTH_POSTURE: "checks.auth_posture.check:AuthPostureCheck",
}

_PARAMS_MODELS: Final[Mapping[CheckKind, str]] = {
    CheckKind.CERT_EXPIRY: "checks.cert_expiry.params:CertExpiryParams",
    CheckKind.TLS_POSTURE: "checks.tls_posture.params:TlsPostureParams",
    CheckKind.CONFIG_DRIFT: "checks.config_drift.params:ConfigDriftParams",
    CheckKind.PATCH_LEVEL: "checks.patch_level.params:PatchLevelParams",
    CheckKind.API_INVENTORY: "checks.api_inventory.params:ApiInventoryParams",
    CheckKind.AUTH_POSTURE: "checks.auth_posture.params:AuthPostureParams",
}

# The checks that need nothing but a URL: a bare `apivigil scan URL` runs every one of them.
URL_ONLY_CHECKS: Final[frozenset[CheckKind]] = frozenset(
    {CheckKind.CERT_EXPIRY, CheckKind.TLS_POSTURE}
)

_classes: dict[CheckKind, type[AnyCheck]] = {}
_params: dict[CheckKind, type[CheckParams]] = {}

_T = TypeVar("_T")


def _resolve(kind: CheckKind, table: Mapping[CheckKind, str], base: type[_T]) -> type[_T]:
    """The class `table` names for `kind`, imported now; raises KeyError for a kind with no
    entry and TypeError when the name is not a subclass of `base`."""
    module, _, attribute = table[kind].partition(":")
    # __import__ rather than importlib.import_module: `python -X importtime` reports only
    # imports that go through it, and start-up cost is what this laziness is about
    resolved: object = getattr(__import__(module, fromlist=(attribute,)), attribute)
    if not (isinstance(resolved, type) and issubclass(resolved, base)):
        raise TypeError(f"{table[kind]} is not a {base.__name__}")
    return resolved


def check_class(kind: CheckKind) -> type[AnyCheck]:
    """The class for `kind` (its module imported on first use); raises KeyError for a kind
    with no implementation."""
    if kind not in _classes:
        resolved: type[AnyCheck] = _resolve(kind, _CHECK_CLASSES, Check)  # type: ignore[type-abstract]
        if resolved.kind != kind or resolved.params_model is not params_model(kind):
            raise TypeError(f"{_CHECK_CLASSES[kind]} does not match the registry's {kind} entry")
        _classes[kind] = resolved
    return _classes[kind]


def params_model(kind: CheckKind) -> type[CheckParams]:
    """The parameters model of `kind`, without importing the check's collect/evaluate code;
    raises KeyError for a kind with no implementation."""
    if kind not in _params:
        _params[kind] = _resolve(kind, _PARAMS_MODELS, CheckParams)
    return _params[kind]


def create_check(kind: CheckKind) -> AnyCheck:
    return check_class(kind)()


class _LazyChecks(Mapping[CheckKind, type[AnyCheck]]):
    """Every registered kind; a kind's class is imported when it is looked up."""

    def __getitem__(self, kind: CheckKind) -> type[AnyCheck]:
        return check_class(kind)

    def __iter__(self) -> Iterator[CheckKind]:
        return iter(_CHECK_CLASSES)

    def __len__(self) -> int:
        return len(_CHECK_CLASSES)

    def __contains__(self, kind: object) -> bool:
        return kind in _CHECK_CLASSES

    def __repr__(self) -> str:
        return f"CHECKS({', '.join(kind.value for kind in _CHECK_CLASSES)})"


CHECKS: Final[Mapping[CheckKind, type[AnyCheck]]] = _LazyChecks()

"""The closed registry: which class implements each CheckKind.

Adding a check means adding its module and one line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from checks.api_inventory.check import ApiInventoryCheck
from checks.cert_expiry.check import CertExpiryCheck
from checks.config_drift.check import ConfigDriftCheck
from checks.interface import Check
from checks.patch_level.check import PatchLevelCheck
from checks.tls_posture.check import TlsPostureCheck
from monitor.model import CheckKind

AnyCheck = Check[Any, Any]

CHECKS: Mapping[CheckKind, type[AnyCheck]] = {
    CheckKind.CERT_EXPIRY: CertExpiryCheck,
    CheckKind.TLS_POSTURE: TlsPostureCheck,
    CheckKind.CONFIG_DRIFT: ConfigDriftCheck,
    CheckKind.PATCH_LEVEL: PatchLevelCheck,
    CheckKind.API_INVENTORY: ApiInventoryCheck,
}


def check_class(kind: CheckKind) -> type[AnyCheck]:
    """The class for `kind`; raises KeyError for a kind with no implementation."""
    return CHECKS[kind]


def create_check(kind: CheckKind) -> AnyCheck:
    return CHECKS[kind]()

"""The cert_expiry check: collect served chains and files, then evaluate their dates."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from checks.cert_expiry import collect, evaluate
from checks.cert_expiry.facts import CertExpiryRaw
from checks.cert_expiry.params import CertExpiryParams
from checks.interface import Check, CheckContext, CheckParams
from monitor.model import CheckKind, CheckOutput, Target


class CertExpiryCheck(Check[CertExpiryParams, CertExpiryRaw]):
    kind: ClassVar[CheckKind] = CheckKind.CERT_EXPIRY
    params_model: ClassVar[type[CheckParams]] = CertExpiryParams

    def collect(
        self, target: Target, params: CertExpiryParams, context: CheckContext
    ) -> CertExpiryRaw:
        return collect.collect(target, params, context)

    def evaluate(self, raw: CertExpiryRaw, params: CertExpiryParams, now: datetime) -> CheckOutput:
        return evaluate.evaluate(raw, params, now)

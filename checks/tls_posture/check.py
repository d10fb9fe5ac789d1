"""The tls_posture check: an sslyze scan, then rules, a Mozilla profile and a grade."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from checks.interface import Check, CheckContext, CheckParams
from checks.tls_posture import evaluate
from checks.tls_posture.facts import TlsFacts
from checks.tls_posture.params import TlsPostureParams
from monitor.model import CheckKind, CheckOutput, Target


class TlsPostureCheck(Check[TlsPostureParams, TlsFacts]):
    kind: ClassVar[CheckKind] = CheckKind.TLS_POSTURE
    params_model: ClassVar[type[CheckParams]] = TlsPostureParams

    def collect(self, target: Target, params: TlsPostureParams, context: CheckContext) -> TlsFacts:
        # sslyze takes a few hundred ms to import: only runs that scan TLS pay for it
        from checks.tls_posture import collect  # noqa: PLC0415

        return collect.collect(target, params, context)

    def evaluate(self, raw: TlsFacts, params: TlsPostureParams, now: datetime) -> CheckOutput:
        return evaluate.evaluate(raw, params, now)

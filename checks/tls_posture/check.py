"""The tls_posture check: an sslyze scan, then rules, a Mozilla profile and a grade."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from checks.interface import Check, CheckContext, CheckParams
from checks.plaintext import NoTls, no_tls, no_tls_output
from checks.tls_posture import evaluate
from checks.tls_posture.facts import TlsPostureRaw
from checks.tls_posture.params import TlsPostureParams
from monitor.model import CheckKind, CheckOutput, Target


class TlsPostureCheck(Check[TlsPostureParams, TlsPostureRaw | NoTls]):
    kind: ClassVar[CheckKind] = CheckKind.TLS_POSTURE
    params_model: ClassVar[type[CheckParams]] = TlsPostureParams

    def collect(
        self, target: Target, params: TlsPostureParams, context: CheckContext
    ) -> TlsPostureRaw | NoTls:
        plaintext = no_tls(target)
        if plaintext is not None:
            return plaintext  # no handshake to scan: the finding says so
        # sslyze takes a few hundred ms to import: only runs that scan TLS pay for it
        from checks.tls_posture import collect  # noqa: PLC0415

        return collect.collect(target, params, context)

    def evaluate(
        self, raw: TlsPostureRaw | NoTls, params: TlsPostureParams, now: datetime
    ) -> CheckOutput:
        if isinstance(raw, NoTls):
            return no_tls_output(raw)
        return evaluate.evaluate(raw, params, now)

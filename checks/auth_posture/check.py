"""The auth_posture check: probe secured operations, audit the token keys, then judge."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from checks.auth_posture import collect, evaluate
from checks.auth_posture.facts import AuthPostureRaw
from checks.auth_posture.params import AuthPostureParams
from checks.interface import Check, CheckContext, CheckParams
from monitor.model import CheckKind, CheckOutput, Target


class AuthPostureCheck(Check[AuthPostureParams, AuthPostureRaw]):
    kind: ClassVar[CheckKind] = CheckKind.AUTH_POSTURE
    params_model: ClassVar[type[CheckParams]] = AuthPostureParams

    def collect(
        self, target: Target, params: AuthPostureParams, context: CheckContext
    ) -> AuthPostureRaw:
        return collect.collect(target, params, context)

    def evaluate(
        self, raw: AuthPostureRaw, params: AuthPostureParams, now: datetime
    ) -> CheckOutput:
        return evaluate.evaluate(raw, params, now)

"""The http_posture check: budgeted safe requests, then rules and two scores."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from checks.http_posture import collect, evaluate
from checks.http_posture.facts import HttpPostureRaw
from checks.http_posture.params import HttpPostureParams
from checks.interface import Check, CheckContext, CheckParams
from monitor.model import CheckKind, CheckOutput, Target


class HttpPostureCheck(Check[HttpPostureParams, HttpPostureRaw]):
    kind: ClassVar[CheckKind] = CheckKind.HTTP_POSTURE
    params_model: ClassVar[type[CheckParams]] = HttpPostureParams

    def collect(
        self, target: Target, params: HttpPostureParams, context: CheckContext
    ) -> HttpPostureRaw:
        return collect.collect(target, params, context)

    def evaluate(
        self, raw: HttpPostureRaw, params: HttpPostureParams, now: datetime
    ) -> CheckOutput:
        return evaluate.evaluate(raw, params, now)

"""The patch_level check: inventory and advisory matching, then patch-deadline judgement."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from checks.interface import Check, CheckContext, CheckParams
from checks.patch_level import collect, evaluate
from checks.patch_level.facts import PatchRaw
from checks.patch_level.params import PatchLevelParams
from monitor.model import CheckKind, CheckOutput, Target


class PatchLevelCheck(Check[PatchLevelParams, PatchRaw]):
    kind: ClassVar[CheckKind] = CheckKind.PATCH_LEVEL
    params_model: ClassVar[type[CheckParams]] = PatchLevelParams

    def collect(self, target: Target, params: PatchLevelParams, context: CheckContext) -> PatchRaw:
        return collect.collect(target, params, context)

    def evaluate(self, raw: PatchRaw, params: PatchLevelParams, now: datetime) -> CheckOutput:
        return evaluate.evaluate(raw, params, now)

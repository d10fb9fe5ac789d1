"""The config_drift check: read the sources, then diff them against the approved baseline."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from checks.config_drift import collect, evaluate
from checks.config_drift.facts import DriftRaw
from checks.config_drift.params import ConfigDriftParams
from checks.interface import Check, CheckContext, CheckParams
from monitor.model import CheckKind, CheckOutput, Target


class ConfigDriftCheck(Check[ConfigDriftParams, DriftRaw]):
    kind: ClassVar[CheckKind] = CheckKind.CONFIG_DRIFT
    params_model: ClassVar[type[CheckParams]] = ConfigDriftParams

    def collect(self, target: Target, params: ConfigDriftParams, context: CheckContext) -> DriftRaw:
        return collect.collect(target, params, context)

    def evaluate(self, raw: DriftRaw, params: ConfigDriftParams, now: datetime) -> CheckOutput:
        return evaluate.evaluate(raw, params, now)

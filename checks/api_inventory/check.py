"""The api_inventory check: the OpenAPI inventory against the approved one, plus traffic."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from checks.api_inventory import collect, evaluate
from checks.api_inventory.facts import InventoryRaw
from checks.api_inventory.params import ApiInventoryParams
from checks.interface import Check, CheckContext, CheckParams
from monitor.model import CheckKind, CheckOutput, Target


class ApiInventoryCheck(Check[ApiInventoryParams, InventoryRaw]):
    kind: ClassVar[CheckKind] = CheckKind.API_INVENTORY
    params_model: ClassVar[type[CheckParams]] = ApiInventoryParams

    def collect(
        self, target: Target, params: ApiInventoryParams, context: CheckContext
    ) -> InventoryRaw:
        return collect.collect(target, params, context)

    def evaluate(self, raw: InventoryRaw, params: ApiInventoryParams, now: datetime) -> CheckOutput:
        return evaluate.evaluate(raw, params, now)

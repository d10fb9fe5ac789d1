"""The contract every check fulfils, and the errors a check may raise.

A check is two steps: `collect` does all I/O, bounded by the context's deadline, and
returns raw data; `evaluate` is a pure function of that data, the parameters and the
scan time. Errors are raised as the `CheckError` subclasses below and turned into typed
reasons by `monitor.runner`, nowhere else.

Names, one meaning each, in every check:
- `<Check>Raw` (`TlsPostureRaw`, `CertExpiryRaw`, `DriftRaw` ...) is the whole of what one
  check's `collect` returns: the `RawT` of `Check`, recorded as test fixtures.
- `<Thing>Facts` (`ChainFacts`, `CertificateFacts`, `SpecFacts` ...) is one observed thing
  inside a `Raw`, as plain values. Both are observations: nothing in them is judged.
- What `evaluate` judges is a `monitor.model.CheckOutput` (findings, observations, snapshot).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from monitor.durations import Duration, NonNegativeDuration
from monitor.model import Baseline, CheckKind, CheckOutput, Target
from monitor.redact import mask_secrets

if TYPE_CHECKING:  # checks.egress raises this module's errors
    from checks.egress import EgressPolicy


class CheckError(Exception):
    """A check could not judge its target. Subclasses say why. A URL's credentials, query
    and webhook path are masked in both message and subject: these become run errors and
    finding evidence, which are stored, logged and notified."""

    def __init__(self, message: str, *, subject: str | None = None) -> None:
        message = mask_secrets(message)
        super().__init__(message)
        self.message = message
        self.subject = mask_secrets(subject) if subject is not None else None

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}" if self.subject else self.message


class TargetUnreachable(CheckError):
    """The target could not be reached: DNS, connection refused, no answer in time."""


class CheckMisconfigured(CheckError):
    """The check's parameters cannot work for this target."""


class BadInput(CheckError):
    """The target (or a file it names) answered with something the check cannot read."""


SUBJECT_SEPARATOR = "|"


def baseline_subject(source: str, key: str) -> str:
    """The subject of a finding about `key` of the baseline source `source` (a config file,
    a header set, an API document): `source|key`. Checks that compare against an approved
    baseline (config_drift, api_inventory) name their findings so."""
    return f"{source}{SUBJECT_SEPARATOR}{key}"


def source_prefix(source: str) -> str:
    """The subject prefix `source|` every finding of baseline source `source` starts with.
    Approving `source` resolves the findings under it (`monitor.baselines`); a run that could
    not read `source` names it as undetermined, and the store leaves them as they are."""
    return baseline_subject(source, "")


class CheckParams(BaseModel):
    """Parameters every check accepts; each check extends this with its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval: Duration | None = Field(default=None, description="how often to run")
    timeout: Duration | None = Field(default=None, description="deadline of one run")
    jitter: NonNegativeDuration | None = Field(default=None, description="random delay per run")
    enabled: bool = True


class CheckHistory(Protocol):
    """What a check may read of earlier results (the store implements it)."""

    def approved_baseline(self, check: CheckKind, target: str) -> Baseline | None:
        """The newest approved baseline of (check, target), or None."""
        ...

    def latest_snapshot(self, check: CheckKind, target: str) -> dict[str, Any] | None:
        """The snapshot of the newest ok run of (check, target), or None."""
        ...

    def claim_action(
        self, check: CheckKind, target: str, action: str, at: datetime, every: timedelta
    ) -> datetime | None:
        """Record, durably, that `action` of (check, target) happens at `at`, unless it was
        last recorded less than `every` before `at`. None when recorded (go ahead: the record
        stands whatever happens next), else the time of the last one. Raises StoreError."""
        ...

    def hash_key(self) -> bytes:
        """The installation's key for keyed hashes of secret values."""
        ...


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What a run may know besides its target: when it started, when it must stop, where
    URLs from remote content may lead (the egress policy every outbound request of the run
    passes to `checks.http.fetch`), and (in the daemon, not in one-off scans) the history
    kept in the store."""

    started_at: datetime
    deadline: float  # time.monotonic() value after which the run is abandoned
    egress: EgressPolicy
    history: CheckHistory | None = None

    def remaining(self) -> float:
        """Seconds left before the deadline (never negative)."""
        return max(0.0, self.deadline - time.monotonic())

    def io_timeout(self, ceiling: float) -> float:
        """A per-operation timeout that never outlives the run's deadline."""
        remaining = self.remaining()
        if remaining <= 0:
            raise TargetUnreachable("the run's deadline passed before this step could start")
        return min(ceiling, remaining)


ParamsT = TypeVar("ParamsT", bound=CheckParams)
RawT = TypeVar("RawT")


class Check(ABC, Generic[ParamsT, RawT]):
    """A check: `collect` (I/O) then `evaluate` (pure). `run` joins them."""

    kind: ClassVar[CheckKind]
    params_model: ClassVar[type[CheckParams]]

    @abstractmethod
    def collect(self, target: Target, params: ParamsT, context: CheckContext) -> RawT:
        """Gather raw data. Raises CheckError subclasses for what it cannot gather."""

    @abstractmethod
    def evaluate(self, raw: RawT, params: ParamsT, now: datetime) -> CheckOutput:
        """Judge raw data; pure and total: a non-compliant target yields findings."""

    def run(self, target: Target, params: ParamsT, context: CheckContext) -> CheckOutput:
        raw = self.collect(target, params, context)
        return self.evaluate(raw, params, context.started_at)

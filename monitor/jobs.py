"""From settings to check jobs: effective interval, timeout and jitter per (check, target)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from monitor.model import CheckKind
from monitor.runner import CheckJob
from monitor.settings import Settings

_MAX_DEFAULT_JITTER = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class ScheduledCheck:
    job: CheckJob
    interval: timedelta
    jitter: timedelta

    @property
    def job_id(self) -> str:
        return f"{self.job.check}:{self.job.target.name}"


def default_jitter(interval: timedelta) -> timedelta:
    return min(interval * 0.05, _MAX_DEFAULT_JITTER)


def scheduled_checks(
    settings: Settings, only: frozenset[CheckKind] | None = None
) -> list[ScheduledCheck]:
    """Every enabled (check, target) pair with its effective schedule."""
    planned = []
    for target_config in settings.targets:
        target = target_config.to_target()
        for kind, params in target_config.enabled_checks().items():
            if only is not None and kind not in only:
                continue
            interval = params.interval or settings.defaults.interval
            jitter = params.jitter if params.jitter is not None else settings.defaults.jitter
            planned.append(
                ScheduledCheck(
                    job=CheckJob(
                        check=kind,
                        target=target,
                        params=params,
                        timeout=params.timeout or settings.defaults.timeout,
                    ),
                    interval=interval,
                    jitter=jitter if jitter is not None else default_jitter(interval),
                )
            )
    return planned

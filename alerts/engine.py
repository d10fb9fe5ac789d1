"""Alert groups in the manner of Alertmanager: finding state -> notifications. Pure.

The engine is level-triggered: each tick it reads what fires now and what each group last
told its receiver, and decides what to send. A crash between ticks loses nothing, since the
next tick recomputes from the store; the new group states and the outbox rows of a tick are
written in one transaction by the caller.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from alerts.check_failing import CHECK_FAILING_RULE
from alerts.config import AlertsConfig, MaintenanceWindowConfig, RouteConfig
from alerts.matchers import matches
from alerts.model import (
    Alert,
    AlertCandidate,
    AlertState,
    GroupState,
    Notification,
    NotificationKind,
    NotifiedAlert,
    Silence,
    SkipKind,
    Skipped,
    TickResult,
    group_id,
)
from alerts.rules import alert_labels, in_maintenance, route_matches, silenced_by
from alerts.usable import skip_reason, usable_silences, usable_windows


@dataclass(slots=True)
class _Group:
    route: RouteConfig
    route_name: str
    receiver: str
    labels: dict[str, str]
    key: str
    visible: dict[str, Alert] = field(default_factory=dict)  # firing, not muted
    muted: dict[str, Alert] = field(default_factory=dict)  # firing, silenced or in maintenance


def tick(
    config: AlertsConfig,
    candidates: Sequence[AlertCandidate],
    states: Sequence[GroupState],
    silences: Sequence[Silence],
    now: datetime,
    repeat_overrides: Mapping[str, timedelta] | None = None,
) -> TickResult:
    """Decide what to send now. `silences` holds the active ones and those that ended but
    were not handled yet; `repeat_overrides` maps receivers that must be re-sent more often
    than repeat_interval (Alertmanager) to their interval."""
    known = {state.id: state for state in states}
    usable, skipped = usable_silences(silences)
    windows = usable_windows(config.maintenance_windows, now, skipped)
    inputs = _Inputs(config, usable, windows, now)
    groups, broken_routes = _current_groups(inputs, candidates, known, skipped)
    details = {candidate.alert.fingerprint: candidate.alert for candidate in candidates}
    upserts: list[GroupState] = []
    deleted: list[str] = []
    notifications: list[Notification] = []
    expired = [s for s in usable if s.ends_at <= now]
    for gid in sorted(groups.keys() | known.keys()):
        group, state = groups.get(gid), known.get(gid)
        route = group.route_name if group is not None else known[gid].route
        if route in broken_routes:
            continue  # its groups keep their state: no false "resolved" while it is skipped
        context = _Context(config, details, now)
        try:
            outcome = _evaluate(group, state, gid, context, expired, repeat_overrides or {})
        except Exception as error:  # one broken group must not stop the others
            broken_routes.add(route)
            skipped.append(Skipped(SkipKind.ROUTE, route, skip_reason(error)))
            continue
        if outcome.notification is not None:
            notifications.append(outcome.notification)
        if outcome.state is None:
            if state is not None:
                deleted.append(gid)
        elif outcome.state != state:
            upserts.append(outcome.state)
    # an unusable silence that ended is handled too: there is nothing to announce for it
    handled = [s.id for s in silences if s.ends_at <= now]
    return TickResult(
        tuple(upserts), tuple(deleted), tuple(notifications), tuple(handled), tuple(skipped)
    )


@dataclass(frozen=True, slots=True)
class _Inputs:
    config: AlertsConfig
    silences: Sequence[Silence]  # usable ones only
    windows: Sequence[MaintenanceWindowConfig]  # usable ones only
    now: datetime


def _current_groups(
    inputs: _Inputs,
    candidates: Sequence[AlertCandidate],
    known: Mapping[str, GroupState],
    skipped: list[Skipped],
) -> tuple[dict[str, _Group], set[str]]:
    """The groups firing now, and the names of routes that failed (skipped this tick)."""
    config, now = inputs.config, inputs.now
    notified_anywhere = {fp for state in known.values() for fp in state.notified}
    groups: dict[str, _Group] = {}
    broken: set[str] = set()
    for candidate in candidates:
        alert = candidate.alert
        for index in _routes_for(config, alert, broken, skipped):
            route, name = config.routes[index], config.route_name(index)
            if name in broken or not _fires(
                candidate, route, alert.fingerprint in notified_anywhere
            ):
                continue
            try:
                labels = alert_labels(alert)
                group_labels = {label: labels.get(label, "") for label in route.group_by}
                key = json.dumps(group_labels, sort_keys=True)
                muted = silenced_by(inputs.silences, alert, now) is not None or (
                    in_maintenance(inputs.windows, alert, now) is not None
                )
            except Exception as error:  # one route's failure must not stop the others
                broken.add(name)
                skipped.append(Skipped(SkipKind.ROUTE, name, skip_reason(error)))
                continue
            for receiver in route.receivers:
                gid = group_id(name, receiver, key)
                group = groups.get(gid) or _Group(route, name, receiver, group_labels, key)
                groups[gid] = group
                (group.muted if muted else group.visible)[alert.fingerprint] = alert
    return groups, broken


def _routes_for(
    config: AlertsConfig, alert: Alert, broken: set[str], skipped: list[Skipped]
) -> list[int]:
    """Indexes of the routes `alert` takes: the first match, and more while `continue` is
    set. A route whose matching fails is marked broken and counts as matching, so the alert
    does not fall through to a route it was never meant for."""
    chosen: list[int] = []
    for index, route in enumerate(config.routes):
        name = config.route_name(index)
        try:
            matched = name in broken or route_matches(route.match, alert)
        except Exception as error:
            broken.add(name)
            skipped.append(Skipped(SkipKind.ROUTE, name, skip_reason(error)))
            matched = True
        if matched:
            chosen.append(index)
            if not route.continue_matching:
                break
    return chosen


def _fires(candidate: AlertCandidate, route: RouteConfig, notified: bool) -> bool:
    """Whether the route announces `candidate` as firing. Open and resolved are the store's
    (its one hysteresis): a resolved finding never fires, so no channel can show firing what
    /metrics shows resolved. A route may only wait longer before it first notifies."""
    if not candidate.open:
        return False
    if candidate.alert.rule_id == CHECK_FAILING_RULE:
        return True  # its delay is `check_failing_after`: a route's notify_after must not mute it
    return notified or candidate.seen_streak >= route.notify_after


@dataclass(frozen=True, slots=True)
class _Context:
    config: AlertsConfig
    details: Mapping[str, Alert]  # every candidate by fingerprint, for resolved notices
    now: datetime

    def resolved_alert(self, fingerprint: str, info: NotifiedAlert) -> Alert:
        known = self.details.get(fingerprint)
        if known is not None:
            return replace(known, state=AlertState.RESOLVED, ended_at=self.now)
        return Alert(
            fingerprint=fingerprint,
            check=info.check,
            target=info.target,
            rule_id=info.rule_id,
            severity=info.severity,
            title=info.title,
            subject=info.subject,
            evidence="",
            remediation="",
            state=AlertState.RESOLVED,
            started_at=self.now,
            ended_at=self.now,
        )


@dataclass(frozen=True, slots=True)
class _Outcome:
    state: GroupState | None
    notification: Notification | None = None


def _evaluate(
    group: _Group | None,
    state: GroupState | None,
    gid: str,
    context: _Context,
    expired: Sequence[Silence],
    repeat_overrides: Mapping[str, timedelta],
) -> _Outcome:
    now = context.now
    if group is None or not (group.visible or group.muted):
        return _all_resolved(state, context)
    if state is None:
        state = GroupState(
            gid, group.route_name, group.receiver, group.key, group.labels, now, None
        )
    notified = dict(state.notified)
    firing_all = {**group.visible, **group.muted}
    resolved = {fp: info for fp, info in notified.items() if fp not in firing_all}
    # muted alerts keep their place (no "resolved" for a silence), new ones wait for it to end
    keep = {fp: NotifiedAlert.of(a) for fp, a in group.visible.items()}
    keep.update({fp: notified[fp] for fp in group.muted if fp in notified})
    ended = _silence_expiry(group, expired)
    if ended is not None and group.visible:
        return _send(state, group, NotificationKind.SILENCE_EXPIRED, keep, resolved, context, ended)
    changed = set(keep) != set(notified) or any(
        notified[fp].severity != info.severity for fp, info in keep.items() if fp in notified
    )
    only_removals = set(keep) < set(notified) and not any(
        notified[fp].severity != info.severity for fp, info in keep.items()
    )
    if changed and only_removals and not group.route.send_resolved:
        return _Outcome(replace(state, notified=keep))
    if state.last_sent_at is None:
        due = state.firing_since + group.route.group_wait
    elif changed:
        due = state.last_sent_at + group.route.group_interval
    else:
        repeat = repeat_overrides.get(group.receiver, group.route.repeat_interval)
        due = state.last_sent_at + min(repeat, group.route.repeat_interval)
    if now < due or not group.visible:
        return _Outcome(state if state.notified or group.visible else None)
    kind = (
        NotificationKind.FIRING
        if changed or state.last_sent_at is None
        else NotificationKind.REMINDER
    )
    sent_resolved = resolved if group.route.send_resolved else {}
    return _send(state, group, kind, keep, sent_resolved, context, None)


def _all_resolved(state: GroupState | None, context: _Context) -> _Outcome:
    config, now = context.config, context.now
    if state is None or not state.notified:
        return _Outcome(None)
    route = next(
        (r for i, r in enumerate(config.routes) if config.route_name(i) == state.route), None
    )
    if route is None or not route.send_resolved:
        return _Outcome(None)
    if state.last_sent_at is not None and now < state.last_sent_at + route.group_interval:
        return _Outcome(state)  # wait: a resolved notice also respects group_interval
    notification = Notification(
        dedup_key=uuid.uuid4().hex,
        receiver=state.receiver,
        route=state.route,
        group_key=state.group_key,
        group_labels=state.labels,
        kind=NotificationKind.RESOLVED,
        created_at=now,
        resolved=tuple(
            context.resolved_alert(fp, info) for fp, info in sorted(state.notified.items())
        ),
        external_url=config.external_url,
    )
    return _Outcome(None, notification)


def _silence_expiry(group: _Group, expired: Sequence[Silence]) -> str | None:
    for silence in expired:
        if any(matches(silence.matchers, alert_labels(a)) for a in group.visible.values()):
            return (
                f"silence {silence.id} by {silence.created_by} ({silence.comment}) ended at "
                f"{silence.ends_at:%Y-%m-%d %H:%M} UTC while these alerts still fire"
            )
    return None


def _send(
    state: GroupState,
    group: _Group,
    kind: NotificationKind,
    keep: Mapping[str, NotifiedAlert],
    resolved: Mapping[str, NotifiedAlert],
    context: _Context,
    note: str | None,
) -> _Outcome:
    now = context.now
    notification = Notification(
        dedup_key=uuid.uuid4().hex,
        receiver=group.receiver,
        route=group.route_name,
        group_key=group.key,
        group_labels=group.labels,
        kind=kind,
        created_at=now,
        firing=tuple(
            sorted(
                group.visible.values(),
                key=lambda a: (-a.severity.rank, a.target, a.rule_id, a.subject),
            )
        ),
        resolved=tuple(context.resolved_alert(fp, info) for fp, info in sorted(resolved.items())),
        note=note,
        external_url=context.config.external_url,
    )
    return _Outcome(replace(state, last_sent_at=now, notified=dict(keep)), notification)

"""Which answers the header rules judge, and the stable label each is reported under."""

from __future__ import annotations

from urllib.parse import urlsplit

from checks.http_posture.facts import Answer, Exchange, HttpPostureRaw, Probe

# probes whose answers are the API's own responses (security.txt and OPTIONS are judged apart)
JUDGED = (Probe.HTTPS, Probe.PATH, Probe.DOCUMENTED, Probe.NOT_FOUND, Probe.MALFORMED)


def label(exchange: Exchange) -> str:
    """A subject that is the same from run to run (the not-found path is random)."""
    if exchange.probe is Probe.NOT_FOUND:
        return "error page: unknown path"
    if exchange.probe is Probe.MALFORMED:
        return "error page: malformed query"
    return urlsplit(exchange.url).path or "/"


def judged(raw: HttpPostureRaw) -> list[tuple[str, Exchange, Answer]]:
    """(label, exchange, final answer) of every API response to judge headers on, once per
    label. When HTTPS did not answer at all, the plain-HTTP page stands in."""
    chosen: dict[str, tuple[Exchange, Answer]] = {}
    https = raw.exchange(Probe.HTTPS)
    for exchange in raw.exchanges:
        stand_in = exchange.probe is Probe.HTTP and (https is None or https.final is None)
        if (
            exchange.final is None
            or exchange.cut_by_budget  # a redirect is not the page it leads to
            or (exchange.probe not in JUDGED and not stand_in)
        ):
            continue
        chosen.setdefault(label(exchange), (exchange, exchange.final))
    return [(name, exchange, answer) for name, (exchange, answer) in chosen.items()]

"""Grafana dashboards as code (grafana-foundation-sdk, pinned): build.py writes json/, push.py
upserts them through Grafana's HTTP API. Metric names come from monitor/metric_names.py."""

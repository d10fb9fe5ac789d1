"""Grafana dashboards as code (see DESIGN §1); filled in by the dashboards issue."""

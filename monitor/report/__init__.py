"""Evidence for auditors: one ReportData built from the store (build.py), rendered as HTML,
Markdown, JSON, OSCAL assessment-results or SARIF (render.py; `apivigil report`)."""

"""`python -m monitor` runs the apivigil command."""

from monitor.cli import app

app()

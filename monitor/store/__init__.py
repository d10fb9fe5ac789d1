"""Persistence of runs, samples, findings and snapshots (SQLite or PostgreSQL)."""

"""One module per dashboard; each exposes `dashboard() -> Dashboard` (listed in build.py)."""

"""The checks apivigil runs: each collects (I/O) then evaluates (pure)."""

"""Scale-out: a leader-elected scheduler that enqueues, and Dramatiq workers that run checks.

Nothing here is imported unless the config has a `cluster:` broker: single-node apivigil
(and `apivigil scan`) never loads Dramatiq, Redis or the election code.

  config.py       the `cluster:` section (pydantic, read by monitor.settings)
  role.py         which part an instance plays, for /readyz and logs
  slots.py        pure: each (check, target)'s fixed slot grid, slot keys, catch-up plans
  election.py     leader election on a PostgreSQL session advisory lock, self-fencing
  broker.py       the Dramatiq broker and the one actor that carries check executions
  politeness.py   a per-host concurrency limit shared by all workers (Redis)
  leader.py       what the leader does: APScheduler jobs that only enqueue, catch-up
  coordinator.py  an `apivigil run` instance in a cluster: campaign, lead or follow
  worker.py       what `apivigil worker` does with one message: run once, record once
"""

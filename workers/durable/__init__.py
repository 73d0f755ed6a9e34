"""Durable runs: recorded steps, replay, suspension and resumption (docs/agents.md).

An agent marks work that must not run twice (`ctx.run`, `ctx.run_tool`) and
waits (`ctx.ask`, long `ctx.sleep`, `ctx.wait`) without holding a worker. Each
such step is recorded in SQL (`run_steps`); whenever the run executes again (a
resumption, a redelivery after a crash, a retry from the failed step) the
agent's code starts from its first line and every recorded step returns what
it returned before, without running again.
"""

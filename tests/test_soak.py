"""The soak's short run (bench/soak.py --short): nothing lost, repeated or stuck under churn."""

from __future__ import annotations

from bench.soak import Options, run


def test_short_soak_has_no_gap_no_duplicate_and_no_stuck_job() -> None:
    # given jobs streaming while clients drop and resume, the web process killed and
    # Redis restarted along the way (a platform of the soak's own)
    result = run(Options.short(), log=lambda _: None)
    # then every client holds 1..N of every job it followed, each event once
    assert result.reconnect_cycles > 200 and result.web_restarts == 1
    assert result.redis_restarts == 1
    assert (result.gaps, result.duplicates, result.incomplete) == (0, 0, 0), result
    assert result.content_errors == 0, result
    # and SQL holds every event, and no job is stuck unfinished
    assert (result.sql_missing, result.stuck) == (0, 0), result
    assert not result.client_errors, result

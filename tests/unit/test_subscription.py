"""A job subscription's state machine, on its own: no Redis, no server, well under a second.

Each test drives `JobSubscription` the way the hub does, from a small world:
a replay log that grows as events are published, pub/sub deliveries (which
may be lost or repeated) and replays (begin, read the log, finish) whose
steps interleave with them in every order the threads could take. Whatever
the order, the client must be sent every seq after its `since` exactly once,
in order.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Iterator, Sequence

import pytest

from webapp.subscription import JobSubscription

TOPIC = "job:j"
Op = tuple[str, int]  # ("pub" | "live" | "begin" | "read" | "finish" | "close", seq or replay id)


@functools.cache
def envelope(seq: int) -> str:
    return json.dumps({"job": "j", "seq": seq, "type": "log"})


@functools.cache
def seq_of(raw: str) -> int:
    return int(json.loads(raw)["seq"])


class Sink:
    """A client's outgoing queue, as the subscription sees it."""

    def __init__(self) -> None:
        self.frames: list[str | list[str]] = []

    def put(self, frame: str) -> bool:
        self.frames.append(frame)
        return True

    def put_events(self, topic: str, raws: list[str], frame: bytes | None = None) -> bool:
        assert topic == TOPIC and raws, "an events frame holds events of its own topic"
        self.frames.append(list(raws))
        return True

    def seqs(self) -> list[int]:
        return [seq_of(raw) for f in self.frames if isinstance(f, list) for raw in f]


class World:
    """One subscription, the job's log, and the replays the subscription asked for."""

    def __init__(self, since: int, published: int) -> None:
        self.log = list(range(1, published + 1))
        self.sink = Sink()
        self.sub = JobSubscription(TOPIC, since, self.sink)
        self.since_of: dict[int, int | None] = {}
        self.read_of: dict[int, list[tuple[int, str]]] = {}
        self.wanted = 0  # replays asked for (the hub starts one per ask)

    def do(self, op: Op) -> None:
        kind, n = op
        if kind == "pub":
            self.log.append(n)
        elif kind == "live":
            self.wanted += self.sub.offer_live(n, envelope(n))
        elif kind == "begin":
            self.since_of[n] = self.sub.begin_replay()
        elif kind == "read":
            since = self.since_of[n]
            if since is not None:  # the hub stops a replay of a closed subscription here
                self.read_of[n] = [(s, envelope(s)) for s in self.log if s > since]
        elif kind == "finish":
            if n in self.read_of:
                self.wanted += self.sub.finish_replay(self.read_of.pop(n))
        elif kind == "close":
            self.sub.close()
        else:  # pragma: no cover - a typo in a test
            raise ValueError(kind)

    def run(self, ops: Sequence[Op]) -> World:
        for op in ops:
            self.do(op)
        return self

    def replay(self, rid: int) -> None:
        self.run([("begin", rid), ("read", rid), ("finish", rid)])

    def settle(self, reconnect: bool = False) -> list[int]:
        """Run the replays still asked for (and, after a lost message, the one the hub runs
        on resubscribing); the seqs the client was sent."""
        if reconnect:
            self.replay(100)
        for rid in range(200, 210):
            if not self.wanted:
                return self.sink.seqs()
            self.wanted -= 1
            self.replay(rid)
        raise AssertionError("replays kept asking for more")


def replay_steps(rid: int) -> list[Op]:
    return [("begin", rid), ("read", rid), ("finish", rid)]


def interleavings(a: Sequence[Op], b: Sequence[Op]) -> Iterator[list[Op]]:
    """Every merge of two threads' steps that keeps each thread's own order."""
    n = len(a) + len(b)
    for where in itertools.combinations(range(n), len(b)):
        ia, ib, at = iter(a), iter(b), set(where)
        yield [next(ib) if i in at else next(ia) for i in range(n)]


def stream(first: int, last: int, lost: int = 0, twice: int = 0) -> list[Op]:
    """The publishing thread: each event into the log, then onto pub/sub (unless `lost`;
    `twice` arrives twice)."""
    ops: list[Op] = []
    for seq in range(first, last + 1):
        ops.append(("pub", seq))
        if seq != lost:
            ops.append(("live", seq))
        if seq == twice:
            ops.append(("live", seq))
    return ops


# (since, published before the subscription): a new page; a page that saw 2 of 3 events.
STARTS = [(0, 0), (2, 3)]
LAST = 6


@pytest.mark.parametrize(("since", "published"), STARTS)
def test_every_interleaving_of_a_replay_with_the_live_stream_sends_each_seq_once_in_order(
    since: int, published: int
) -> None:
    # given a subscription whose first replay runs while the job publishes on
    runs = 0
    live = stream(published + 1, LAST)
    for ops in interleavings(live, replay_steps(1)):
        # when the replay's steps and the live events interleave in this order
        world = World(since, published).run(ops)
        # then the client was sent since+1..last, each once, in order, and it ends live
        assert world.settle() == list(range(since + 1, LAST + 1)), ops
        assert world.sub.live
        runs += 1
    assert runs == math.comb(len(live) + 3, 3)  # every order there is


@pytest.mark.parametrize(("since", "published"), STARTS)
def test_a_repeated_live_event_is_sent_once_whatever_the_order(since: int, published: int) -> None:
    for twice in range(published + 1, LAST + 1):
        # given pub/sub delivering one event twice
        for ops in interleavings(stream(published + 1, LAST, twice=twice), replay_steps(1)):
            # when the replay interleaves with it in this order
            world = World(since, published).run(ops)
            # then the duplicate is never sent twice
            assert world.settle() == list(range(since + 1, LAST + 1)), ops


@pytest.mark.parametrize(("since", "published"), STARTS)
def test_a_lost_live_event_is_filled_by_a_later_replay_whatever_the_order(
    since: int, published: int
) -> None:
    for lost in range(published + 1, LAST + 1):
        # given pub/sub losing one event (its connection dropped)
        for ops in interleavings(stream(published + 1, LAST, lost=lost), replay_steps(1)):
            # when the replay interleaves with the rest in this order, and the hub
            # replays every subscription once it has resubscribed
            world = World(since, published).run(ops)
            # then the client still gets every seq once, in order: the gap was filled
            assert world.settle(reconnect=True) == list(range(since + 1, LAST + 1)), ops


def test_live_events_in_any_order_around_a_replay_are_sent_once_in_order() -> None:
    # given a job whose 4 events are all in the log, a client subscribing from 0, and
    # pub/sub handing the events over in any order, before, during or after the replay
    lives: list[Op] = [("live", s) for s in range(1, 5)]
    steps = replay_steps(1)
    runs = 0
    for ops in itertools.permutations(lives + steps):
        if [op for op in ops if op in steps] != steps:
            continue  # a replay's own steps keep their order
        # when they arrive in this order
        world = World(since=0, published=4).run(ops)
        # then the client gets 1..4, each once, in order
        assert world.settle() == [1, 2, 3, 4], ops
        runs += 1
    assert runs == 840  # 7! / 3!


def test_two_replays_at_once_with_a_lost_event_send_each_seq_once() -> None:
    # given a lost event, the subscription's own replay, and a second one started by the
    # hub on resubscribing, all interleaved with the stream in every order
    live = stream(1, 3, lost=2)
    for first in interleavings(live, replay_steps(1)):
        for ops in interleavings(first, replay_steps(2)):
            world = World(since=0, published=0).run(ops)
            # then the client gets 1..3, each once, in order
            assert world.settle(reconnect=True) == [1, 2, 3], ops


def test_a_gap_holds_live_events_until_the_replay_fills_it() -> None:
    # given a live subscription that was sent 1 and 2
    world = World(since=0, published=0).run([*stream(1, 2), *replay_steps(1)])
    assert world.sub.live and world.sink.seqs() == [1, 2]
    # when 3 is lost and 4 and 5 arrive
    world.run(stream(3, 5, lost=3))
    # then it asks for a replay once, holds 4 and 5, and sends nothing out of order
    assert (world.wanted, world.sub.live, world.sink.seqs()) == (1, False, [1, 2])
    # and when the replay has read the log, 3, 4 and 5 go, in one frame, and it is live
    assert world.settle() == [1, 2, 3, 4, 5]
    assert world.sink.frames[-1] == [envelope(3), envelope(4), envelope(5)]
    assert world.sub.live
    # and the next live event goes straight out
    world.run(stream(6, 6))
    assert world.sink.seqs() == [1, 2, 3, 4, 5, 6]


def test_a_replay_that_leaves_a_gap_asks_for_another() -> None:
    # given a replay that read the log before 3 was published, and 3 lost on pub/sub
    world = World(since=0, published=2).run([("begin", 1), ("read", 1)])
    world.run(stream(3, 4, lost=3))
    # when the replay finishes
    world.run([("finish", 1)])
    # then 1 and 2 went, 4 is held past the hole, and another replay is asked for
    assert (world.sink.seqs(), world.wanted, world.sub.live) == ([1, 2], 1, False)
    assert world.settle() == [1, 2, 3, 4]


@pytest.mark.parametrize("at", range(11))
def test_unsubscribing_mid_replay_stops_everything_after_it(at: int) -> None:
    for ops in interleavings(stream(1, 4), replay_steps(1)):
        # given the stream and the replay interleaved, and the client unsubscribing at `at`
        world = World(since=0, published=0).run([*ops[:at], ("close", 0), *ops[at:]])
        # then what it was sent is 1..k, each once, in order, all of it before the close
        sent = world.settle()
        assert sent == list(range(1, len(sent) + 1)), ops
        assert len(sent) <= sum(op[0] == "pub" for op in ops[:at])
        # and the subscription says nothing more: no replay starts, nothing is sent
        assert world.sub.closed and world.sub.begin_replay() is None
        assert not world.sub.offer_live(5, envelope(5))
        assert not world.sub.finish_replay([(5, envelope(5))])
        assert world.sink.seqs() == sent


def test_the_subscribed_frame_goes_before_the_first_events() -> None:
    # given a subscription buffering a live event while its replay reads the log
    world = World(since=0, published=2)
    since = world.sub.begin_replay()
    world.run(stream(3, 3))
    # when the replay finishes with its announcement
    world.sub.finish_replay([(1, envelope(1)), (2, envelope(2))], announce="subscribed")
    # then the client reads the announcement first, then 1..3 in one frame
    assert since == 0
    assert world.sink.frames == ["subscribed", [envelope(1), envelope(2), envelope(3)]]


def test_events_the_client_already_has_are_not_sent_again() -> None:
    # given a client resuming after seq 3 of a job whose log holds 1..5
    world = World(since=3, published=5)
    # when its replay reads the whole log and pub/sub repeats 2 and 4
    world.replay(1)
    world.run([("live", 2), ("live", 4)])
    # then it is sent 4 and 5 only
    assert world.settle() == [4, 5]


class FrameSink(Sink):
    """Records the ready-made frame each events frame came with."""

    def __init__(self) -> None:
        super().__init__()
        self.ready: list[bytes | None] = []

    def put_events(self, topic: str, raws: list[str], frame: bytes | None = None) -> bool:
        self.ready.append(frame)
        return super().put_events(topic, raws, frame)


def test_a_burst_that_continues_the_stream_goes_as_the_shared_frame() -> None:
    # given a live subscription that has sent up to 2
    sink = FrameSink()
    sub = JobSubscription(TOPIC, 2, sink)
    assert not sub.finish_replay([])
    # when a burst 3..5 arrives with its frame built once for every subscriber
    wanted = sub.offer_live_many([(n, envelope(n)) for n in (3, 4, 5)], b"shared")
    # then that frame is what goes out, as one frame, and no replay is asked for
    assert not wanted
    assert sink.frames == [[envelope(3), envelope(4), envelope(5)]]
    assert sink.ready == [b"shared"]


def test_a_burst_with_repeats_and_a_gap_sends_what_continues_and_holds_the_rest() -> None:
    # given a live subscription that has sent up to 3
    sink = FrameSink()
    sub = JobSubscription(TOPIC, 3, sink)
    assert not sub.finish_replay([])
    # when a burst repeats 2..3, continues with 4, then jumps to 6
    burst = [(n, envelope(n)) for n in (2, 3, 4, 6, 7)]
    wanted = sub.offer_live_many(burst, b"shared")
    # then only 4 is sent, in a frame of its own (not the shared one), and a replay is asked for
    assert wanted
    assert sink.seqs() == [4] and sink.ready == [None]
    # and once the replay brings 5, the held 6 and 7 follow it, each once, in order
    since = sub.begin_replay()
    assert since == 4
    assert not sub.finish_replay([(5, envelope(5)), (6, envelope(6))])
    assert sink.seqs() == [4, 5, 6, 7]


RUNS = [
    [1, 2, 3],  # continues `last`: one frame
    [1, 1, 2],  # a repeat inside the run
    [2, 3],  # a gap before the run
    [1, 3, 4],  # a gap inside it
    [0, 1, 2],  # an old one first
    [1, 2, 5, 3, 4],  # a gap, then what fills it
]


@pytest.mark.parametrize("seqs", RUNS)
def test_a_run_of_live_events_does_what_offering_them_one_by_one_does(seqs: list[int]) -> None:
    # given two subscriptions live from 0, with the events in the log that pub/sub brings
    # (as `seqs`), one by one to the first and as one run to the second
    one_by_one, as_run = World(since=0, published=0), World(since=0, published=0)
    for w in (one_by_one, as_run):
        w.replay(1)
        w.run([("pub", seq) for seq in range(1, max(seqs) + 1)])
    for seq in seqs:
        one_by_one.wanted += one_by_one.sub.offer_live(seq, envelope(seq))
    as_run.wanted += as_run.sub.offer_live_many([(s, envelope(s)) for s in seqs])
    # then the client is sent the same seqs, a replay is asked for alike, and both settle
    assert as_run.sink.seqs() == one_by_one.sink.seqs()
    assert (as_run.wanted, as_run.sub.live) == (one_by_one.wanted, one_by_one.sub.live)
    assert as_run.settle() == one_by_one.settle() == list(range(1, max(seqs) + 1))

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from huying.alerts import fanout, repository, service
from huying.alerts.models import Event
from huying.clock import FrozenClock
from huying.runtime import Runtime
from tests.alerts.conftest import deliveries, emit, subscribe


def test_each_event_goes_to_every_active_matching_subscription(rt: Runtime) -> None:
    everything = subscribe(rt, "*")
    requests_only = subscribe(rt, "request.*")
    overdue = subscribe(rt, "*.overdue", "request.signed")
    gone = subscribe(rt, "*")
    with rt.transaction() as s:
        service.deactivate(session=s, subscription_id=gone.id, now=rt.now())

    dispatched = emit(rt, "request.dispatched")
    late = emit(rt, "deadline.overdue")
    signed = emit(rt, "request.signed")
    assert fanout.fan_out(rt, now=rt.now()) == 3

    with rt.transaction() as s:
        uid = {i: u for i, u in s.execute(select(Event.id, Event.uid))}
    got = {(uid[d.event_id], d.subscription_id) for d in deliveries(rt)}
    assert got == {
        (dispatched, everything.id),
        (dispatched, requests_only.id),
        (late, everything.id),
        (late, overdue.id),
        (signed, everything.id),
        (signed, requests_only.id),
        (signed, overdue.id),
    }
    assert all(d.status == "pending" and d.attempts == 0 for d in deliveries(rt))


def test_fan_out_takes_each_event_once_and_only_new_ones(rt: Runtime, clock: FrozenClock) -> None:
    sub = subscribe(rt, "request.*")
    for i in range(5):
        emit(rt, "request.dispatched", n=i)
    assert fanout.fan_out(rt, now=clock.now(), batch=2) == 2
    assert fanout.fan_out(rt, now=clock.now(), batch=2) == 2
    assert fanout.fan_out(rt, now=clock.now(), batch=2) == 1
    assert fanout.fan_out(rt, now=clock.now()) == 0  # nothing new: nothing read again
    assert len(deliveries(rt)) == 5

    # A subscription made now gets the events from now on, not the ones already fanned out.
    later = subscribe(rt, "*")
    clock.advance(timedelta(minutes=1))
    emit(rt, "request.signed")
    assert fanout.fan_out(rt, now=clock.now()) == 1
    new = [d for d in deliveries(rt) if d.created_at == clock.now()]
    assert sorted(d.subscription_id for d in new) == [sub.id, later.id]
    with rt.transaction() as s:
        assert s.scalars(select(Event).where(Event.fanned_out_at.is_(None))).all() == []


def test_a_failed_fan_out_is_redone_whole(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash inside the fan-out's transaction leaves no half batch behind."""
    subscribe(rt, "*")
    emit(rt, "request.dispatched")
    emit(rt, "request.signed")

    def crash(*args: object, **kw: object) -> None:
        raise RuntimeError("the worker died")

    with monkeypatch.context() as m:
        m.setattr(repository, "mark_fanned_out", crash)
        with pytest.raises(RuntimeError):
            fanout.fan_out(rt, now=rt.now())
    assert deliveries(rt) == []
    assert fanout.fan_out(rt, now=rt.now()) == 2
    assert len(deliveries(rt)) == 2

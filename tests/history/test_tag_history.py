"""TagState.objects.observe: every transition of one tag, without a registry.

Each test is one story of a tag across polls; `poll_at(n)` stands for the n-th poll.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.models import Registry, Repository, Tag
from catalog.tags import classify
from history.models import Build, PollRun, TagEvent, TagState
from tests.history import factories
from tests.history.factories import tag_event

pytestmark = pytest.mark.django_db

DAY_ONE = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def repository() -> Repository:
    registry = Registry.objects.create(host="registry.invalid")
    return Repository.objects.create(registry=registry, name="library/python")


def build(repository: Repository, n: int) -> Build:
    """A build whose digest is n in hex (only the row matters here)."""
    return factories.build(repository, f"sha256:{n:064x}", first_seen_at=DAY_ONE)


def tag(repository: Repository, name: str) -> Tag:
    info = classify(name)
    return Tag.objects.create(
        repository=repository, name=name, kind=info.kind.value, version=info.version, variant=info.variant
    )


def poll_at(repository: Repository, n: int) -> PollRun:
    return PollRun.objects.create(repository=repository, started_at=DAY_ONE + timedelta(hours=n))


def observe(the_tag: Tag, the_build: Build | None, poll: PollRun, *, immutable: bool = False):
    return TagState.objects.observe(the_tag, the_build, at=poll.started_at, poll=poll, immutable=immutable)


def timeline(the_tag: Tag) -> list[tuple]:
    """[(kind, build n, previous n, detected poll hour, not_before poll hour)], oldest first."""

    def n(b: Build | None) -> int | None:
        return int(b.digest.split(":")[1], 16) if b else None

    def hour(at: datetime | None) -> int | None:
        return int((at - DAY_ONE) / timedelta(hours=1)) if at else None

    return [
        (e.kind, n(e.build), n(e.previous_build), hour(e.detected_at), hour(e.not_before))
        for e in TagEvent.objects.filter(tag=the_tag).order_by("detected_at", "id")
    ]


def state_of(the_tag: Tag) -> tuple:
    state = TagState.objects.get(tag=the_tag)
    hour = int((state.confirmed_at - DAY_ONE) / timedelta(hours=1))
    since = int((state.since - DAY_ONE) / timedelta(hours=1))
    return int(state.build.digest.split(":")[1], 16), state.present, since, hour


def test_first_sight_is_created_without_not_before(repository):
    latest, one = tag(repository, "latest"), build(repository, 1)

    event = observe(latest, one, poll_at(repository, 0))

    assert event is not None and event.kind == TagEvent.Kind.CREATED
    assert timeline(latest) == [("created", 1, None, 0, None)]
    assert state_of(latest) == (1, True, 0, 0)


def test_unchanged_writes_no_row_and_moves_the_confirmation(repository):
    latest, one = tag(repository, "latest"), build(repository, 1)
    observe(latest, one, poll_at(repository, 0))

    assert observe(latest, one, poll_at(repository, 1)) is None
    assert observe(latest, one, poll_at(repository, 2)) is None

    assert timeline(latest) == [("created", 1, None, 0, None)]
    assert state_of(latest) == (1, True, 0, 2)  # since the first poll, confirmed by the last


def test_moved_says_from_where_and_since_when(repository):
    latest, one, two = tag(repository, "latest"), build(repository, 1), build(repository, 2)
    observe(latest, one, poll_at(repository, 0))
    observe(latest, one, poll_at(repository, 1))

    event = observe(latest, two, poll_at(repository, 2))

    assert event.kind == TagEvent.Kind.MOVED
    # not_before is the last poll that still saw build 1: the move happened between 1 and 2.
    assert timeline(latest) == [("created", 1, None, 0, None), ("moved", 2, 1, 2, 1)]
    assert state_of(latest) == (2, True, 2, 2)


def test_deleted_keeps_the_last_build(repository):
    main, one = tag(repository, "main"), build(repository, 1)
    observe(main, one, poll_at(repository, 0))

    event = observe(main, None, poll_at(repository, 1))

    assert event.kind == TagEvent.Kind.DELETED and event.build is None
    assert timeline(main) == [("created", 1, None, 0, None), ("deleted", None, 1, 1, 0)]
    assert state_of(main) == (1, False, 1, 1)  # the state remembers what it pointed to


def test_deleted_and_still_gone_writes_nothing(repository):
    main, one = tag(repository, "main"), build(repository, 1)
    observe(main, one, poll_at(repository, 0))
    observe(main, None, poll_at(repository, 1))

    assert observe(main, None, poll_at(repository, 2)) is None

    assert [kind for kind, *_ in timeline(main)] == ["created", "deleted"]
    assert state_of(main) == (1, False, 1, 2)  # the absence is confirmed, history unchanged


def test_never_seen_and_gone_writes_nothing(repository):
    ghost = tag(repository, "ghost")

    assert observe(ghost, None, poll_at(repository, 0)) is None

    assert timeline(ghost) == []
    assert not TagState.objects.filter(tag=ghost).exists()


def test_restored_with_the_same_build(repository):
    main, one = tag(repository, "main"), build(repository, 1)
    observe(main, one, poll_at(repository, 0))
    observe(main, None, poll_at(repository, 1))
    observe(main, None, poll_at(repository, 2))

    event = observe(main, one, poll_at(repository, 3))

    assert event.kind == TagEvent.Kind.RESTORED
    # previous_build is the build it pointed to before deletion; not_before the last poll
    # that confirmed the deletion.
    assert timeline(main)[-1] == ("restored", 1, 1, 3, 2)
    assert state_of(main) == (1, True, 3, 3)


def test_restored_with_a_different_build_is_restored_not_moved(repository):
    """Documented choice: coming back is `restored` whatever it points to; previous_build
    (the build before deletion) shows whether it came back changed."""
    main, one, two = tag(repository, "main"), build(repository, 1), build(repository, 2)
    observe(main, one, poll_at(repository, 0))
    observe(main, None, poll_at(repository, 1))

    event = observe(main, two, poll_at(repository, 2))

    assert event.kind == TagEvent.Kind.RESTORED
    assert timeline(main)[-1] == ("restored", 2, 1, 2, 1)
    assert state_of(main) == (2, True, 2, 2)


def test_immutable_tag_that_moves_is_a_security_event(repository):
    stamp = tag(repository, "3.14.4-202611261200")
    one, two = build(repository, 1), build(repository, 2)
    observe(stamp, one, poll_at(repository, 0), immutable=True)

    event = observe(stamp, two, poll_at(repository, 1), immutable=True)

    assert event.kind == TagEvent.Kind.IMMUTABLE_MOVED
    assert timeline(stamp) == [("created", 1, None, 0, None), ("immutable_moved", 2, 1, 1, 0)]
    assert state_of(stamp) == (2, True, 1, 1)  # recorded as it is now, flagged in history


def test_immutable_tag_unchanged_or_deleted_is_ordinary(repository):
    stamp, one = tag(repository, "3.14.4-202611261200"), build(repository, 1)
    observe(stamp, one, poll_at(repository, 0), immutable=True)

    assert observe(stamp, one, poll_at(repository, 1), immutable=True) is None
    deleted = observe(stamp, None, poll_at(repository, 2), immutable=True)

    assert deleted.kind == TagEvent.Kind.DELETED


def test_immutable_tag_restored_with_another_build_is_immutable_moved(repository):
    """A timestamp tag that disappears and comes back with other content still moved."""
    stamp = tag(repository, "3.14.4-202611261200")
    one, two = build(repository, 1), build(repository, 2)
    observe(stamp, one, poll_at(repository, 0), immutable=True)
    observe(stamp, None, poll_at(repository, 1), immutable=True)

    event = observe(stamp, two, poll_at(repository, 2), immutable=True)

    assert event.kind == TagEvent.Kind.IMMUTABLE_MOVED


def test_first_sightings_are_created_in_bulk(repository):
    latest, stamp, one = (
        tag(repository, "latest"),
        tag(repository, "3.14.4-202611261200"),
        build(repository, 1),
    )
    poll = poll_at(repository, 0)

    at = poll.started_at
    recorded = TagState.objects.record_first_sightings(
        [(latest, one, at, at), (stamp, one, at, at)], poll=poll
    )

    assert recorded == 2
    assert timeline(latest) == timeline(stamp) == [("created", 1, None, 0, None)]


def test_a_first_sighting_that_lost_a_race_still_flags_an_immutable_move(repository):
    """Another poll recorded the timestamp tag first (build 1); this one saw build 2. The fallback
    decides per tag, and a timestamp tag pointing elsewhere is a security event, not a move."""
    stamp, one, two = tag(repository, "3.14.4-202611261200"), build(repository, 1), build(repository, 2)
    observe(stamp, one, poll_at(repository, 0), immutable=True)
    poll = poll_at(repository, 1)

    at = poll.started_at
    assert TagState.objects.record_first_sightings([(stamp, two, at, at)], poll=poll) == 1

    assert timeline(stamp)[-1] == ("immutable_moved", 2, 1, 1, 0)


def test_one_poll_can_never_record_two_changes_of_one_tag(repository):
    latest, one, two = tag(repository, "latest"), build(repository, 1), build(repository, 2)
    poll = poll_at(repository, 0)
    observe(latest, one, poll)

    with pytest.raises(IntegrityError), transaction.atomic():
        tag_event(latest, two, TagEvent.Kind.MOVED, previous_build=one, at=poll.started_at, poll=poll)
    # The same through observe: the second change in one poll rolls back entirely.
    with pytest.raises(IntegrityError), transaction.atomic():
        observe(latest, two, poll)

    assert timeline(latest) == [("created", 1, None, 0, None)]
    assert state_of(latest) == (1, True, 0, 0)


def test_unchanged_observe_costs_a_few_queries_whatever_the_history(repository):
    quiet, busy = tag(repository, "quiet"), tag(repository, "busy")
    builds = [build(repository, n) for n in range(1, 12)]
    observe(quiet, builds[0], poll_at(repository, 0))
    for hour, each in enumerate(builds):
        observe(busy, each, poll_at(repository, hour))
    assert len(timeline(busy)) == 11

    def cost(the_tag: Tag, the_build: Build, hour: int) -> int:
        poll = poll_at(repository, hour)
        with CaptureQueriesContext(connection) as captured:
            assert observe(the_tag, the_build, poll) is None
        return len(captured.captured_queries)

    quiet_cost = cost(quiet, builds[0], 20)
    assert quiet_cost == cost(busy, builds[-1], 21) == cost(quiet, builds[0], 22)
    # SELECT ... FOR UPDATE and one UPDATE of confirmed_at, inside a savepoint.
    assert quiet_cost <= 4


# --- overlapping polls: answers that arrive out of order --------------------------------------


def test_an_answer_asked_before_the_current_state_was_confirmed_is_refused(repository):
    """Poll A asked at hour 1 and its slow answer (build 1) arrived at hour 3; poll B asked at
    hour 2 and recorded build 2. A's answer is older than what B saw: it must not undo it."""
    latest, one, two = tag(repository, "latest"), build(repository, 1), build(repository, 2)
    observe(latest, one, poll_at(repository, 0))
    b = poll_at(repository, 2)
    TagState.objects.observe(latest, two, at=b.started_at, poll=b, immutable=False)
    a = poll_at(repository, 1)

    refused = TagState.objects.observe(
        latest, one, at=DAY_ONE + timedelta(hours=3), asked_at=a.started_at, poll=a, immutable=False
    )

    assert refused is None
    assert timeline(latest) == [("created", 1, None, 0, None), ("moved", 2, 1, 2, 0)]
    assert state_of(latest) == (2, True, 2, 2)


def test_a_change_is_detected_when_answered_and_confirmed_when_asked(repository):
    latest, one, two = tag(repository, "latest"), build(repository, 1), build(repository, 2)
    observe(latest, one, poll_at(repository, 0))
    poll = poll_at(repository, 4)

    TagState.objects.observe(
        latest, two, at=DAY_ONE + timedelta(hours=5), asked_at=poll.started_at, poll=poll, immutable=False
    )

    assert timeline(latest)[-1] == ("moved", 2, 1, 5, 0)
    assert state_of(latest) == (2, True, 5, 4)  # since the answer, confirmed as of the request


def test_a_confirmation_never_moves_back(repository):
    latest, one = tag(repository, "latest"), build(repository, 1)
    observe(latest, one, poll_at(repository, 5))

    TagState.objects.confirm([latest.pk], at=DAY_ONE + timedelta(hours=2))

    assert state_of(latest)[3] == 5


ANSWER = st.tuples(st.integers(0, 50), st.integers(0, 5), st.sampled_from([1, 2, 3, None]))


@given(first=ANSWER.filter(lambda answer: answer[2] is not None), rest=st.lists(ANSWER, max_size=12))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_answers_in_any_order_never_invert_history(repository, first, rest):
    """Whatever order overlapping polls deliver their answers in, each (asked hour, hours until
    it arrived, build or gone): every change's not_before precedes its detection, and the state
    ends where the most recently asked answer put it."""
    answers = [first, *rest]
    the_tag = Tag.objects.create(repository=repository, name=f"t{Tag.objects.count()}", kind="other")
    # Hypothesis runs every example in the one test transaction: the builds are reused.
    builds = {
        n: Build.objects.filter(digest=f"sha256:{n:064x}").first() or build(repository, n) for n in (1, 2, 3)
    }
    for asked, delay, n in answers:
        asked_at = DAY_ONE + timedelta(hours=asked)
        TagState.objects.observe(
            the_tag, builds.get(n), at=asked_at + timedelta(hours=delay), asked_at=asked_at,
            poll=None, immutable=False,
        )  # fmt: skip

    for event in TagEvent.objects.filter(tag=the_tag):
        assert event.not_before is None or event.not_before <= event.detected_at
    newest = max(asked for asked, _, _ in answers)
    expected = [n for asked, _, n in answers if asked == newest][-1]
    state = TagState.objects.get(tag=the_tag)
    assert (int(state.build.digest.split(":")[1], 16) if state.present else None) == expected


# --- tags the repository's patterns no longer take -------------------------------------------


def test_untracked_tags_leave_every_current_answer_and_keep_their_history(repository):
    latest, old, one = tag(repository, "latest"), tag(repository, "2.0"), build(repository, 1)
    observe(latest, one, poll_at(repository, 0))
    observe(old, one, poll_at(repository, 0))
    poll = poll_at(repository, 1)

    assert TagState.objects.untrack([old, latest], at=poll.started_at, poll=poll) == 2
    assert TagState.objects.untrack([old], at=poll.started_at, poll=poll) == 0  # once only

    assert timeline(old) == [("created", 1, None, 0, None), ("untracked", None, 1, 1, 0)]
    assert state_of(old) == (1, False, 1, 1)
    # Taken again and seen on the same build: back, as a restore.
    again = poll_at(repository, 2)
    assert observe(old, one, again).kind == TagEvent.Kind.RESTORED

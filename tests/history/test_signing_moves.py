"""A tag that moves from a signed build to an unsigned one, or to a build no signer of the previous
one signed, is flagged on the move: in the changelog, the home page, the Atom feed, the API's
events and the tag page. Read from the signatures recorded now (they often come after the push),
in one query for a whole page of events."""

import pytest

from history.changelog import ChangelogFilter, page
from history.models import Attachment, TagState
from history.supply_chain import signing_changes
from tests.history.factories import Image, attachment, signature

pytestmark = pytest.mark.django_db

ALICE, MALLORY = "alice@acme.example", "mallory@evil.example"


@pytest.fixture
def image():
    return Image("acme/app")


def moved(image, before: list[str] | None, after: list[str] | None, tag: str = "latest"):
    """`tag` on a build signed by `before` (None: unsigned; [""]: a key, no identity), then moved to
    one signed by `after`: the move event."""
    old, new = image.build(), image.build()
    for build, signers in ((old, before), (new, after)):
        for identity in signers or []:
            signature(build, identity)
    image.tag(tag, old)
    image.tag(tag, new)
    return old.events.get(), new.events.get()


@pytest.mark.parametrize(
    ("before", "after", "flag"),
    [
        (None, None, None),
        ([ALICE], None, "unsigned"),
        ([""], None, "unsigned"),  # a key-based signature (no certificate) is a signature too
        (None, [ALICE], None),
        ([ALICE], [ALICE], None),
        ([ALICE], [MALLORY], "signer_changed"),
        ([ALICE], [ALICE, MALLORY], None),  # a signer in common
        ([ALICE, MALLORY], [MALLORY], None),
        ([ALICE], [""], None),  # no identity to compare: signed either way
        ([""], [MALLORY], None),
    ],
)
def test_which_moves_are_flagged(image, before, after, flag):
    _, move = moved(image, before, after)
    assert signing_changes([move]) == ({move.pk: flag} if flag else {})


def test_an_unverified_signature_still_counts_as_signed(image):
    old, new = image.build(), image.build()
    signature(old, ALICE)
    signature(new, ALICE, verified=False)
    image.tag("latest", old)
    move = image.tag("latest", new).events.latest("detected_at")
    assert signing_changes([move]) == {}


def test_only_signatures_count_not_buildkit_rows_nor_other_attachments(image):
    old, new = image.build(), image.build()
    signature(old, ALICE)
    signature(new, ALICE, source=Attachment.Source.BUILDKIT)
    attachment(new, Attachment.Kind.SBOM)
    image.tag("latest", old)
    move = image.tag("latest", new).events.latest("detected_at")
    assert signing_changes([move]) == {move.pk: "unsigned"}


def test_creations_deletions_and_restores_to_the_same_build_are_never_flagged(image):
    signed = image.build()
    signature(signed, ALICE)
    tag = image.tag("latest", signed)
    TagState.objects.observe(tag, None, at=signed.first_seen_at, poll=None, immutable=False)
    events = list(tag.events.all())
    assert [event.kind for event in events] == ["created", "deleted"]
    assert signing_changes(events) == {}


def test_a_signature_attached_after_the_push_clears_the_flag(image):
    _, move = moved(image, [ALICE], None)
    assert signing_changes([move]) == {move.pk: "unsigned"}
    signature(move.build, ALICE)
    assert signing_changes([move]) == {}


# --- the doors ----------------------------------------------------------------------------------


def test_the_changelog_and_home_pages_show_the_flag(client, public, image):
    moved(image, [ALICE], None, tag="latest")
    moved(image, [ALICE], [MALLORY], tag="stable")
    changelog = client.get("/changelog").content.decode()
    assert changelog.count('class="signing-flag signing-unsigned">signed → unsigned</span>') == 1
    assert changelog.count('class="signing-flag signing-signer_changed">another signer</span>') == 1
    home = client.get("/").content.decode()
    assert "signed → unsigned" in home and "another signer" in home


def test_the_feed_says_it_in_the_title_and_the_summary(client, public, image):
    moved(image, [ALICE], None)
    feed = client.get("/changelog/feed.atom").content.decode()
    assert "latest moved in registry.example/acme/app (signed → unsigned)</title>" in feed
    assert "Signing:&lt;/strong&gt; moved from a signed build to an unsigned one." in feed


def test_the_api_events_carry_signing(client, public, image):
    moved(image, [ALICE], [MALLORY])
    body = client.get(f"/api/v1/repositories/{image.repository.pk}/events").json()
    assert [(event["kind"], event["signing"]) for event in body["events"]] == [
        ("moved", "signer_changed"),
        ("created", None),
    ]


def test_the_tag_page_shows_the_flag_on_the_period_it_began(client, public, image):
    moved(image, [ALICE], None)
    content = client.get(f"/repositories/{image.repository.pk}/tags/latest").content.decode()
    assert content.count("moved here from a signed build: this one is unsigned") == 1


def test_one_query_for_a_whole_page_of_moves(image, django_assert_max_num_queries):
    def cost() -> int:
        with django_assert_max_num_queries(4) as counted:  # events, their builds, the signatures
            flagged = page(ChangelogFilter(repository=image.repository.pk)).events
        assert all(event.signing == "unsigned" for event in flagged if event.kind == "moved")
        return len(counted.captured_queries)

    moved(image, [ALICE], None, tag="t1")
    few = cost()
    for number in range(2, 12):
        moved(image, [ALICE], None, tag=f"t{number}")
    assert cost() == few


def test_the_tag_history_api_carries_signing_on_the_period_it_began(client, public, image):
    moved(image, [ALICE], [MALLORY])
    body = client.get(f"/api/v1/repositories/{image.repository.pk}/tags/latest/history").json()
    assert [(period["kind"], period["signing"]) for period in body["items"]] == [
        ("moved", "signer_changed"),
        ("created", None),
    ]

"""The tag grammar on real published tag sets: invariants over every image, not picked examples.

Each corpus entry is the set of tags one registry served for one digest (tests/catalog/corpus).
The oracles in tests/support/corpus.py read a tag with plain regular expressions, so these
tests compare the grammar with what a person sees in a tag.
"""

import re
from collections import Counter

import pytest

from catalog.oci.reference import is_valid_tag
from catalog.tags import Kind, classify, default_line_depth, line_of, version_key, version_of
from tests.support import corpus

IMAGES = corpus.images()
TAGS = [(image, tag) for image in IMAGES for tag in image.tags]


def test_the_corpus_is_real_sized_and_well_formed():
    assert len(corpus.by_repository()) >= 30
    assert len(TAGS) >= 2000
    for source in corpus.sources():
        assert source["source"] and source["retrieved"], source["file"]
    for repository, images in corpus.by_repository().items():
        tags = [tag for image in images for tag in image.tags]
        assert all(is_valid_tag(tag) for tag in tags), repository
        assert not [tag for tag, count in Counter(tags).items() if count > 1], repository


def test_every_image_with_a_version_number_is_placed_in_a_version_row():
    versioned = [image for image in IMAGES if any(corpus.carries_version(tag) for tag in image.tags)]
    outside = [
        f"{image.repository}:{image.tags[0]}"
        for image in versioned
        if version_of(classify(tag) for tag in image.tags) is None
    ]
    corpus.share("images placed in a version row", len(versioned) - len(outside), len(versioned), outside)
    assert outside == []


def test_two_images_never_name_one_version_row_by_a_tag_that_follows_the_version():
    """Two images of one repository (as published) are never both where `3.14.4`, `3.14` or `3`
    points. Older builds named by a tag of their own (a timestamp, a revision) are that row's
    digest history, not a second current build."""
    clashes = []
    for repository, images in corpus.by_repository().items():
        rows = Counter()
        for image in images:
            named = version_of(classify(tag) for tag in image.tags)
            if named is not None and named.kind not in (Kind.TIMESTAMP, Kind.REVISION):
                rows[named.version, named.variant] += 1
        clashes += [f"{repository} {row}" for row, count in rows.items() if count > 1]
    assert clashes == []


def test_the_version_row_is_the_most_specific_version_and_floating_aliases_are_tags_of_it():
    for image in IMAGES:
        infos = [classify(tag) for tag in image.tags]
        named = version_of(infos)
        if named is None:
            continue
        for info in infos:
            if info.version and info.variant == named.variant:
                # `3`, `3.14` and `3.14-rc` float onto the image; none is more specific than its row
                assert version_key(info.version) <= version_key(named.version), (image, info.name)


def test_every_date_stamped_tag_is_a_timestamp_tag_of_the_rest_of_the_tag():
    stamped = [(image, tag, corpus.stamp_in(tag)) for image, tag in TAGS if corpus.stamp_in(tag)]
    wrong = []
    for image, tag, (when, rest) in stamped:
        info, plain = classify(tag), classify(rest)
        if (info.kind, info.built_at, info.version, info.variant) != (
            Kind.TIMESTAMP,
            when,
            plain.version,
            plain.variant,
        ):
            wrong.append(f"{image.repository}:{tag}")
    corpus.share("date-stamped tags recognised", len(stamped) - len(wrong), len(stamped), wrong)
    assert stamped, "the corpus must hold date-stamped tags"
    assert wrong == []


def test_no_variant_holds_a_date_or_a_long_number():
    # one row per real variant, never one per build
    assert [tag for _, tag in TAGS if re.search(r"[0-9]{6}", classify(tag).variant)] == []


_PRERELEASE_RE = re.compile(r"(?i)[._-]?(?:alpha|beta|preview|pre|rc|ea|milestone|m|a|b)(?:[._-]?[0-9]+)*$")


def test_prereleases_sort_before_their_release_and_after_the_one_before():
    checked = 0
    for version in {classify(tag).version for _, tag in TAGS} - {""}:
        release = _PRERELEASE_RE.sub("", version)
        if release == version or not re.fullmatch(r"[0-9]+(?:\.[0-9]+)*", release):
            continue
        parts = [int(part) for part in release.split(".")]
        before = ".".join(map(str, [*parts[:-1], parts[-1] - 1])) if parts[-1] else None
        assert version_key(version) < version_key(release), version
        if before:
            assert version_key(before) < version_key(version), version
        checked += 1
    assert checked, "the corpus must hold prereleases"


def test_tags_no_rule_explains_are_other_and_carry_nothing():
    for _, tag in TAGS:
        info = classify(tag)
        if info.kind is Kind.OTHER:
            assert (info.version, info.variant, info.built_at) == ("", "", None), tag


@pytest.mark.parametrize("repository", sorted(corpus.by_repository()))
def test_every_version_row_has_a_line(repository):
    images = corpus.by_repository()[repository]
    infos = [classify(tag) for image in images for tag in image.tags]
    depth = default_line_depth(info.version for info in infos)
    for image in images:
        named = version_of(classify(tag) for tag in image.tags)
        if named is not None:
            assert line_of(named.version, depth), (repository, named.name)

"""history.packages.package_set: an SBOM's packages stored once each, as one set per distinct list,
in a fixed number of queries, whatever a registry put in the names."""

import threading
from typing import NamedTuple

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from history.models import Package, PackageSet
from history.packages import NAME_LENGTH, PURL_LENGTH, VERSION_LENGTH, package_key, package_row, package_set

pytestmark = pytest.mark.django_db


class Pkg(NamedTuple):
    """What history.sbom.Package has: package_set reads these four attributes and nothing else."""

    name: str
    version: str = ""
    type: str = "deb"
    purl: str = ""


def deb(name: str, version: str) -> Pkg:
    return Pkg(name, version, "deb", f"pkg:deb/debian/{name}@{version}")


def stored(found: PackageSet) -> list[tuple[str, str]]:
    by_id = Package.objects.in_bulk(found.packages)
    return [(by_id[pk].name, by_id[pk].version) for pk in found.packages]


def test_a_set_lists_its_package_ids_ascending_with_its_size_and_key():
    found = package_set([deb("zlib1g", "1.2.13"), deb("openssl", "3.0.13"), deb("bash", "5.2")])
    assert found.size == 3
    assert found.packages == sorted(found.packages)
    assert sorted(stored(found)) == [("bash", "5.2"), ("openssl", "3.0.13"), ("zlib1g", "1.2.13")]
    assert len(found.key) == 64


def test_the_same_packages_in_any_order_and_repeated_are_the_same_set():
    first = package_set([deb("openssl", "3.0.13"), deb("bash", "5.2")])
    again = package_set([deb("bash", "5.2"), deb("openssl", "3.0.13"), deb("bash", "5.2")])
    assert again.pk == first.pk
    assert (PackageSet.objects.count(), Package.objects.count()) == (1, 2)


def test_a_rebuild_shares_the_package_versions_it_did_not_change():
    before = package_set([deb("openssl", "3.0.13"), deb("bash", "5.2")])
    after = package_set([deb("openssl", "3.0.14"), deb("bash", "5.2")])
    assert after.pk != before.pk
    assert Package.objects.count() == 3  # bash 5.2 once
    assert set(before.packages) & set(after.packages) == set(
        Package.objects.filter(name="bash").values_list("pk", flat=True)
    )


def test_packages_differing_in_any_one_of_the_four_values_are_different_rows():
    package_set([
        Pkg("openssl", "3.0.13", "deb", "pkg:deb/debian/openssl@3.0.13"),
        Pkg("openssl", "3.0.13", "deb", "pkg:deb/ubuntu/openssl@3.0.13"),
        Pkg("openssl", "3.0.13", "apk", "pkg:deb/debian/openssl@3.0.13"),
        Pkg("openssl", "3.0.14", "deb", "pkg:deb/debian/openssl@3.0.13"),
        Pkg("OpenSSL", "3.0.13", "deb", "pkg:deb/debian/openssl@3.0.13"),
    ])  # fmt: skip
    assert Package.objects.count() == 5


def test_the_separator_of_the_key_cannot_be_forged_by_moving_text_between_values():
    assert package_key("deb", "a", "b", "") != package_key("deb", "a\0b", "", "")
    package_set([Pkg("a", "b", "deb"), Pkg("a\0b", "", "deb")])
    assert sorted(Package.objects.values_list("name", "version")) == [("a", "b"), ("ab", "")]


def test_an_empty_sbom_is_one_empty_set():
    empty = package_set([])
    assert (empty.packages, empty.size) == ([], 0)
    assert package_set(iter(())).pk == empty.pk


def test_a_package_without_a_name_is_left_out():
    found = package_set([Pkg(""), Pkg("  \0 "), Pkg(None), deb("bash", "5.2")])
    assert stored(found) == [("bash", "5.2")]


HOSTILE = [
    # (what a registry's SBOM said, what is stored: (type, name, version, purl))
    (Pkg("nul\0name", "1\0.0", "d\0eb", "pkg:deb/x\0@1"), ("deb", "nulname", "1.0", "pkg:deb/x@1")),
    (Pkg("x" * 5000, "9" * 5000, "t" * 500, ""), ("t" * 64, "x" * NAME_LENGTH, "9" * VERSION_LENGTH, "")),
    (Pkg("long-purl", "1", "npm", "pkg:npm/" + "a" * PURL_LENGTH), ("npm", "long-purl", "1", "")),
    (Pkg("surrogate\ud800", "1"), ("deb", "surrogate?", "1", "")),
    (Pkg("ctl\x01\x1b[31m", " 1.0 \n"), ("deb", "ctl\x01\x1b[31m", "1.0", "")),
    (Pkg(42, 1.0, ["deb"], {"purl": 1}), None),  # no name that is text: nothing
    (Pkg("typed", 1.0, None, b"pkg:deb/x"), ("", "typed", "", "")),
]


@pytest.mark.parametrize("given_package, expected", HOSTILE)
def test_hostile_values_are_stored_cleaned_and_bounded(given_package, expected):
    found = package_set([given_package])
    rows = list(Package.objects.filter(pk__in=found.packages).values_list("type", "name", "version", "purl"))
    assert rows == ([expected] if expected else [])


text = st.text(st.characters(codec="utf-8", exclude_categories=()), max_size=40) | st.text(max_size=5)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.builds(Pkg, text, text, text, text), max_size=8))
def test_any_text_stores_and_the_same_list_finds_the_same_set(packages):
    first = package_set(packages)
    assert package_set(reversed(packages)).pk == first.pk
    assert first.size == len(first.packages) <= len(packages)


def test_a_large_sbom_takes_a_fixed_number_of_queries(django_assert_max_num_queries):
    """Insert the packages, read their ids, look for the set; a new set adds its insert within a
    savepoint (three queries), so that losing a race to another poll's insert can be recovered."""
    packages = [deb(f"package-{n}", f"1.{n}") for n in range(300)]
    with django_assert_max_num_queries(6):
        package_set(packages)
    with django_assert_max_num_queries(3):
        package_set(packages)
    more = [*packages, deb("openssl", "3.0.14")]
    with django_assert_max_num_queries(6):
        assert package_set(more).size == 301


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("older", [0, 2], ids=["new packages", "packages stored before"])
def test_two_polls_storing_the_same_sbom_at_once_make_one_set(older):
    """Another poll's transaction has inserted the packages and the set and not committed yet:
    this one's inserts wait for it, lose on the unique keys, and read the other's rows. With the
    packages new, it waits at the packages; with them stored before, at the set."""
    packages = [deb("openssl", "3.0.13"), deb("bash", "5.2")]
    Package.objects.bulk_create([package_row(package) for package in packages[:older]])
    stored_first, done = threading.Event(), threading.Event()
    found = {}

    def first_poll():
        try:
            with transaction.atomic():
                found["first"] = package_set(packages)
                stored_first.set()
                done.wait(0.5)  # the second poll is now waiting on this transaction's rows
        finally:
            connection.close()

    def second_poll():
        try:
            stored_first.wait(5)
            with transaction.atomic():
                found["second"] = package_set(packages)
        finally:
            connection.close()

    threads = [threading.Thread(target=first_poll), threading.Thread(target=second_poll)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert found["first"].pk == found["second"].pk
    assert (PackageSet.objects.count(), Package.objects.count()) == (1, 2)

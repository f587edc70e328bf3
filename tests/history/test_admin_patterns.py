"""The catalog stays editable in the admin, and its tag patterns pass the same validator as `watch`."""

import pytest
from django.core.exceptions import ValidationError

from catalog.models import Registry, Repository, validate_regex

pytestmark = pytest.mark.django_db

PATTERNS = [
    r"^v?\d+\.\d+\.\d+$",
    r"-alpine$",
    r"(?i)^(latest|edge)$",
    "(",
    "[a-",
    "*",
    "a{4294967295}",  # compiles to four billion steps
    "(" * 5000,  # nested past Python's recursion limit
    "(?<=a+)b",
    "x" * 501,  # longer than the field
    "\x00",
]
FIELDS = ["include_pattern", "exclude_pattern", "immutable_pattern"]


def accepted(pattern: str) -> bool:
    try:
        validate_regex(pattern)
    except ValidationError:
        return False
    return len(pattern) <= 500 and "\x00" not in pattern


def form(registry: Registry, **fields) -> dict:
    return {
        "registry": registry.pk, "name": "demo/app", "enabled": "on", "interval": "00:30:00",
        "next_poll_at_0": "2026-01-01", "next_poll_at_1": "00:00:00", "line_depth": "", "platforms": "",
        "include_pattern": "", "exclude_pattern": "", "immutable_pattern": "", **fields,
    }  # fmt: skip


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda pattern: repr(pattern[:20]))
def test_the_admin_takes_exactly_the_patterns_the_validator_takes(admin_client, field, pattern):
    registry = Registry.objects.create(host="registry.example")

    response = admin_client.post("/admin/catalog/repository/add/", form(registry, **{field: pattern}))

    assert response.status_code in {200, 302}, response.status_code
    if accepted(pattern):
        assert response.status_code == 302
        assert getattr(Repository.objects.get(name="demo/app"), field) == pattern
    else:
        assert response.status_code == 200 and response.context["adminform"].form.errors[field]
        assert not Repository.objects.exists()


def test_a_repository_is_still_editable_in_the_admin(admin_client):
    registry = Registry.objects.create(host="registry.example")
    repository = Repository.objects.create(registry=registry, name="demo/app")

    response = admin_client.post(
        f"/admin/catalog/repository/{repository.pk}/change/",
        form(registry, exclude_pattern="-rc\\d+$", enabled=""),
    )

    assert response.status_code == 302
    repository.refresh_from_db()
    assert (repository.exclude_pattern, repository.enabled) == ("-rc\\d+$", False)

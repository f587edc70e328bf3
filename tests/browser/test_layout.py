"""Every page fits a phone and a desktop, and passes axe-core: no sideways scrolling of the page body
at 390 px or 1400 px, and no serious or critical accessibility violation, on data of real size.

One repository as eclipse-temurin publishes it (dozens of variants, some with long names), a
version rebuilt daily with its floating tags following, builds of five platforms with long labels
and annotations, tags as long as a tag may be, and markup where a registry controls the text.
Each page is visited at both widths in one test per width (the data takes longer to write than a
page to check), and every problem of every page is listed before the test fails.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from hashlib import sha256
from urllib.parse import urlencode

import pytest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from catalog.oci.mediatypes import OCI_MANIFEST
from history.models import Build, Platform
from tests.browser.conftest import serious_violations, shot
from tests.history import factories
from tests.history.factories import Image

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

WIDTHS = (390, 1400)
# axe-core's impact levels: "minor" and "moderate" are reported by axe but do not fail the page.
HOSTILE = '"><img src=x onerror=alert(1)><script>alert(2)</script>'

# eclipse-temurin publishes each release in ~26 variants, some with long names.
VARIANTS = [""] + [
    f"{kind}-{os}"
    for kind in ("jdk", "jre")
    for os in ("noble", "jammy", "focal", "alpine", "ubi9-minimal", "windowsservercore-ltsc2022",
               "nanoserver-ltsc2022", "windowsservercore-1809", "nanoserver-1809", "alpine-3.21",
               "ubi10-minimal", "noble-headless-with-a-very-long-variant-name-for-good-measure")
]  # fmt: skip
PLATFORMS = [("linux", "amd64", ""), ("linux", "arm64", "v8"), ("linux", "arm", "v7"),
             ("linux", "ppc64le", ""), ("linux", "s390x", "")]  # fmt: skip
# A tag may be 128 characters long (distribution's grammar), with no separator to break at.
LONGEST_TAG = "sha256-" + "f" * 64 + "-and-a-branch-name-that-goes-on-" + "x" * 25


def digest(text: str) -> str:
    return "sha256:" + sha256(text.encode()).hexdigest()


def platforms(build: Build, day: int) -> None:
    """Five platform images of `build`, each with a config as long as real ones get."""
    labels = {
        "org.opencontainers.image.source": "https://github.com/adoptium/containers/tree/main/21/jdk/ubuntu/noble",
        "org.opencontainers.image.description": "Eclipse Temurin JDK 21 " * 12,
        "com.example.a-label-key-that-is-much-longer-than-any-column-could-hold-without-breaking": "yes",
        "hostile": HOSTILE,
    }
    env = [
        "PATH=/opt/java/openjdk/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "JAVA_HOME=/opt/java/openjdk",
        f"JAVA_VERSION=jdk-21.0.5+11-{day}",
        "JDK_JAVA_OPTIONS=" + " ".join(f"--add-opens=java.base/java.{n}=ALL-UNNAMED" for n in "abcdefgh"),
    ]
    history = [
        {"created": None, "created_by": f'/bin/sh -c #(nop) ADD file:{"0" * 64} in / ', "comment": "",
         "empty_layer": False},
        {"created": None, "created_by": "RUN /bin/sh -c set -eux; apt-get update; DEBIAN_FRONTEND=noninter"
         "active apt-get install -y --no-install-recommends " + " ".join(f"package-{n}" for n in range(40)),
         "comment": "buildkit.dockerfile.v0", "empty_layer": False},
        {"created": None, "created_by": "ENV JAVA_HOME=/opt/java/openjdk", "comment": "",
         "empty_layer": True},
    ]  # fmt: skip
    for os, architecture, variant in PLATFORMS:
        name = f"{build.digest}/{architecture}{variant}"
        Platform.objects.create(
            build=build, os=os, architecture=architecture, variant=variant, digest=digest(name),
            media_type=OCI_MANIFEST, config_digest=digest(f"{name}/config"), size=190_000_000 + day,
            layers=[{"digest": digest(f"{name}/layer{n}"), "size": 1_000_000 * n + day, "media_type": "x"}
                    for n in range(12)],
            config={"env": env, "labels": labels, "entrypoint": ["/__cacert_entrypoint.sh"],
                    "cmd": ["jshell"], "user": "", "workdir": "", "exposed_ports": [], "created": None,
                    "history": history},
        )  # fmt: skip


@pytest.fixture
def temurin():
    """eclipse-temurin of real size: 2 lines, 3 releases in 26 variants each, 40 branch tags, the
    newest release rebuilt daily for 12 days with a timestamp tag each and its floating tags
    following, and a tag as long as tags get."""
    image = Image("library/eclipse-temurin")
    now = timezone.now()
    for line, releases in (("21", ("21.0.5_11", "21.0.4_7")), ("17", ("17.0.13_11",))):
        for age, name in enumerate(releases):
            for variant in VARIANTS:
                suffix = f"-{variant}" if variant else ""
                tags = [f"{name}{suffix}", f"{line}{suffix}"] if age == 0 else [f"{name}{suffix}"]
                if line == "21" and age == 0:
                    tags += [f"latest{suffix}" if variant else "latest", f"lts{suffix}" if variant else "lts"]
                image.release(name, variant, *tags, at=now - timedelta(days=30 + age * 200))
    loose = image.build(None, at=now)
    for number in range(40):
        name = f"sha-{number:07x}-a-long-branch-name-{number}"
        image.tag(name, loose, kind="other", version="", variant="")
    image.tag(LONGEST_TAG, loose, kind="other", version="", variant="")

    version = image.version("21.0.5_11")
    image.rebuilds = []
    for day in range(12):
        at = now - timedelta(days=12 - day, hours=3)
        rebuilt = image.build(version, at=at, built_at=at - timedelta(hours=1))
        rebuilt.annotations = {
            "org.opencontainers.image.created": at.isoformat(),
            "org.opencontainers.image.base.name": "docker.io/library/ubuntu:noble-20261101-with-a-suffix",
            "com.example.an.annotation.key.with.no.room.to.breathe.at.all.on.a.phone.screen": "x" * 150,
            "hostile": HOSTILE,
        }
        rebuilt.save(update_fields=["annotations"])
        platforms(rebuilt, day)
        for name in (f"21.0.5_11-{at:%Y%m%d%H%M}", "21.0.5_11", "21", "latest", "lts"):
            image.tag(name, rebuilt, at=at)
        image.rebuilds.append(rebuilt)
    image.version_ = version
    # The newest build's supply chain: a signer and packages a registry chose, long and hostile.
    newest = image.rebuilds[-1]
    factories.signature(newest, "https://github.com/" + "an-org/a-repository-name/" * 4 + HOSTILE)
    packages = [(f"lib{n}-{'long-' * (n % 5)}name", f"1.{n}.0-r{n}") for n in range(40)] + [(HOSTILE, "1")]
    for platform in newest.platforms.all():
        factories.sbom(newest, *packages, platform=platform)
    return image


@dataclass
class Visit:
    """One page to look at: where it is, and what to open on it before looking."""

    name: str
    url: str
    prepare: Callable[[Page], None] = field(default=lambda page: None)


def open_folded(page: Page) -> None:
    """Open what the repository page folds: inactive versions, tags no rule explains, every tag (htmx)."""
    expect(page.locator("table.rows tbody tr").first).to_be_visible()
    page.locator("details.inactive-rows > summary").first.click()
    expect(page.locator("details.inactive-rows[open] table.rows").first).to_be_visible()
    if page.locator("#others details > summary").count():
        page.locator("#others details > summary").click()
        expect(page.locator("#others p.chips")).to_be_visible()
    page.locator("#tags summary").click()
    expect(page.locator("#tags table.tags tbody tr").first).to_be_visible()


# Pairs of a build's config or annotation key and its value whose text boxes intersect.
OVERLAPS = """
[...document.querySelectorAll("dl.config > dt")].flatMap((dt) => {
  const dd = dt.nextElementSibling;
  const boxes = (el) => [...el.querySelectorAll("*"), el].flatMap((node) => [...node.getClientRects()]);
  const meet = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  const hit = boxes(dt).some((a) => boxes(dd).some((b) => meet(a, b)));
  return hit ? [dt.textContent.trim().slice(0, 60)] : [];
})
"""


def keys_beside_values(page: Page) -> None:
    """The build page: each annotation and label key wraps in its column instead of running into its value."""
    page.locator("h2", has_text="Annotations").scroll_into_view_if_needed()
    assert page.evaluate(OVERLAPS) == []


def visits(image: Image) -> list[Visit]:
    repository = image.repository
    older, newest = image.rebuilds[0], image.rebuilds[-1]
    pins = "\n".join([
        f"FROM {repository.reference}:21.0.5_11@{newest.digest}",
        f"FROM --platform=$BUILDPLATFORM {repository.reference}:latest@{older.digest} AS a-long-stage-name",
        f"image: {repository.reference}:{LONGEST_TAG}@{older.digest}",
        f"{repository.reference}:21@{digest('unknown')}",
        "not a reference at all " + HOSTILE,
    ])  # fmt: skip
    found = [
        Visit("home", "/"),
        Visit("repository", f"/repositories/{repository.pk}/", open_folded),
        Visit("version", f"/versions/{image.version_.pk}/"),
        Visit("build", f"/builds/{newest.pk}/", keys_beside_values),
        Visit("build-packages", reverse("history:build_packages", args=[newest.pk])),
        Visit("changelog", "/changelog"),
        Visit("repository-changelog", f"/repositories/{repository.pk}/changelog"),
        Visit("search", "/search?" + urlencode({"q": "21.0.5_11"})),
        Visit("search-digest", "/search?" + urlencode({"q": newest.digest[7:19]})),
        Visit("compare", "/compare?" + urlencode({"a": older.digest, "b": newest.digest})),
        Visit("compare-empty", "/compare"),
        Visit("pins", "/pins?" + urlencode({"refs": pins})),
        Visit("login", "/accounts/login/"),
    ]
    try:  # the tag page (issue 12, item 1) is added alongside this test
        found.append(Visit("tag", reverse("history:tag", args=[repository.pk, LONGEST_TAG])))
        found.append(Visit("tag-floating", reverse("history:tag", args=[repository.pk, "latest"])))
    except NoReverseMatch:
        pass
    return found


def problems_of(page: Page, width: int) -> list[str]:
    problems = []
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    if scroll > inner:
        wide = page.evaluate(WIDEST)
        problems.append(f"scrolls sideways: {scroll} px wide in {inner} px; widest: {wide}")
    problems += [f"axe {violation}" for violation in serious_violations(page)]
    return problems


# Names the elements that stick out past the window while their parent does not, so a failure
# says where to look.
WIDEST = """
[...document.querySelectorAll("body *")]
  .filter((el) => el.getBoundingClientRect().right > innerWidth + 1)
  .filter((el) => el.parentElement.getBoundingClientRect().right <= innerWidth + 1)
  .slice(0, 5)
  .map((el) => `${el.tagName.toLowerCase()}.${[...el.classList].join(".")}`
               + ` (${Math.round(el.getBoundingClientRect().right)} px)`)
"""


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_the_window_and_passes_axe(page: Page, temurin, width):
    page.set_viewport_size({"width": width, "height": 900})
    failures = {}
    for visit in visits(temurin):
        response = page.goto(visit.url)
        assert response.status == 200, (visit.url, response.status)
        visit.prepare(page)
        shot(page, f"layout-{visit.name}-{width}")
        if found := problems_of(page, width):
            failures[visit.name] = found
    assert not failures, "\n".join(f"{name}: {text}" for name, found in failures.items() for text in found)


def test_every_page_links_to_the_api_docs_which_load_under_the_csp(page: Page):
    page.goto("/accounts/login/")
    footer = page.get_by_role("contentinfo")
    schema = footer.get_by_role("link", name="OpenAPI schema")
    expect(schema).to_have_attribute("href", "/api/v1/openapi.json")
    footer.get_by_role("link", name="API docs").click()
    page.wait_for_url("**/api/v1/docs")
    # Swagger UI renders the public instance's operations: a lock only on those that declare
    # credentials even there (the staff-only ones), none on the reads anyone may make.
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    schema = page.request.get("/api/v1/openapi.json").json()
    operations = [operation for path in schema["paths"].values() for operation in path.values()]
    locked = sum(bool(operation.get("security")) for operation in operations)
    assert 0 < locked < len(operations)
    expect(page.locator(".authorization__btn")).to_have_count(locked)
    path = page.locator('.opblock-summary-path[data-path="/api/v1/repositories"]')
    repositories = page.locator(".opblock-get", has=path)
    expect(repositories).to_have_count(1)
    expect(repositories.locator(".authorization__btn")).to_have_count(0)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_header_keeps_the_brand_and_every_link_on_one_line(page: Page, width):
    """On a phone the search box takes the whole next line; on a desktop all three share one."""
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/accounts/login/")
    brand, nav, search = (
        page.locator(f"header.top {part}").bounding_box() for part in (".brand", "nav", "form.search")
    )
    assert nav["y"] < brand["y"] + brand["height"] and brand["y"] < nav["y"] + nav["height"], (brand, nav)
    assert nav["x"] + nav["width"] <= width
    if width < 700:
        assert search["y"] >= nav["y"] + nav["height"] and search["width"] >= width - 40, search
    else:
        assert brand["x"] + brand["width"] < search["x"] < search["x"] + search["width"] < nav["x"], (
            brand,
            search,
            nav,
        )

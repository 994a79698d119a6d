"""`platformctl marketplace build`: the static site rendered by a real headless Chromium (Debian's package): the
index renders, a category page shows only its category, every link resolves, and no script from a spec runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest
import yaml

from tests.integrations.conftest import integration_doc

HOSTILE_NAME = '<script>document.documentElement.setAttribute("data-pwned","name")</script>Cal'
HOSTILE_DESCRIPTION = (
    "Syncs. <img src=x onerror=\"document.documentElement.setAttribute('data-pwned','img')\">"
    "<script>document.documentElement.setAttribute('data-pwned','description')</script>"
)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run does it)")
    return found


def render(url: str, profile: Path) -> str:
    """The DOM after Chromium loaded the page (and ran whatever script it would run)."""
    result = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",  # tests may run as root, where Chromium's sandbox refuses to start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--allow-file-access-from-files",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=2000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.articles: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("a", "link") and values.get("href"):
            self.hrefs.append(values["href"] or "")
        if tag == "article":
            self.articles.append(values.get("data-category") or "")
        if tag in ("script", "img", "iframe"):
            self.scripts += 1


def parsed(dom: str) -> Links:
    links = Links()
    links.feed(dom)
    return links


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with two published integrations (one hostile in name and description), built into a site."""
    from cli.app import main
    from scripts.fleet import copy_repo
    from tests.conftest import ROOT
    from tests.integrations.conftest import published_calsync

    tmp = tmp_path_factory.mktemp("site")
    root = copy_repo(ROOT, tmp / "repo")
    published_calsync(root)
    hostile = integration_doc(
        id="crm-bridge",
        name=HOSTILE_NAME,
        description=HOSTILE_DESCRIPTION,
        category="crm",
        scopes=["calls:read", "knowledge:read"],
        pricing=None,
    )
    spec = tmp / "crm-bridge.yaml"
    spec.write_text(yaml.safe_dump(hostile))
    results = tmp / "results"
    results.mkdir()
    (results / "calsync.json").write_text(
        json.dumps({"passed": True, "p95_seconds": 0.21, "rps": 180.0, "error_rate": 0.0, "checked_at": "2026-12-06"})
    )
    for args in (
        ["integration", "submit", str(spec), "--yes"],
        ["integration", "approve", "crm-bridge", "--reviewer", "Dana Reviewer"],
        ["integration", "publish", "crm-bridge", "--no-apply"],
        ["marketplace", "build", "--out", str(tmp / "out"), "--results", str(results)],
    ):
        assert main(["--root", str(root), *args]) == 0, args
    return tmp / "out"


def test_marketplace_json_lists_each_published_integration(site: Path) -> None:
    doc = json.loads((site / "marketplace.json").read_text())
    by_id = {i["id"]: i for i in doc["integrations"]}
    assert set(by_id) == {"calsync", "crm-bridge"}
    calsync = by_id["calsync"]
    assert calsync["pricing"] == {"EUR": 900, "USD": 1000}
    assert calsync["installs"] == 1 and calsync["conformance"]["passed"] is True
    assert calsync["scopes"][1] == {
        "scope": "scheduling:write",
        "description": "Book, move and cancel your appointments",
    }
    assert by_id["crm-bridge"]["name"] == HOSTILE_NAME  # data for machines, kept as given; pages escape it


def test_index_renders_with_every_integration_in_a_real_browser(site: Path, tmp_path: Path) -> None:
    dom = render((site / "index.html").as_uri(), tmp_path / "profile")
    page = parsed(dom)
    assert sorted(page.articles) == ["calendar", "crm"]
    assert "CalSync" in dom and "9.00 EUR / month, 10.00 USD / month" in dom and "Free" in dom


def test_category_page_shows_only_its_category(site: Path, tmp_path: Path) -> None:
    dom = render((site / "category" / "calendar.html").as_uri(), tmp_path / "profile")
    assert parsed(dom).articles == ["calendar"]
    dom = render((site / "category" / "crm.html").as_uri(), tmp_path / "profile")
    assert parsed(dom).articles == ["crm"]


def test_every_link_resolves(site: Path, tmp_path: Path) -> None:
    seen: set[str] = set()
    queue = [(site / "index.html").as_uri()]
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        path = Path(urlparse(url).path)
        assert path.is_file(), f"broken link: {url}"
        if path.suffix != ".html":
            continue
        for href in parsed(render(url, tmp_path / "profile")).hrefs:
            target = urldefrag(urljoin(url, href)).url
            assert target.startswith("file://"), f"{url} links outside the site: {href}"
            queue.append(target)
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    reached = {Path(urlparse(u).path).relative_to(site).as_posix() for u in seen if u.endswith(".html")}
    assert reached == pages  # every page is reachable from the index


def test_no_script_from_a_spec_runs_or_reaches_a_page(site: Path, tmp_path: Path) -> None:
    for page in ("index.html", "category/crm.html", "integrations/crm-bridge.html"):
        dom = render((site / page).as_uri(), tmp_path / "profile")
        (root_tag,) = re.findall(r"<html[^>]*>", dom)
        assert "data-pwned" not in root_tag  # no script or handler ran and set it
        assert parsed(dom).scripts == 0  # no script, img or iframe element came from the spec
        assert "&lt;script&gt;" in dom  # the text is shown, escaped
    raw = (site / "integrations" / "crm-bridge.html").read_text()
    assert "<script" not in raw and "<img" not in raw
    assert "default-src 'none'" in raw  # and the page's policy would block any script anyway

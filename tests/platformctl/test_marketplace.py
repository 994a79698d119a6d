"""`platformctl marketplace build`: the static site rendered by a real headless Chromium (Debian's package): the
index renders, a category page shows only its category, every link resolves, and no script from a spec runs.
Install counts and conformance results come from two regional warehouses (embedded fakesnow), hostile rows
included: rows in, figures on the pages and in marketplace.json."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest
import yaml

from tests.integrations.conftest import integration_doc

HOSTILE_NAME = '<script>document.documentElement.setAttribute("data-pwned","name")</script>Cal'
HOSTILE_ROW = '<script>document.documentElement.setAttribute("data-pwned","warehouse")</script>'
CALSYNC_DIGEST = "sha256:3f1c9a4e5b6d7c8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6"
EARLIER_DIGEST = "sha256:" + "0" * 64
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


def install(partner: str, integration: str, removed: str | None = None) -> dict[str, object]:
    """An INSTALLS row as the partner and integration stacks write it."""
    return {
        "INSTALL_ID": f"{partner}/{integration}",
        "PARTNER_ID": partner,
        "INTEGRATION_ID": integration,
        "DEVELOPER_ID": "tempo-labs",
        "CURRENCY": "EUR",
        "MINOR_UNITS": 2,
        "MONTHLY_MINOR": 900,
        "INSTALLED_ON": "2026-11-01",
        "REMOVED_ON": removed,
    }


def result(
    integration: str, region: str, checked_at: str, passed: bool, digest: str = CALSYNC_DIGEST
) -> dict[str, object]:
    """A CONFORMANCE_RESULTS row as the conformance job writes it."""
    from foundation.marketplace_queries import conformance_result_id

    return {
        "RESULT_ID": conformance_result_id(integration, region, digest, checked_at),
        "INTEGRATION_ID": integration,
        "REGION": region,
        "CHECKED_AT": checked_at,
        "P95_MS": 210.0 if passed else 1450.5,
        "REQUESTS_PER_SECOND": 180.0,
        "ERROR_RATE": 0.0 if passed else 0.025,
        "REQUESTS": 5400,
        "PASSED": passed,
        "IMAGE_DIGEST": digest,
    }


def fill(directory: Path, installs: list[dict[str, object]], results: list[dict[str, object]]) -> str:
    """Rows into an embedded warehouse (the tables the region stacks deploy); returns its URL."""
    from foundation.warehouse_schema import CONFORMANCE_RESULTS, INSTALLS
    from services import warehouse

    url = f"local:{directory}"
    conn = warehouse.connect(url)
    try:
        warehouse.ensure_schema(conn)
        warehouse.merge_rows(conn, INSTALLS, installs)
        warehouse.merge_rows(conn, CONFORMANCE_RESULTS, results)
    finally:
        conn.close()
    return url


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
    # eu-central's warehouse: calsync's installs (one removed), crm-bridge's, a hostile integration id; calsync's
    # runs there (the later one counts), a run under a hostile region and one for an integration not listed.
    europe = fill(
        tmp / "warehouse-eu",
        [
            install("acme-voice", "calsync"),
            install("beta-dental", "calsync", removed="2026-11-20"),
            install("acme-voice", "crm-bridge"),
            install("zeta-law", "crm-bridge"),
            install("acme-voice", HOSTILE_ROW),
        ],
        [
            result("calsync", "eu-central", "2026-12-01T09:00:00+00:00", passed=False),
            result("calsync", "eu-central", "2026-12-05T09:00:00+00:00", passed=True),
            result("crm-bridge", HOSTILE_ROW, "2026-12-05T09:00:00+00:00", passed=True, digest=HOSTILE_ROW),
            result("crm-bridge", "us-east", "2026-12-05T10:00:00+00:00", passed=False, digest=HOSTILE_ROW),
            result(HOSTILE_ROW, "eu-central", "2026-12-05T09:00:00+00:00", passed=True),
        ],
    )
    # us-east's: zeta-law's crm-bridge install again (recorded in both regions: counted once); calsync's us-east run
    # measured an earlier image.
    america = fill(
        tmp / "warehouse-us",
        [install("zeta-law", "crm-bridge")],
        [result("calsync", "us-east", "2026-12-04T09:00:00+00:00", passed=True, digest=EARLIER_DIGEST)],
    )
    warehouses = ["--warehouse", europe, "--warehouse", america]
    for args in (
        ["integration", "submit", str(spec), "--yes"],
        ["integration", "approve", "crm-bridge", "--reviewer", "Dana Reviewer"],
        ["integration", "publish", "crm-bridge", "--no-apply"],
        ["marketplace", "build", "--out", str(tmp / "out"), "--results", str(results), *warehouses],
    ):
        assert main(["--root", str(root), *args]) == 0, args
    return tmp / "out"


@pytest.fixture(scope="module")
def rendered(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """`rendered(url)`: the DOM Chromium renders for a page of `site`, once per module (each page in a fresh profile).
    The site is built once and never changed, so the tests that assert on the same page read the same render."""
    doms: dict[str, str] = {}

    def of(url: str) -> str:
        if url not in doms:
            doms[url] = render(url, tmp_path_factory.mktemp("profile"))
        return doms[url]

    return of


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


def test_index_renders_with_every_integration_in_a_real_browser(site: Path, rendered: Callable[[str], str]) -> None:
    dom = rendered((site / "index.html").as_uri())
    page = parsed(dom)
    assert sorted(page.articles) == ["calendar", "crm"]
    assert "CalSync" in dom and "9.00 EUR / month, 10.00 USD / month" in dom and "Free" in dom


def test_category_page_shows_only_its_category(site: Path, rendered: Callable[[str], str]) -> None:
    dom = rendered((site / "category" / "calendar.html").as_uri())
    assert parsed(dom).articles == ["calendar"]
    dom = rendered((site / "category" / "crm.html").as_uri())
    assert parsed(dom).articles == ["crm"]


def test_every_link_resolves(site: Path, rendered: Callable[[str], str]) -> None:
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
        for href in parsed(rendered(url)).hrefs:
            target = urldefrag(urljoin(url, href)).url
            assert target.startswith("file://"), f"{url} links outside the site: {href}"
            queue.append(target)
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    reached = {Path(urlparse(u).path).relative_to(site).as_posix() for u in seen if u.endswith(".html")}
    assert reached == pages  # every page is reachable from the index


def test_no_script_from_a_spec_runs_or_reaches_a_page(site: Path, rendered: Callable[[str], str]) -> None:
    for page in ("index.html", "category/crm.html", "integrations/crm-bridge.html"):
        dom = rendered((site / page).as_uri())
        (root_tag,) = re.findall(r"<html[^>]*>", dom)
        assert "data-pwned" not in root_tag  # no script or handler ran and set it
        assert parsed(dom).scripts == 0  # no script, img or iframe element came from the spec
        assert "&lt;script&gt;" in dom  # the text is shown, escaped
    raw = (site / "integrations" / "crm-bridge.html").read_text()
    assert "<script" not in raw and "<img" not in raw
    assert "default-src 'none'" in raw  # and the page's policy would block any script anyway


def test_install_counts_and_conformance_come_from_the_warehouses(site: Path) -> None:
    doc = json.loads((site / "marketplace.json").read_text())
    by_id = {i["id"]: i for i in doc["integrations"]}
    assert set(by_id) == {"calsync", "crm-bridge"}  # a hostile id in the warehouse lists nothing
    assert by_id["calsync"]["installs"] == 1  # beta-dental removed it
    assert by_id["crm-bridge"]["installs"] == 2  # zeta-law's install, in two regions' warehouses, counts once
    regions = by_id["calsync"]["conformance"]["regions"]
    assert set(regions) == {"eu-central", "us-east", "unspecified"}  # the results folder's file names no region
    europe = regions["eu-central"]
    assert europe["passed"] is True and europe["checked_at"] == "2026-12-05T09:00:00+00:00"  # the latest run
    assert (europe["p95_ms"], europe["requests_per_second"], europe["error_rate"]) == (210.0, 180.0, 0.0)
    assert europe["image_digest"] == CALSYNC_DIGEST and europe["current_image"] is True
    assert regions["us-east"]["current_image"] is False
    # Its row under a region it is not offered in is dropped; the us-east row's hostile digest is not kept.
    crm = by_id["crm-bridge"]["conformance"]
    assert crm["passed"] is False and set(crm["regions"]) == {"us-east"}
    assert crm["regions"]["us-east"]["image_digest"] == "" and crm["regions"]["us-east"]["current_image"] is False


def test_the_pages_show_the_warehouse_figures(site: Path, rendered: Callable[[str], str]) -> None:
    dom = rendered((site / "integrations" / "calsync.html").as_uri())
    assert 'data-installs="1"' in dom
    assert 'eu-central: <span class="pass">passed</span> (p95 210.0 ms, 180.0 requests/s, 0.00 % errors' in dom
    assert "an earlier image was measured" in dom
    index = rendered((site / "index.html").as_uri())
    assert "2 installs · conformance failed" in index and "1 install · conformance passed" in index
    dom = rendered((site / "integrations" / "crm-bridge.html").as_uri())
    assert 'us-east: <span class="fail">failed</span> (p95 1450.5 ms, 180.0 requests/s, 2.50 % errors' in dom
    assert "the measured image is not recorded" in dom


def test_no_hostile_warehouse_row_reaches_a_page(site: Path, rendered: Callable[[str], str]) -> None:
    for page in sorted(site.rglob("*.html")):
        raw = page.read_text()
        assert "<script" not in raw
        assert "warehouse" not in raw  # the hostile row's text is nowhere, not even escaped
    dom = rendered((site / "integrations" / "crm-bridge.html").as_uri())
    (root_tag,) = re.findall(r"<html[^>]*>", dom)
    assert "data-pwned" not in root_tag
    assert HOSTILE_ROW not in (site / "marketplace.json").read_text()


def test_a_results_folder_that_is_not_there_is_refused(cli, repo_copy: Path, tmp_path: Path) -> None:
    """It was silently ignored (an empty listing looked like "not measured"): now exit 2 naming --results, and the
    site folder is not made."""
    out = tmp_path / "out"
    run = cli("marketplace", "build", "--out", str(out), "--results", str(tmp_path / "nowhere"), code=2, root=repo_copy)
    assert "--results" in run.err and "nowhere" in run.err
    assert not out.exists()


def test_a_warehouse_url_of_another_kind_is_refused(cli, repo_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = cli(
        "marketplace", "build", "--out", str(out), "--warehouse", "mysql://root:hunter2@db/x", code=2, root=repo_copy
    )
    assert "--warehouse" in run.err and "hunter2" not in run.err and not out.exists()


def test_without_a_warehouse_option_the_local_one_is_read(cli, repo_copy: Path, tmp_path: Path) -> None:
    """The default, local:.platformctl/warehouse, is the repository's (not the working folder's); --json says so."""
    from tests.integrations.conftest import published_calsync

    published_calsync(repo_copy)
    fill(repo_copy / ".platformctl" / "warehouse", [install("acme-voice", "calsync")], [])
    run = cli("marketplace", "build", "--out", str(tmp_path / "out"), "--json", root=repo_copy)
    assert json.loads(run.out)["warehouses"] == ["local:.platformctl/warehouse"]
    doc = json.loads((tmp_path / "out" / "marketplace.json").read_text())
    assert [(i["id"], i["installs"]) for i in doc["integrations"]] == [("calsync", 1)]


@pytest.mark.parametrize("inside", [".", "stacks", "integrations", "components/site", ".git/site", ".platformctl"])
def test_the_site_is_never_written_into_the_project_s_own_folders(cli, repo_copy: Path, inside: str) -> None:
    """`--out .` wrote index.html and marketplace.json beside Pulumi.yaml and pages into integrations/ beside the
    specs; `--out stacks` put them among the stack files. The project root and its folders of specs, stacks and code
    are refused (exit 2 naming --out), nothing written; a folder of its own under the root (`--out site`) is fine."""
    (repo_copy / ".git").mkdir(exist_ok=True)

    def files() -> set[str]:
        return {str(f.relative_to(repo_copy)) for f in repo_copy.rglob("*") if f.is_file()}

    before = files()
    run = cli("marketplace", "build", "--out", str(repo_copy / inside), code=2, root=repo_copy)
    assert "--out" in run.err and "project" in run.err, run.err
    assert files() == before
    cli("marketplace", "build", "--out", str(repo_copy / "site"), root=repo_copy)
    cli("marketplace", "build", "--out", str(repo_copy / "site"), root=repo_copy)  # a rebuild of its own site
    assert (repo_copy / "site" / "index.html").is_file()


def test_a_local_warehouse_that_is_not_there_is_refused_and_not_made(cli, repo_copy: Path, tmp_path: Path) -> None:
    """A mistyped `--warehouse local:DIR` made an empty warehouse there (a read command writing a 270 kB database
    wherever it was pointed) and listed every integration with 0 installs: now exit 2 naming --warehouse, nothing
    made. The repository's own default warehouse not made yet reads as nothing measured, and is not made either."""
    out, typo = tmp_path / "out", tmp_path / "no-such" / "warehouse"
    run = cli("marketplace", "build", "--out", str(out), "--warehouse", f"local:{typo}", code=2, root=repo_copy)
    assert "--warehouse" in run.err and str(typo) in run.err
    assert not (tmp_path / "no-such").exists() and not out.exists()
    shutil.rmtree(repo_copy / ".platformctl", ignore_errors=True)
    cli("marketplace", "build", "--out", str(out), root=repo_copy)
    assert (out / "index.html").is_file() and not (repo_copy / ".platformctl" / "warehouse").exists()

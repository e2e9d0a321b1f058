"""The vendored front end: files match their manifest, and nothing is loaded from elsewhere."""

from __future__ import annotations

import hashlib
import json
import re
from importlib.resources import files
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = Path(str(files("htmxchat")))
VENDOR = PACKAGE / "static" / "vendor"


def manifest() -> list[dict[str, str]]:
    return json.loads((VENDOR / "manifest.json").read_text())["files"]


def test_manifest_pins_the_agreed_versions() -> None:
    versions = {entry["package"]: entry["version"] for entry in manifest()}
    assert versions == {"htmx.org": "2.0.11", "htmx-ext-ws": "2.0.4"}
    lock = json.loads((ROOT / "assets" / "vendor" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/htmx.org"]["version"] == "2.0.11"
    assert lock["packages"]["node_modules/htmx-ext-ws"]["version"] == "2.0.4"


def test_vendored_files_match_their_sha256_and_license() -> None:
    for entry in manifest():
        data = (VENDOR / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
        assert entry["version"] in entry["file"], "the version belongs in the file name"
        assert entry["license"] == "0BSD"
        assert "Zero-Clause BSD" in (VENDOR / entry["license_file"]).read_text() or (
            "BSD Zero Clause" in (VENDOR / entry["license_file"]).read_text()
        )
    assert 'version:"2.0.11"' in (VENDOR / "htmx-2.0.11.min.js").read_text().replace(" ", "")


def test_no_template_or_static_file_refers_to_another_host() -> None:
    own_files = [
        *PACKAGE.joinpath("templates").glob("*.html"),
        *(p for p in PACKAGE.joinpath("static").glob("*") if p.is_file()),
    ]
    assert own_files
    for path in own_files:
        # An SVG namespace is an identifier, not something the browser fetches.
        text = path.read_text().replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path
        assert "@import" not in text and "url(http" not in text, path


def test_every_vendored_script_in_the_page_exists() -> None:
    base = (PACKAGE / "templates" / "base.html").read_text()
    scripts = re.findall(r"static_url\('([^']+\.js)'\)", base)
    assert "vendor/htmx-2.0.11.min.js" in scripts and "vendor/htmx-ext-ws-2.0.4.js" in scripts
    for script in scripts:
        assert (PACKAGE / "static" / script).is_file()

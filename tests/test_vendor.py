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
    assert versions == {
        "htmx.org": "2.0.11",
        "htmx-ext-ws": "2.0.4",
        "@fontsource/stix-two-math": "5.3.0",
    }
    lock = json.loads((ROOT / "assets" / "vendor" / "package-lock.json").read_text())
    for package, version in versions.items():
        assert lock["packages"][f"node_modules/{package}"]["version"] == version


def test_vendored_files_match_their_sha256_and_license() -> None:
    for entry in manifest():
        data = (VENDOR / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
        assert entry["version"] in entry["file"], "the version belongs in the file name"
        license_text = (VENDOR / entry["license_file"]).read_text()
        if entry["file"].endswith(".woff2"):
            assert entry["license"] == "OFL-1.1"
            assert "SIL Open Font License, Version 1.1" in license_text
            assert data[:4] == b"wOF2"
        else:
            assert entry["license"] == "0BSD"
            assert "Zero-Clause BSD" in license_text or "BSD Zero Clause" in license_text
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


def test_the_math_font_is_served_from_the_package() -> None:
    """Formulas are laid out with the vendored OpenType MATH font, never a system or remote one."""
    css = (PACKAGE / "static" / "markdown.css").read_text()
    fonts = re.findall(r"url\(\"?([^)\"]+)\"?\)", css)
    assert fonts == ["vendor/stix-two-math-5.3.0.woff2"]
    assert (PACKAGE / "static" / fonts[0]).is_file()


def test_every_vendored_script_in_the_page_exists() -> None:
    base = (PACKAGE / "templates" / "base.html").read_text()
    scripts = re.findall(r"static_url\('([^']+\.js)'\)", base)
    assert "vendor/htmx-2.0.11.min.js" in scripts and "vendor/htmx-ext-ws-2.0.4.js" in scripts
    for script in scripts:
        assert (PACKAGE / "static" / script).is_file()

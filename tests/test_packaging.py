"""Build the wheel, install it into a fresh venv, and run the installed `htmxchat`."""

from __future__ import annotations

import site
import subprocess
import sys
import urllib.request
import venv
import zipfile
from pathlib import Path

from tests.helpers import ROOT


def test_wheel_installs_and_serves(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("htmxchat-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "htmxchat/templates/_message.html",
        "htmxchat/static/app.js",
        "htmxchat/static/vendor/htmx-2.0.11.min.js",
        "htmxchat/static/vendor/htmx-ext-ws-2.0.4.js",
        "htmxchat/static/vendor/manifest.json",
        "htmxchat/static/vendor/stix-two-math-5.3.0.woff2",
    ):
        assert needed in names
    assert not any(name.startswith("tests/") for name in names)

    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    python = target / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # The dependencies come from this test environment (no network needed): the new venv's own
    # site-packages, holding the wheel's htmxchat, stays first on sys.path.
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "test-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")

    where = subprocess.run(
        [python, "-c", "import htmxchat; print(htmxchat.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout
    assert where.startswith(str(target))

    process = subprocess.Popen(
        [
            target / "bin" / "htmxchat",
            "--no-browser",
            "--port",
            "0",
            "--data-dir",
            tmp_path / "data",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        url = ""
        for _ in range(5):
            line = process.stdout.readline()
            if line.startswith("http://"):
                url = line.strip()
                break
        assert url.startswith("http://127.0.0.1:"), process.stderr
        base, _, token = url.partition("?token=")
        headers = {"Authorization": f"Bearer {token}"}
        for path, expected in (("", b'hx-ext="ws"'), ("static/vendor/htmx-ext-ws-2.0.4.js", b"")):
            request = urllib.request.Request(base + path, headers=headers)
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200 and expected in response.read()
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
        assert process.returncode == 0, err

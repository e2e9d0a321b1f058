"""Render htmxchat/static/icon.svg to the PNG icons the desktop entry installs.

Run once after changing the SVG (the PNGs are committed): `python assets/render_icons.py`.
Needs a Chromium-family browser (HTMXCHAT_BROWSER, else /usr/bin/chromium) for the headless
screenshot; pass extra browser flags (e.g. --no-sandbox as root) in HTMXCHAT_BROWSER_ARGS.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SVG = ROOT / "htmxchat" / "static" / "icon.svg"
OUT = ROOT / "htmxchat" / "icons"
# Headless Chromium will not make a window narrower than 128 px; desktops scale these down.
SIZES = (128, 256)


def render(browser: str, size: int, target: Path) -> None:
    """Screenshot the SVG on a transparent page of exactly size x size pixels."""
    page = (
        "<!doctype html><html><head><style>html,body{margin:0;background:transparent}"
        "img{display:block;width:256px;height:256px}</style></head>"
        f'<body><img src="{SVG.as_uri()}"></body></html>'
    )
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "icon.html"
        html.write_text(page, encoding="utf-8")
        subprocess.run(
            [
                browser,
                "--headless",
                "--disable-gpu",
                "--hide-scrollbars",
                "--default-background-color=00000000",
                f"--user-data-dir={tmp}/profile",
                # Headless windows have a minimum size: lay out at 256 px, scale the pixels.
                "--window-size=256,256",
                f"--force-device-scale-factor={size / 256}",
                f"--screenshot={target}",
                *shlex.split(os.environ.get("HTMXCHAT_BROWSER_ARGS", "")),
                html.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )


def main() -> None:
    """Write htmxchat/icons/htmxchat-<N>.png for every size."""
    browser = os.environ.get("HTMXCHAT_BROWSER", "/usr/bin/chromium")
    OUT.mkdir(exist_ok=True)
    for size in SIZES:
        target = OUT / f"htmxchat-{size}.png"
        render(browser, size, target)
        print(f"wrote {target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

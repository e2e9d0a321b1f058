#!/usr/bin/env bash
# Re-vendor htmx, its ws extension and the math font (STIX Two Math, an OpenType MATH font
# the browser lays formulas out with) from the versions pinned in package-lock.json.
# Usage: edit the versions in package.json, run `npm install --package-lock-only`, then
#        bash assets/vendor/update.sh   (from the repository root; needs npm and python3)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="$here/../../htmxchat/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
htmx_v="$(node -p "require('$work/node_modules/htmx.org/package.json').version")"
ws_v="$(node -p "require('$work/node_modules/htmx-ext-ws/package.json').version")"
font_v="$(node -p "require('$work/node_modules/@fontsource/stix-two-math/package.json').version")"
rm -f "$dest"/htmx-*.js "$dest"/htmx-*.LICENSE "$dest"/stix-two-math-*
cp "$work/node_modules/htmx.org/dist/htmx.min.js" "$dest/htmx-$htmx_v.min.js"
cp "$work/node_modules/htmx.org/LICENSE" "$dest/htmx-$htmx_v.LICENSE"
cp "$work/node_modules/htmx-ext-ws/dist/ws.js" "$dest/htmx-ext-ws-$ws_v.js"
cp "$work/node_modules/htmx-ext-ws/LICENSE" "$dest/htmx-ext-ws-$ws_v.LICENSE"
font_src="files/stix-two-math-latin-400-normal.woff2" # the whole font: every glyph and its MATH table
cp "$work/node_modules/@fontsource/stix-two-math/$font_src" "$dest/stix-two-math-$font_v.woff2"
cp "$work/node_modules/@fontsource/stix-two-math/LICENSE" "$dest/stix-two-math-$font_v.LICENSE"
python3 - "$dest" "$htmx_v" "$ws_v" "$font_v" "$font_src" <<'PY'
import hashlib, json, pathlib, sys
dest, htmx_v, ws_v, font_v, font_src = pathlib.Path(sys.argv[1]), *sys.argv[2:]
def entry(package, version, file, source, license="0BSD"):
    data = (dest / file).read_bytes()
    stem = file.removesuffix(".min.js").removesuffix(".js").removesuffix(".woff2")
    return {"package": package, "version": version, "file": file, "source": source,
            "sha256": hashlib.sha256(data).hexdigest(), "license": license,
            "license_file": stem + ".LICENSE"}
manifest = {"files": [
    entry("htmx.org", htmx_v, f"htmx-{htmx_v}.min.js", "dist/htmx.min.js"),
    entry("htmx-ext-ws", ws_v, f"htmx-ext-ws-{ws_v}.js", "dist/ws.js"),
    entry("@fontsource/stix-two-math", font_v, f"stix-two-math-{font_v}.woff2", font_src,
          license="OFL-1.1"),
]}
(dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
PY
echo "vendored htmx.org $htmx_v, htmx-ext-ws $ws_v and STIX Two Math $font_v; update the <script> tags in htmxchat/templates/base.html and the @font-face in htmxchat/static/markdown.css"

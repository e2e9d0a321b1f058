#!/usr/bin/env bash
# Re-vendor htmx and its ws extension from the versions pinned in package-lock.json.
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
rm -f "$dest"/htmx-*.js "$dest"/htmx-*.LICENSE
cp "$work/node_modules/htmx.org/dist/htmx.min.js" "$dest/htmx-$htmx_v.min.js"
cp "$work/node_modules/htmx.org/LICENSE" "$dest/htmx-$htmx_v.LICENSE"
cp "$work/node_modules/htmx-ext-ws/dist/ws.js" "$dest/htmx-ext-ws-$ws_v.js"
cp "$work/node_modules/htmx-ext-ws/LICENSE" "$dest/htmx-ext-ws-$ws_v.LICENSE"
python3 - "$dest" "$htmx_v" "$ws_v" <<'PY'
import hashlib, json, pathlib, sys
dest, htmx_v, ws_v = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
def entry(package, version, file, source):
    data = (dest / file).read_bytes()
    return {"package": package, "version": version, "file": file, "source": source,
            "sha256": hashlib.sha256(data).hexdigest(), "license": "0BSD",
            "license_file": file.replace(".min.js", ".js").removesuffix(".js") + ".LICENSE"}
manifest = {"files": [
    entry("htmx.org", htmx_v, f"htmx-{htmx_v}.min.js", "dist/htmx.min.js"),
    entry("htmx-ext-ws", ws_v, f"htmx-ext-ws-{ws_v}.js", "dist/ws.js"),
]}
(dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
PY
echo "vendored htmx.org $htmx_v and htmx-ext-ws $ws_v; update the <script> tags in htmxchat/templates/base.html"

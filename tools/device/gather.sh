#!/usr/bin/env bash
# Gather, HERE (a machine with PyPI), everything the GPU machine lacks to run
# tools/device/run_check.sh: the wheels of the OpenMMLab toolboxes and their
# pure-Python dependencies for CPython 3.12 / manylinux x86_64, and the mmcv
# source (built there against the machine's own CUDA torch). The list is
# tools/device/bundle.txt; the folder (git-ignored) travels with the device
# call's `carry`, and a call carries at most 64 MiB.
#
#   bash tools/device/gather.sh [--dry-run] [DIR]     (DIR: .device_bundle)
#
# --dry-run resolves every file as pip would (same tags) and prints its name
# and size from PyPI's index, downloading nothing.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LIST="$ROOT/tools/device/bundle.txt"
DRY=0
DIR=
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "gather.sh: unknown option $arg (use --dry-run)" >&2; exit 2 ;;
    *) DIR=$arg ;;
  esac
done
DIR=${DIR:-$ROOT/.device_bundle}
LIMIT=$((64 * 1024 * 1024))
PY=${PYTHON:-python3}
# the device machine's interpreter and platform (KINDS.md: Python 3.12.3, x86-64)
TARGET=(--python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
        --platform manylinux1_x86_64 --platform any)

wheels=() sdists=()
while read -r kind spec _; do
  case "$kind" in
    ''|'#'*) continue ;;
    wheel) wheels+=("$spec") ;;
    sdist) sdists+=("$spec") ;;
    *) echo "gather.sh: $LIST: unknown kind '$kind' (wheel or sdist)" >&2; exit 2 ;;
  esac
done < "$LIST"

if [ "$DRY" = 1 ]; then
  # pip resolves the exact files (same tags as the download) and reports their
  # URLs without fetching them; the sizes come from PyPI's simple index (JSON).
  report=$(mktemp)
  trap 'rm -f "$report"' EXIT
  "$PY" -m pip install -q --dry-run --ignore-installed --no-deps --only-binary=:all: \
    "${TARGET[@]}" --target /nonexistent --report "$report" "${wheels[@]}"
  "$PY" - "$report" "$LIMIT" "${sdists[@]}" <<'PYEOF'
import json, sys, urllib.request

report, limit, sdists = sys.argv[1], int(sys.argv[2]), sys.argv[3:]


def sizes(name):
    """filename -> size of every file of ``name`` on PyPI (PEP 691 JSON)."""
    req = urllib.request.Request(f'https://pypi.org/simple/{name}/',
                                 headers={'Accept': 'application/vnd.pypi.simple.v1+json'})
    with urllib.request.urlopen(req, timeout=60) as r:
        return {f['filename']: f.get('size') or 0 for f in json.load(r)['files']}


rows = []
for item in json.load(open(report))['install']:
    meta = item['metadata']
    url = item['download_info']['url']
    fname = url.rsplit('/', 1)[-1].split('#')[0]
    rows.append((fname, sizes(meta['name'])[fname]))
for spec in sdists:
    name, version = spec.split('==')
    fname, size = next((f, n) for f, n in sizes(name).items()
                       if f.startswith(f'{name}-{version}.') and f.endswith(('.tar.gz', '.zip')))
    rows.append((fname, size))
total = sum(s for _, s in rows)
for f, s in rows:
    print(f'{s / 2**20:8.2f} MiB  {f}')
print(f'{total / 2**20:8.2f} MiB  in all ({len(rows)} files; a device call carries at most '
      f'{limit / 2**20:.0f} MiB)')
sys.exit(0 if total <= limit else 1)
PYEOF
  exit $?
fi

mkdir -p "$DIR"
rm -f "$DIR"/*.whl "$DIR"/*.tar.gz "$DIR"/*.zip
"$PY" -m pip download -q --no-deps --only-binary=:all: "${TARGET[@]}" -d "$DIR" "${wheels[@]}"
# sources straight from the index (pip download would run their setup.py here)
"$PY" - "$DIR" "${sdists[@]}" <<'PYEOF'
import hashlib, json, os, sys, urllib.request

out, specs = sys.argv[1], sys.argv[2:]
for spec in specs:
    name, version = spec.split('==')
    req = urllib.request.Request(f'https://pypi.org/simple/{name}/',
                                 headers={'Accept': 'application/vnd.pypi.simple.v1+json'})
    with urllib.request.urlopen(req, timeout=60) as r:
        files = json.load(r)['files']
    f = next(f for f in files if f['filename'] == f'{name}-{version}.tar.gz')
    with urllib.request.urlopen(f['url'], timeout=300) as r:
        data = r.read()
    if hashlib.sha256(data).hexdigest() != f['hashes']['sha256']:
        sys.exit(f'gather.sh: sha256 mismatch for {f["filename"]}')
    with open(os.path.join(out, f['filename']), 'wb') as fh:
        fh.write(data)
PYEOF
# one version of each: two stop the install there
dups=$(ls "$DIR" | sed -E 's/^([A-Za-z0-9_.]+)-[0-9].*/\1/' | tr 'A-Z-' 'a-z_' | sort | uniq -d)
[ -z "$dups" ] || { echo "gather.sh: several versions of: $dups" >&2; exit 1; }
total=$(du -cb "$DIR"/* | tail -1 | cut -f1)
ls -l "$DIR"
echo "gather.sh: $(ls "$DIR" | wc -l) files, $((total / 1024)) KiB in $DIR"
if [ "$total" -gt "$LIMIT" ]; then
  echo "gather.sh: over the 64 MiB a device call can carry" >&2; exit 1
fi

"""The search layer: the Pagefind binary for ``update_search``, as a Lambda layer zip.

Chalice zips one package for every function, so the 10 MB binary would weigh
on the release handler too if it came through ``requirements.txt``. Instead
``make search-layer`` downloads the ``pagefind-bin`` wheel for Lambda's
platform and this module repacks it as a layer: ``python/pagefind_bin/…``,
which Lambda unpacks under ``/opt/python`` (on the import path), with the
binary's execute bit kept. Only ``update_search`` lists the layer
(``.chalice/config.json``); see docs/deploy.md.

    python -m newsroom.layer WHEEL_DIR OUT_ZIP
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

EXECUTABLE = 0o100755
REGULAR = 0o100644
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the same wheel gives the same bytes


def build_layer(wheels: list[Path], out: Path) -> list[str]:
    """Repack ``wheels`` under ``python/`` in ``out``; returns the names written."""
    if not wheels:
        raise SystemExit("no wheel given: download pagefind-bin first (make search-layer)")
    entries: dict[str, tuple[bytes, int]] = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            for info in z.infolist():
                if info.is_dir() or ".dist-info/" in info.filename:
                    continue
                mode = info.external_attr >> 16
                executable = bool(mode & 0o111) or info.filename.endswith("/pagefind")
                entries["python/" + info.filename] = (
                    z.read(info),
                    EXECUTABLE if executable else REGULAR,
                )
    if not any(name.endswith("pagefind_bin/pagefind") for name in entries):
        raise SystemExit("the wheels hold no pagefind_bin/pagefind binary")
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in sorted(entries):
            body, mode = entries[name]
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, body)
    return sorted(entries)


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit(__doc__.strip().splitlines()[-1].strip())
    folder, out = Path(argv[0]), Path(argv[1])
    names = build_layer(sorted(folder.glob("pagefind_bin-*.whl")), out)
    print(f"{out}: {len(names)} files, {out.stat().st_size} bytes")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])

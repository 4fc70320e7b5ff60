"""The search layer zip: the Pagefind binary under python/, still executable."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from newsroom.layer import build_layer


def wheel(path: Path, binary: bytes = b"\x7fELF fake binary") -> Path:
    with zipfile.ZipFile(path, "w") as z:
        exe = zipfile.ZipInfo("pagefind_bin/pagefind")
        exe.external_attr = 0o100755 << 16
        z.writestr(exe, binary)
        z.writestr("pagefind_bin/__init__.py", "def get_executable(): ...\n")
        z.writestr("pagefind_bin-1.5.2.dist-info/RECORD", "")
    return path


def test_the_layer_holds_the_binary_executable_under_python(tmp_path: Path):
    out = tmp_path / "layer.zip"
    names = build_layer([wheel(tmp_path / "pagefind_bin-1.5.2-py3-none-any.whl")], out)
    assert names == ["python/pagefind_bin/__init__.py", "python/pagefind_bin/pagefind"]
    with zipfile.ZipFile(out) as z:
        info = z.getinfo("python/pagefind_bin/pagefind")
        assert stat.S_IMODE(info.external_attr >> 16) == 0o755
        assert z.read(info) == b"\x7fELF fake binary"
        assert (
            stat.S_IMODE(z.getinfo("python/pagefind_bin/__init__.py").external_attr >> 16) == 0o644
        )
    first = out.read_bytes()
    build_layer([wheel(tmp_path / "pagefind_bin-1.5.2-py3-none-any.whl")], out)
    assert out.read_bytes() == first  # the same wheel, the same layer


def test_a_wheel_without_the_binary_is_refused(tmp_path: Path):
    bad = tmp_path / "other-1.0-py3-none-any.whl"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("other/__init__.py", "")
    with pytest.raises(SystemExit, match="no pagefind_bin/pagefind"):
        build_layer([bad], tmp_path / "layer.zip")

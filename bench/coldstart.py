"""Cold start (``python -X importtime``) and the deployment zip's size."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def import_us(statement: str) -> int:
    """Total import time in microseconds: the cumulative times of the top-level
    imports that ``-X importtime`` reports for ``statement``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSROOM_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with .pyc, as Lambda has them
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    total = 0
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self, cumulative, name = line[len("import time:") :].split("|")
        if not name[1:].startswith(" "):  # top level: no extra indentation
            total += int(cumulative)
    return total


def measure_imports(runs: int) -> dict[str, Any]:
    import_us("import app")  # warm the .pyc caches first
    app = [import_us("import app") for _ in range(runs)]
    boto = [import_us("import boto3") for _ in range(runs)]
    a, b = statistics.median(app), statistics.median(boto)
    return {
        "app_ms": a / 1000,
        "boto3_ms": b / 1000,
        "ratio": a / b,
        "runs": runs,
        "app_cmd": f'{Path(sys.executable).name} -X importtime -c "import app"',
        "boto3_cmd": f'{Path(sys.executable).name} -X importtime -c "import boto3"',
    }


# what Chalice reads to package the app (it zips app.py and chalicelib/ whole)
PACKAGED = ("app.py", "chalicelib", ".chalice", "requirements.txt")


def chalice_package(out: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``chalice package --pkg-format terraform OUT`` offline, as field-notes describe:
    no AWS settings of the caller's, no credentials needed; ``OUT/deployment.zip``.
    Packaged from a copy of what Chalice reads, without bytecode caches: Chalice
    zips ``chalicelib/`` whole, so otherwise the zip would hold whatever earlier
    tests compiled into the tree (a clean checkout deploys none)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "NEWSROOM_")) and k != "PYTHONPATH"
    }
    env.update(AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    chalice = Path(sys.executable).with_name("chalice")
    with tempfile.TemporaryDirectory(prefix="newsroom-package-") as tmp:
        project = Path(tmp)
        for name in PACKAGED:
            if (ROOT / name).is_dir():
                shutil.copytree(
                    ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__")
                )
            elif (ROOT / name).exists():
                shutil.copy2(ROOT / name, project / name)
        return subprocess.run(
            [str(chalice), "package", "--pkg-format", "terraform", str(Path(out).resolve())],
            cwd=project, env=env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip


def measure_zip() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "tf"
        proc = chalice_package(out)
        if proc.returncode != 0:
            return {"error": proc.stderr[-1000:]}
        size = (out / "deployment.zip").stat().st_size
    return {
        "bytes": size,
        "mb": size / 1_000_000,
        "cmd": "AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true "
        "chalice package --pkg-format terraform OUT",
    }

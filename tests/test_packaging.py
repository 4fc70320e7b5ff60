"""The Lambda deployment package is complete and small.

``chalice package`` builds the zip Lambda runs (no AWS credentials needed). The
zip is unpacked into an empty folder and ``sync_release`` runs from there in a
separate interpreter whose import path holds only that folder, the standard
library and the SDK the Lambda runtime provides (boto3 and its dependencies).
Templates, the stylesheet and every third-party library must therefore come
from the zip: a file chalice does not ship makes this test fail.

S3 is a moto server on 127.0.0.1 in this process; the child reaches it through
``AWS_ENDPOINT_URL``, as the publisher reads it.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from support import PUBLIC, ROOT, SITE_URL, SOURCE, dumps, make_release, sqs_event

from bench.coldstart import chalice_package

MAX_ZIP_BYTES = 5 * 1024 * 1024
# Tool-only libraries: the CLI, the demo and its local S3 need them; Lambda never does.
TOOL_ONLY = ("click", "moto", "werkzeug", "flask", "newsroom")
# Modules that ship before a handler reaches them, each with the reason. The
# test fails once one is reached, so the entry is removed when it is wired.
NOT_YET_WIRED: dict[str, str] = {}  # shipped modules no handler reaches yet (none)

# What the Lambda Python runtime puts on the path besides the function's code.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")

CHILD = r"""
import json, os, sys

folder, runtime, repo, event_file = sys.argv[1:5]
sys.path[:0] = [folder, runtime]
os.chdir(folder)

import boto3

s3 = boto3.client("s3")
s3.create_bucket(Bucket=os.environ["NEWSROOM_SOURCE_BUCKET"])
s3.create_bucket(Bucket=os.environ["NEWSROOM_PUBLIC_BUCKET"])
with open(os.path.join(os.path.dirname(event_file), "release.json"), "rb") as fh:
    s3.put_object(
        Bucket=os.environ["NEWSROOM_SOURCE_BUCKET"], Key="releases/packaged check.json", Body=fh.read()
    )

import app
import chalicelib

with open(event_file) as fh:
    result = app.sync_release(json.load(fh), None)

public = os.environ["NEWSROOM_PUBLIC_BUCKET"]
keys = sorted(
    o["Key"] for o in s3.list_objects_v2(Bucket=public).get("Contents", [])
)
page = s3.get_object(Bucket=public, Key="releases/packaged-check/index.html")["Body"].read()
stylesheet = [k for k in keys if k.startswith("assets/style.")]
css = s3.get_object(Bucket=public, Key=stylesheet[0])["Body"].read() if stylesheet else b""

outside = sorted(
    name
    for name, mod in list(sys.modules.items())
    if getattr(mod, "__file__", None) and name not in ("__main__", "__mp_main__")
    and not mod.__file__.startswith((folder, runtime, sys.base_prefix))
)
print(json.dumps({
    "result": result,
    "keys": keys,
    "page": page.decode(),
    "css_bytes": len(css),
    "sys_path": sys.path,
    "chalicelib": chalicelib.__file__,
    "modules": {
        name: getattr(sys.modules.get(name), "__file__", None)
        for name in ("app", "chalice", "jinja2", "markupsafe", "pydantic", "pydantic_core",
                     "cmarkgfm", "_cffi_backend", "nh3", "chalicelib.core.render")
    },
    "outside": outside,
}))
"""


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    out = tmp_path_factory.mktemp("package")
    started = time.perf_counter()
    proc = chalice_package(out / "tf")
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / "tf" / "deployment.zip", elapsed


def test_deployment_zip_is_small(package: tuple[Path, float]) -> None:
    zip_path, elapsed = package
    size = zip_path.stat().st_size
    with zipfile.ZipFile(zip_path) as zf:
        unpacked = sum(i.file_size for i in zf.infolist())
    print(
        f"\ndeployment.zip: {size / 1024 / 1024:.2f} MiB "
        f"({unpacked / 1024 / 1024:.1f} MiB unpacked), chalice package took {elapsed:.1f} s"
    )
    assert size < MAX_ZIP_BYTES, f"deployment.zip is {size:,} bytes"


def reachable_modules(folder: Path, start: str = "app") -> set[str]:
    """Modules under ``folder`` that ``start`` imports, directly or through
    others, at module level or inside a function; a package that discovers its
    modules (``pkgutil.iter_modules(__path__)``, the CMS registry) reaches all
    of them."""

    def module_file(name: str) -> Path | None:
        p = folder.joinpath(*name.split("."))
        if (p / "__init__.py").is_file():
            return p / "__init__.py"
        return p.with_suffix(".py") if p.with_suffix(".py").is_file() else None

    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or (file := module_file(name)) is None:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        package = parts if file.name == "__init__.py" else parts[:-1]
        source = file.read_text()
        if "pkgutil.iter_modules(__path__)" in source:
            todo += [f"{name}.{p.stem}" for p in file.parent.glob("*.py") if p.stem != "__init__"]
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                todo += [module, *(f"{module}.{a.name}" for a in node.names)]
    return seen


def test_zip_holds_only_what_the_handlers_run(package: tuple[Path, float], tmp_path: Path) -> None:
    zip_path, _ = package
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path)
    top = {n.split("/", 1)[0].removesuffix(".py") for n in names}
    assert not top & set(TOOL_ONLY), sorted(top & set(TOOL_ONLY))
    assert not [n for n in top if n.startswith(tuple(f"{t}-" for t in TOOL_ONLY))]

    shipped = {
        ".".join(Path(n).with_suffix("").parts).removesuffix(".__init__")
        for n in names
        if n.startswith("chalicelib/") and n.endswith(".py")
    }
    reached = reachable_modules(tmp_path)
    assert "chalicelib.core.render" in reached and "chalicelib.publisher" in reached
    unreached = shipped - reached
    assert unreached == set(NOT_YET_WIRED), (
        f"shipped but never imported from app.py: {sorted(unreached - set(NOT_YET_WIRED))}; "
        f"now reached, drop from NOT_YET_WIRED: {sorted(set(NOT_YET_WIRED) - unreached)}"
    )


def test_the_pagefind_binary_comes_only_as_update_search_s_layer(
    package: tuple[Path, float],
) -> None:
    zip_path, _ = package
    with zipfile.ZipFile(zip_path) as zf:
        assert not [n for n in zf.namelist() if "pagefind" in n.lower()]
    tf = json.loads((zip_path.parent / "chalice.tf.json").read_text())
    functions = tf["resource"]["aws_lambda_function"]
    layered = {name: f.get("layers") for name, f in functions.items() if f.get("layers")}
    assert list(layered) == ["update_search"], layered
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    stage = next(iter(config["stages"]))
    assert (
        layered["update_search"]
        == config["stages"][stage]["lambda_functions"]["update_search"]["layers"]
    )


def test_lambda_runs_from_the_unpacked_zip_alone(
    package: tuple[Path, float], tmp_path: Path
) -> None:
    from moto.server import ThreadedMotoServer

    zip_path, _ = package
    folder = tmp_path / "lambda"
    folder.mkdir()
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(folder)
    names = {p.name for p in folder.iterdir()}
    assert {"app.py", "chalicelib"} <= names
    assert "tests" not in names and "samples" not in names

    # the runtime's SDK, and nothing else from this environment
    import boto3

    site = Path(boto3.__file__).resolve().parent.parent
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for name in RUNTIME_PACKAGES:
        (runtime / name).symlink_to(site / name)

    slug_doc = make_release(title="Packaged check", slug="packaged-check", image=None)
    (tmp_path / "release.json").write_bytes(dumps(slug_doc))
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(sqs_event("releases/packaged+check.json")))
    script = tmp_path / "child.py"
    script.write_text(CHILD)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "NEWSROOM_SOURCE_BUCKET": SOURCE,
            "NEWSROOM_PUBLIC_BUCKET": PUBLIC,
            "NEWSROOM_SITE_URL": SITE_URL,
        }
        # -I: ignore PYTHON* variables and the user site; -S: no site-packages at all
        proc = subprocess.run(
            [sys.executable, "-I", "-S", str(script), str(folder), str(runtime), str(ROOT),
             str(event_file)],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])

    # everything came from the zip (or the runtime's SDK), nothing from the repository
    root = str(ROOT)
    assert not any(p == root or p.startswith(root + os.sep) for p in report["sys_path"])
    assert report["chalicelib"].startswith(str(folder) + os.sep)
    for name, path in report["modules"].items():
        assert path is not None, f"{name} was not imported"
        assert path.startswith(str(folder) + os.sep), f"{name} loaded from {path}"
    assert report["outside"] == [], report["outside"]

    # and the handler did the whole job
    assert report["result"] == {"batchItemFailures": []}
    assert "<h1" in report["page"] and "Packaged check" in report["page"]
    assert f'href="{SITE_URL}/releases/packaged-check/"' in report["page"]
    assert report["css_bytes"] > 100  # the stylesheet shipped and was published
    for key in ("index.html", "index.json", "feed.xml", "sitemap.xml", "404.html"):
        assert key in report["keys"]

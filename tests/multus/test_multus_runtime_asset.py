"""The node runtime asset is named by a hash of its sources and staged into the cloud assembly once."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import aws_cdk as cdk
import pytest
from eksnet.environment import EksnetStack
from eksnet.multus import NodeRuntimeAsset
from support.envs import deploy_env

from node_runtime import install


@pytest.fixture
def packages(tmp_path, monkeypatch) -> dict[str, Path]:
    """Two small packages standing in for node_runtime and pyroute2."""
    found = {}
    for name in ("node_runtime", "pyroute2"):
        root = tmp_path / "src" / name
        (root / "sub").mkdir(parents=True)
        (root / "__init__.py").write_text(f"# {name}\n")
        (root / "sub" / "mod.py").write_text("X = 1\n")
        found[name] = root
    monkeypatch.setattr(install, "_packages", lambda: dict(found))
    return found


def test_fingerprint_changes_with_a_source_file(packages):
    before = install.bundle_fingerprint()
    (packages["pyroute2"] / "sub" / "mod.py").write_text("X = 2\n")
    assert install.bundle_fingerprint() != before


def test_fingerprint_changes_with_a_new_file(packages):
    before = install.bundle_fingerprint()
    (packages["node_runtime"] / "extra.py").write_text("")
    assert install.bundle_fingerprint() != before


def test_fingerprint_changes_with_the_executable_bit(packages):
    before = install.bundle_fingerprint()
    os.chmod(packages["node_runtime"] / "sub" / "mod.py", 0o755)
    assert install.bundle_fingerprint() != before


def test_fingerprint_ignores_bytecode_and_temporaries(packages):
    before = install.bundle_fingerprint()
    (packages["node_runtime"] / "__pycache__").mkdir()
    (packages["node_runtime"] / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    (packages["node_runtime"] / "sub" / "mod.pyc").write_bytes(b"\0")
    (packages["node_runtime"] / "state.tmp").write_text("")
    assert install.bundle_fingerprint() == before


def test_fingerprint_depends_on_where_a_file_sits(packages):
    before = install.bundle_fingerprint()
    (packages["node_runtime"] / "sub" / "mod.py").rename(packages["node_runtime"] / "mod.py")
    assert install.bundle_fingerprint() != before


def test_bundle_holds_exactly_the_fingerprinted_files(packages, tmp_path):
    (packages["node_runtime"] / "__pycache__").mkdir()
    (packages["node_runtime"] / "__pycache__" / "x.pyc").write_bytes(b"\0")
    out = install.bundle(str(tmp_path / "bundle"))
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["node_runtime/__init__.py", "node_runtime/sub/mod.py", "pyroute2/__init__.py",
                     "pyroute2/sub/mod.py"]


def _asset(app: cdk.App, id: str) -> NodeRuntimeAsset:
    return NodeRuntimeAsset(EksnetStack(app, id, deploy_env=deploy_env()), "Runtime")


def test_zip_holds_the_same_files_as_the_bundle_with_their_modes(packages, tmp_path):
    (packages["node_runtime"] / "__pycache__").mkdir()
    (packages["node_runtime"] / "__pycache__" / "x.pyc").write_bytes(b"\0")
    os.chmod(packages["pyroute2"] / "sub" / "mod.py", 0o755)
    with zipfile.ZipFile(install.bundle_zip(str(tmp_path / "b.zip"))) as z:
        modes = {i.filename: i.external_attr >> 16 for i in z.infolist()}
        assert z.read("pyroute2/sub/mod.py") == b"X = 1\n"
    out = install.bundle(str(tmp_path / "bundle"))
    assert sorted(modes) == sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert modes["pyroute2/sub/mod.py"] == 0o755 and modes["node_runtime/__init__.py"] == 0o644


def test_zip_of_the_same_sources_is_the_same_bytes(packages, tmp_path):
    first = install.bundle_zip(str(tmp_path / "1.zip")).read_bytes()
    os.utime(packages["node_runtime"] / "__init__.py", (1, 1))
    assert install.bundle_zip(str(tmp_path / "2.zip")).read_bytes() == first


def _asset(app: cdk.App, id: str) -> NodeRuntimeAsset:
    return NodeRuntimeAsset(EksnetStack(app, id, deploy_env=deploy_env()), "Runtime")


def _staged(outdir: Path, asset: NodeRuntimeAsset) -> Path:
    return outdir / f"asset.{asset.asset.asset_hash}.zip"


def test_asset_is_staged_where_aws_cdk_lib_looks_for_its_hash(tmp_path):
    asset = _asset(cdk.App(outdir=str(tmp_path)), "One")
    assert asset.asset.asset_hash == hashlib.sha256(install.bundle_fingerprint().encode()).hexdigest()
    names = zipfile.ZipFile(_staged(tmp_path, asset)).namelist()
    assert "node_runtime/install.py" in names and "pyroute2/__init__.py" in names


def test_aws_cdk_lib_makes_no_second_copy_of_the_bundle(tmp_path):
    app = cdk.App(outdir=str(tmp_path))
    asset = _asset(app, "One")
    app.synth()
    staged = [p.name for p in tmp_path.iterdir() if p.name.startswith("asset.")]
    assert staged == [_staged(tmp_path, asset).name]
    manifest = json.loads((tmp_path / "One.assets.json").read_text())
    sources = [f["source"] for f in manifest["files"].values()]
    assert {"path": _staged(tmp_path, asset).name, "packaging": "file"} in sources


def test_second_asset_in_the_same_assembly_reuses_the_staged_bundle(tmp_path):
    first = _asset(cdk.App(outdir=str(tmp_path)), "One")
    inode = _staged(tmp_path, first).stat().st_ino
    second = _asset(cdk.App(outdir=str(tmp_path)), "Two")
    assert second.asset.asset_hash == first.asset.asset_hash
    assert _staged(tmp_path, second).stat().st_ino == inode


def test_staging_leaves_no_temporary_file_behind(tmp_path):
    _asset(cdk.App(outdir=str(tmp_path)), "One")
    assert not [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]

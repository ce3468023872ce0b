"""The node runtime asset is named by a hash of its sources and staged into the cloud assembly once."""

from __future__ import annotations

import hashlib
import os
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


def test_asset_is_staged_where_aws_cdk_lib_looks_for_its_hash(tmp_path):
    asset = _asset(cdk.App(outdir=str(tmp_path)), "One")
    staged = tmp_path / f"asset.{asset.asset.asset_hash}"
    assert asset.asset.asset_hash == hashlib.sha256(install.bundle_fingerprint().encode()).hexdigest()
    assert (staged / "node_runtime" / "install.py").is_file()
    assert (staged / "pyroute2" / "__init__.py").is_file()


def test_second_asset_in_the_same_assembly_reuses_the_staged_bundle(tmp_path):
    first = _asset(cdk.App(outdir=str(tmp_path)), "One")
    staged = tmp_path / f"asset.{first.asset.asset_hash}"
    marker = staged / "node_runtime" / "install.py"
    inode = marker.stat().st_ino
    second = _asset(cdk.App(outdir=str(tmp_path)), "Two")
    assert second.asset.asset_hash == first.asset.asset_hash
    assert marker.stat().st_ino == inode


def test_staging_leaves_no_work_directory_behind(tmp_path):
    _asset(cdk.App(outdir=str(tmp_path)), "One")
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".eksnet-node-runtime-")]

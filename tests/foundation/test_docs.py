"""The user docs hold together: every relative link resolves, the own-app page's example synthesizes, and the
pages of the VPC, cluster and policy parts speak of the product, not of the project's history."""

from __future__ import annotations

import re
import subprocess

import pytest
from support.paths import ROOT, VENV_BIN, tool_env

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _markdown_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    files = set(out.split())
    files |= {str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")}  # new pages not yet committed
    return sorted(f for f in files if (ROOT / f).is_file())


def _anchors(path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"\s", "-", re.sub(r"[^\w\- ]", "", title)))
    return found


@pytest.mark.parametrize("page", _markdown_files())
def test_every_relative_link_resolves(page):
    source = ROOT / page
    broken = []
    for target in LINK.findall(source.read_text()):
        if re.match(r"^[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        file_part, _, anchor = target.partition("#")
        dest = (source.parent / file_part).resolve() if file_part else source
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(target)
    assert not broken, f"{page}: links that resolve to nothing: {broken}"


def test_the_own_app_example_synthesizes(tmp_path):
    page = (ROOT / "docs" / "use-in-your-app.md").read_text()
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "app.synth()" in b]
    script = tmp_path / "app.py"
    script.write_text(code)
    env = tool_env() | {"CDK_OUTDIR": str(tmp_path / "out")}
    proc = subprocess.run([str(VENV_BIN / "python"), str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "out" / "MyEksNetwork.template.json").is_file()


@pytest.mark.parametrize("page", ["docs/vpc.md", "docs/cluster.md", "docs/policy.md", "docs/use-in-your-app.md"])
def test_user_docs_do_not_speak_of_the_projects_history(page):
    text = (ROOT / page).read_text()
    words = re.findall(r"\b(seeds?|MISSION\.md)\b", re.sub(r"`[^`]*`", "", text), re.I)
    assert not words, f"{page}: {words}"

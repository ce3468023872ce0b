"""The user docs hold together: every relative link resolves, the own-app page's example synthesizes, and every
user doc (README, docs/, the parts' READMEs) speaks of the product, not of the project's history."""

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


def _user_docs() -> list[str]:
    """The README, every page of docs/ and the READMEs of the parts (not build output)."""
    return [f for f in _markdown_files() if not f.startswith("build/")]


# The documents the project started from were its "seeds"; a user knows them as the walkthrough or the AWS guide.
HISTORY = re.compile(r"\b(?:seed(?:s|'s)?\b|seed_?\d+|MISSION\.md)", re.I)


@pytest.mark.parametrize("page", _user_docs())
def test_user_docs_do_not_speak_of_the_projects_history(page):
    text = (ROOT / page).read_text()
    words = [m.group(0) for m in HISTORY.finditer(text)]  # code spans too: a file or test name is read as well
    assert not words, f"{page}: {words}: say the walkthrough, the AWS guide or the scenario's name instead"


def test_the_history_check_finds_the_words_it_is_for():
    found = [m.group(0) for m in HISTORY.finditer("the seed's region; seeds; `seed003_multus.yaml`; see MISSION.md")]
    assert found == ["seed's", "seeds", "seed003", "MISSION.md"]
    assert not HISTORY.search("the walkthrough's region; seeded")

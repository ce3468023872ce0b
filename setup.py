"""The one setuptools hook of the project (everything else is in pyproject.toml): a wheel carries
the native CNI forwarders, compiled while it is built (``node_runtime/native/build.py``, with the
``ziglang`` build requirement), so a node installed from the wheel gets them too. Editable installs
skip it: there ``make native`` builds them in place."""

import importlib.util
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithNative(build_py):
    def run(self) -> None:
        if not getattr(self, "editable_mode", False):
            if importlib.util.find_spec("ziglang") is None:
                raise RuntimeError("building the wheel needs the ziglang package (a build requirement in "
                                   "pyproject.toml) to compile the native CNI forwarders")
            subprocess.run([sys.executable, "-m", "node_runtime.native.build"], check=True,
                           cwd=Path(__file__).resolve().parent)
        super().run()


setup(cmdclass={"build_py": BuildPyWithNative})

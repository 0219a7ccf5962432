"""tools/data_memory_bench.py's measuring helpers (the runs are benchmarks, not tests)."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO

if str(REPO / "tools") not in sys.path:  # the tools are scripts: `python tools/X.py`
    sys.path.insert(0, str(REPO / "tools"))

from data_memory_bench import _mb, private_mb, smaps, tree  # noqa: E402


def test_runs_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, "tools/data_memory_bench.py", "--help"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("usage: python tools/data_memory_bench.py ")


def test_smaps_tree_and_private_memory_of_a_child() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        assert tree(os.getpid())[0] == os.getpid() and child.pid in tree(os.getpid())
        rollup = smaps(child.pid)
        assert rollup["Pss"] > 0 and rollup["Rss"] >= rollup["Pss"]
        private, dirty = private_mb(child.pid)
        expected = (rollup["Private_Clean"] + rollup["Private_Dirty"]) / 1024
        assert abs(private - expected) < 1.0 and 0 < dirty <= private  # it may grow meanwhile
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=300)
    assert smaps(child.pid) == {} and private_mb(child.pid) == (0.0, 0.0)
    assert _mb([(10.4, 2.0), (7.6, 1.2)]) == "10 (2) / 8 (1)" and _mb(None) == "-"

"""The README's quick start (and its op set section) do what they say: every
command and every Python line in them, with its output."""

from __future__ import annotations

import doctest
import re
import subprocess
import sys

from jit.paths import ROOT


def section(title: str = "Quick start") -> str:
    text = (ROOT / "README.md").read_text()
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def quick_start() -> str:
    return section()


def blocks(kind: str, title: str = "Quick start") -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", section(title), re.S)


def test_every_quick_start_command_prints_what_the_readme_shows():
    commands = 0
    for block in blocks("console") + blocks("console", "Another VM: op sets, and eBPF"):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, expected = chunk.partition("\n")
            argv = command.split()
            assert argv[:3] == ["python", "-m", "jit"], command
            out = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, capture_output=True, text=True, check=False)
            assert out.returncode == 0, (command, out.stderr)
            assert out.stdout.rstrip("\n") == expected.rstrip("\n"), command  # (stencils end in a blank line)
            commands += 1
    assert commands >= 4


def test_the_python_example_runs_as_shown():
    (block,) = blocks("pycon")
    test = doctest.DocTestParser().get_doctest(block, {}, "README quick start", "README.md", 0)
    assert len(test.examples) >= 5
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.failures == 0


def test_the_benchmark_page_shows_the_report_and_ablation_it_ships():
    """docs/benchmarks.md quotes docs/bench.txt, docs/ablation.txt and
    docs/bench-ebpf.txt (what `bench`, `bench --ablation` and `bench --opset
    ebpf` wrote) word for word: one measurement, not two."""
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    for name in ("bench.txt", "ablation.txt", "bench-ebpf.txt"):
        assert (ROOT / "docs" / name).read_text().rstrip("\n") in page, name


def test_the_op_set_guide_python_example_runs():
    """docs/opsets.md's Python block, as it is (its asserts are the check)."""
    text = (ROOT / "docs" / "opsets.md").read_text()
    (block,) = re.findall(r"```python\n(.*?)```", text, re.S)
    out = subprocess.run([sys.executable, "-c", block], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr

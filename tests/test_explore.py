"""The explorer page, loaded in a real browser (headless Chromium): what it renders, after its script ran.

Chromium's --dump-dom prints the document once the page has loaded and its
script has run (filters applied from the URL's #fragment, a table sorted),
so these checks see what a reader sees, not only what Python wrote.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from jit.build.library import load_library
from jit.paths import PROGRAMS_DIR, ROOT
from jit.targets import TARGETS, host_target
from jit.tools.goals import GOALS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (setup.sh test installs it)")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("explore") / "explore.html"
    argv = [sys.executable, "-m", "jit", "explore", "-o", str(out), "--bench", str(ROOT / "docs" / "bench.json")]
    if host_target() is not None:
        argv += ["--program", str(PROGRAMS_DIR / "mandelbrot.uop"), "40"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return out


def render(page, fragment: str = "") -> str:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", f"file://{page}#{fragment}"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0 and 'data-ready="yes"' in out.stdout, out.stderr[-2000:]  # (the script ran)
    return out.stdout


def sections(dom: str) -> dict[str, tuple[bool, str]]:
    """Each stencil's section by stencil name: (hidden by the script, its body)."""
    found = re.findall(r'<section class="stencil" id="s-(\w+)"([^>]*)>(.*?)</section>', dom, re.S)
    return {name: ("hidden" in attrs, body) for name, attrs, body in found}


def test_every_stencil_of_both_targets_is_shown_with_its_holes_marked(page):
    dom = render(page)
    shown = sections(dom)
    libraries = {t: load_library(t) for t in TARGETS}
    assert set(shown) == {name for lib in libraries.values() for name in lib.ops}
    for name, (hidden, body) in shown.items():
        assert not hidden, name
        for target, lib in libraries.items():
            column = body.split(f'data-target="{target}"', 1)[1].split('data-target="', 1)[0]
            stencil = lib.ops[name]
            assert f"{len(stencil.code)} bytes of code" in column, (name, target)
            marked = re.findall(r'<tr class="hole" title="([^"]*)"', column)
            if stencil.holes or stencil.data_holes:
                # every hole's relocation is in the hover text of a highlighted row
                titles = "\n".join(marked)
                assert all(h.reloc in titles for h in (*stencil.holes, *stencil.data_holes)), (name, target)
                assert '<span class="hb">' in column
            else:
                assert not marked, (name, target)
            for note in stencil.notes:
                assert note.replace("`", "") in column.replace("`", "").replace("&gt;", ">").replace("&lt;", "<")


def test_filters_from_the_fragment_hide_what_does_not_match(page):
    dom = render(page, "op=MLOAD&target=x86_64-linux")
    shown = sections(dom)
    visible = {name for name, (hidden, _) in shown.items() if not hidden}
    assert visible == {name for name in shown if name.split("_")[0] == "MLOAD"} and len(visible) > 1
    mload = shown["MLOAD"][1]
    assert re.search(r'<div class="t" data-target="aarch64-linux" hidden', mload)
    assert not re.search(r'<div class="t" data-target="x86_64-linux" hidden', mload)


def test_the_size_table_sorts_by_a_column(page):
    dom = render(page, "sort=3")  # the first target's bytes, ascending
    table = dom.split('id="size-table"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table.split("<tbody>", 1)[1], re.S)
    sizes = [int(cells[3]) for cells in (re.findall(r"<td>(.*?)</td>", r) for r in rows) if cells[3].isdigit()]
    assert len(sizes) > 300 and sizes == sorted(sizes)


@pytest.mark.skipif(host_target() is None, reason="the program part runs tiered natively")
def test_a_programs_traces_show_their_uop_lines_and_machine_code(page):
    dom = render(page)
    program = dom.split('id="program"', 1)[1].split('id="stencils"', 1)[0]
    assert program.count('<section class="piece"') >= 1
    source = (PROGRAMS_DIR / "mandelbrot.uop").read_text().splitlines()
    lines = re.findall(r'<div class="srcline">(\d+): (.*?)</div>', program)
    assert lines and all(source[int(n) - 1].strip().replace("&", "&amp;") == text for n, text in lines[:50])
    assert re.search(r'<tr[^>]*><td>[0-9a-f]{6,}</td><td class="b">', program)  # code at its address
    taken = [
        int(n)
        for n in re.findall(r'<span class="exit">exit \d+: resumes at pc \d+, back to tier 1 (\d+) times', program)
    ]
    assert taken and any(taken)  # guards, with their counts
    assert 'linked to <a href="#p-' in program or 'jumps to <a href="#p-' in program  # links between pieces


def test_the_benchmark_table_has_every_goal(page):
    dom = render(page)
    goals = dom.split('id="goals"', 1)[1].split("</table>", 1)[0]
    assert all(g.what.replace(">", "&gt;") in goals for g in GOALS)
    assert '<svg id="chart"' in dom


def test_a_file_that_is_not_a_benchmark_report_is_a_usage_error(tmp_path):
    bad = tmp_path / "bench.json"
    bad.write_text("[1, 2]")
    argv = [sys.executable, "-m", "jit", "explore", "-o", str(tmp_path / "x.html"), "--bench", str(bad)]
    out = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT)
    assert out.returncode == 2 and "not a benchmark JSON file" in out.stderr and "Traceback" not in out.stderr

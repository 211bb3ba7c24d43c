"""`python -m jit explore`: one self-contained HTML page to look at stencils, traces and the benchmark.

Three parts, each optional but the first:

* **Stencils**: every op and variant, x86-64 and AArch64 side by side; each
  instruction with its bytes, holes highlighted on the instruction they
  patch (hover: relocation, kind, symbol, addend), the tail clean-up's
  notes, sizes; filters by op, variant and target; a sortable size table.
* **A program** (`--program P.uop ARGS`): run tiered, then every trace and
  hot function compiled: the .uop lines in order, each with the steps it
  became and their machine code; guards and exits with how often each came
  back to tier 1 and where it was then linked to; links between traces.
* **The benchmark** (`--bench FILE.json`, as `bench --json` writes): the
  goals table with intervals and verdicts, and run times per program as a chart.

Plain HTML from the standard library, with a little CSS and JavaScript
inline: no network is needed to view it.  tests/test_explore.py loads it in
headless Chromium and checks what it renders.
"""

from __future__ import annotations

import html
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..build import relocs
from ..build.stencils import Hole, Stencil, StencilLibrary
from ..codegen.stackcache import base_op
from ..lang.ir import Program
from .disasm import Instruction, instructions

if TYPE_CHECKING:
    from ..opsets import OpSet


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _hole_title(hole: Hole) -> str:
    """What hovering a hole shows."""
    symbol = hole.symbol or f"this stencil's {hole.kind.value}"
    return f"{hole.reloc}: {hole.kind.value} <- {symbol}{f' {hole.addend:+#x}' if hole.addend else ''}"


_IN_INSTRUCTION = {relocs.Encoding.MOVW, relocs.Encoding.ADR, relocs.Encoding.ADRP, relocs.Encoding.LO12,
                   relocs.Encoding.BRANCH}  # fmt: skip


def _hole_width(hole: Hole) -> int:
    """How many bytes a hole patches: a field of its bits, or the whole
    (4-byte) instruction for the encodings that scatter bits inside one."""
    found = relocs.get(hole.reloc)
    return 4 if found.encoding in _IN_INSTRUCTION else max(1, found.bits // 8)


def _rows(listing: Sequence[Instruction], base: int) -> str:
    """Table rows for instructions, addresses shown from `base` (0: stencil offsets)."""
    out = []
    for insn in listing:
        start = insn.address - base
        marked: set[int] = set()
        for hole in insn.holes:
            marked.update(range(hole.offset, hole.offset + _hole_width(hole)))
        raw = " ".join(
            f'<span class="hb">{b:02x}</span>' if start + k in marked else f"{b:02x}" for k, b in enumerate(insn.raw)
        )
        where = f"{insn.address:04x}" if base == 0 else f"{insn.address:x}"
        if insn.holes:
            title = _e("\n".join(_hole_title(h) for h in insn.holes))
            notes = _e("; ".join(h.describe() for h in insn.holes))
            out.append(
                f'<tr class="hole" title="{title}"><td>{where}</td><td class="b">{raw}</td>'
                f'<td>{_e(insn.text)}</td><td class="n">{notes}</td></tr>'
            )
        else:
            out.append(f'<tr><td>{where}</td><td class="b">{raw}</td><td>{_e(insn.text)}</td><td></td></tr>')
    return "".join(out)


def _listing_table(body: str) -> str:
    return f'<table class="code"><tbody>{body}</tbody></table>'


# -- stencils -------------------------------------------------------------------


def _stencil_cell(target: str, stencil: Stencil | None) -> str:
    if stencil is None:
        return f'<div class="t" data-target="{target}"><h4>{target}</h4><p class="none">not in this library</p></div>'
    listing = instructions(target, stencil.code, stencil.holes)
    parts = [
        f'<div class="t" data-target="{target}"><h4>{target}</h4>',
        f'<p class="size">{len(stencil.code)} bytes of code ({stencil.object_size} as compiled), '
        f"{len(stencil.data)} of data, {len(stencil.holes) + len(stencil.data_holes)} holes</p>",
        _listing_table(_rows(listing, 0)),
    ]
    if stencil.data:
        rows = []
        for off in range(0, len(stencil.data), 8):
            holes = [h for h in stencil.data_holes if off <= h.offset < off + 8]
            attrs = f' class="hole" title="{_e(chr(10).join(_hole_title(h) for h in holes))}"' if holes else ""
            note = _e("; ".join(h.describe() for h in holes))
            rows.append(
                f'<tr{attrs}><td>{off:04x}</td><td class="b">{stencil.data[off : off + 8].hex(" ")}</td>'
                f'<td>data</td><td class="n">{note}</td></tr>'
            )
        parts.append(f'<p class="sub">data</p>{_listing_table("".join(rows))}')
    if stencil.notes:
        parts.append("<ul class='notes'>" + "".join(f"<li>{_e(n)}</li>" for n in stencil.notes) + "</ul>")
    parts.append("</div>")
    return "".join(parts)


def _variant(name: str) -> str:
    base = base_op(name)
    return name[len(base) + 1 :] if name != base else "plain"


def stencils_section(libraries: dict[str, StencilLibrary]) -> str:
    targets = sorted(libraries)
    names = sorted({n for lib in libraries.values() for n in lib.ops}, key=lambda n: (base_op(n), n))
    variants = sorted({_variant(n) for n in names})
    ops = sorted({base_op(n) for n in names})
    size_rows = []
    for name in names:
        cells = "".join(
            f"<td>{len(libraries[t].ops[name].code) if name in libraries[t].ops else ''}</td>" for t in targets
        )
        size_rows.append(
            f'<tr data-op="{_e(base_op(name))}" data-variant="{_e(_variant(name))}">'
            f'<td><a href="#s-{_e(name)}">{_e(name)}</a></td><td>{_e(base_op(name))}</td>'
            f"<td>{_e(_variant(name))}</td>{cells}</tr>"
        )
    heads = "".join(f'<th data-sort="num">{t} bytes</th>' for t in targets)
    sections = []
    for name in names:
        cells = "".join(_stencil_cell(t, libraries[t].ops.get(name)) for t in targets)
        sections.append(
            f'<section class="stencil" id="s-{_e(name)}" data-op="{_e(base_op(name))}" '
            f'data-variant="{_e(_variant(name))}"><h3>{_e(name)}</h3><div class="pair">{cells}</div></section>'
        )
    checks = "".join(f'<label><input type="checkbox" class="tf" value="{t}" checked> {t}</label> ' for t in targets)
    return (
        '<h2 id="stencils">Stencils</h2>'
        f"<p>{len(names)} stencils ({len(ops)} ops and their stack-caching variants) for {', '.join(targets)}. "
        "Highlighted rows hold a hole, highlighted bytes are what gets patched; hover for the relocation.</p>"
        '<div class="filters">op <input id="f-op" list="ops" placeholder="ADD, MLOAD, ...">'
        f'<datalist id="ops">{"".join(f"<option value={_e(o)}>" for o in ops)}</datalist> '
        f'variant <select id="f-variant"><option value="">all</option>'
        f"{''.join(f'<option>{_e(v)}</option>' for v in variants)}</select> {checks}</div>"
        '<h3 id="sizes">Sizes</h3><p>Click a heading to sort.</p>'
        f'<table id="size-table" class="sortable"><thead><tr><th>stencil</th><th>op</th><th>variant</th>{heads}'
        f"</tr></thead><tbody>{''.join(size_rows)}</tbody></table>" + "".join(sections)
    )


# -- a program's traces ---------------------------------------------------------------


@dataclass
class Piece:
    """One compiled trace or function, as the explorer shows it."""

    title: str
    kind: str
    address: int
    size: int
    steps: list[tuple[int, str, int, list[Instruction]]]  # (IR position, stencil, line, its code)
    exits: dict[int, int] = field(default_factory=dict)  # step index -> exit id
    links: dict[int, int] = field(default_factory=dict)  # step index -> address it jumps to (another piece)


def collect_program(program: Program, args: list[int]) -> tuple[list[Piece], dict[int, tuple[int, bool, int | None]]]:
    """Run `program` tiered natively; every piece compiled, and per exit id
    (times back to tier 1, linked, where it was linked to)."""
    from ..codegen.trace import FUNCTION
    from ..runtime.codeinfo import describe, line_of
    from ..runtime.native import Compiled, native_runtime
    from ..runtime.tiering import TieredRun

    pieces: list[Piece] = []
    library = native_runtime().library

    def on_compile(code, shape, side) -> None:
        assert isinstance(code, Compiled)
        info = describe(code, program, shape.start_pc, "side" if side else "loop")  # (where each step is, its line)
        steps = [
            (
                step.position,
                sc.stencil,
                sc.line,
                instructions(
                    library.target, info.code[sc.offset : sc.offset + sc.size], library.ops[sc.stencil].holes,
                    info.address + sc.offset,
                ),
            )
            for step, sc in zip(code.steps, info.steps, strict=True)
        ]  # fmt: skip
        line = line_of(program, shape.start_pc)
        if shape.kind == FUNCTION:
            name = next(f.name for f in program.functions if f.start == shape.start_pc)
            kind, title = "function", f"function {name}, compiled whole (line {line})"
        else:
            kind = "side trace" if side else "trace"
            title = f"{kind} from line {line}"
        piece = Piece(title, kind, code.address(0), code.layout.size, steps)
        piece.exits = {info.step: exit_id for exit_id, info in shape.exits.items()}
        piece.links = {i: s.target_address for i, s in enumerate(code.steps) if s.target_address is not None}
        pieces.append(piece)

    run = TieredRun(program, args, on_compile=on_compile)
    try:
        run.execute()
        exits = {}
        for exit_id in range(run.next_exit):
            ex = run.exits.get(exit_id)  # (made only for exits the engine looked at: none other is linked)
            exits[exit_id] = (
                run.exit_count(exit_id),
                ex is not None and ex.linked,
                None if ex is None else ex.destination,
            )
    finally:
        run.close()
    return pieces, exits


def program_section(program: Program, args: list[int], source: str) -> str:
    pieces, exits = collect_program(program, args)
    lines = source.splitlines()
    by_address = {p.address: n for n, p in enumerate(pieces)}
    out = [
        f'<h2 id="program">Program {_e(Path(program.filename).name)} {_e(" ".join(map(str, args)))}</h2>',
        f"<p>Run tiered on this machine: {len(pieces)} pieces of code compiled. "
        "Each .uop line is shown with the steps it became and their machine code.</p>",
    ]
    for n, piece in enumerate(pieces):
        out.append(
            f'<section class="piece" id="p-{n}"><h3>{_e(piece.title)}</h3>'
            f'<p class="size">{piece.size} bytes at {piece.address:#x}</p>'
        )
        group: int | None = None
        for i, (position, stencil, line, listing) in enumerate(piece.steps):
            if line != group:
                if group is not None:
                    out.append("</div>")
                text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
                out.append(f'<div class="src" data-line="{line}"><div class="srcline">{line}: {_e(text)}</div>')
                group = line
            notes = []
            if i in piece.exits:
                exit_id = piece.exits[i]
                taken, linked, destination = exits.get(exit_id, (0, False, None))
                where = by_address.get(destination) if destination is not None else None
                linked_to = f', then linked to <a href="#p-{where}">piece {where}</a>' if where is not None else ""
                notes.append(
                    f'<span class="exit">exit {exit_id}: resumes at pc {position}, back to tier 1 {taken} times'
                    f"{' (then linked)' if linked and where is None else ''}{linked_to}</span>"
                )
            if i in piece.links and piece.links[i] in by_address:
                target = by_address[piece.links[i]]
                notes.append(f'<span class="link">jumps to <a href="#p-{target}">piece {target}</a></span>')
            rows = _rows(listing, listing[0].address if listing else 0)
            out.append(
                f'<div class="step"><span class="st">step {i}: {_e(stencil.lower())} (pc {position})</span> '
                f"{' '.join(notes)}{_listing_table(rows)}</div>"
            )
        if group is not None:
            out.append("</div>")
        out.append("</section>")
    return "".join(out)


# -- the benchmark ------------------------------------------------------------------


def bench_section(data: dict) -> str:
    from .goals import GOALS

    rows = []
    for g in GOALS:
        value = data.get(g.key)
        low, high = data.get("intervals", {}).get(g.key, (math.nan, math.nan))
        verdict = data.get("goals", {}).get(g.key, {}).get("verdict", "")
        goal = data.get("goals", {}).get(g.key, {}).get("goal", "")
        rows.append(
            f'<tr class="v-{_e(verdict.replace(" ", "-"))}"><td>{_e(g.what)}</td><td>{_fmt(value)}</td>'
            f"<td>[{_fmt(low)}, {_fmt(high)}]</td><td>{_e(goal)}</td><td>{_e(verdict)}</td></tr>"
        )
    machine = data.get("machine_info", {})
    return (
        '<h2 id="bench">Benchmark</h2>'
        f"<p>{_e(machine.get('cpu', ''))}, {_e(machine.get('cores', ''))} cores, {_e(machine.get('date', ''))}</p>"
        '<table id="goals" class="sortable"><thead><tr><th>figure</th><th data-sort="num">value</th>'
        "<th>95% interval</th><th>goal</th><th>verdict</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>" + _chart(data.get("run_seconds", {}))
    )


def _fmt(value: object) -> str:
    if not isinstance(value, int | float) or math.isnan(value):
        return ""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _chart(runs: dict[str, dict[str, list[float]]]) -> str:
    """Median run time per program and contender, log scale, as inline SVG."""
    if not runs:
        return ""
    contenders = sorted({c for row in runs.values() for c in row})
    medians = {p: {c: statistics.median(v) for c, v in row.items() if v} for p, row in runs.items()}
    values = [v for row in medians.values() for v in row.values() if v > 0]
    lo, hi = math.log10(min(values)), math.log10(max(values))
    width, bar, gap = 900, 9, 14
    height = len(runs) * (len(contenders) * bar + gap) + 40
    colours = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
               "#bab0ac", "#1f77b4", "#2ca02c"]  # fmt: skip
    parts = [f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{width + 260}" height="{height}">']
    y = 20
    for program in sorted(runs):
        parts.append(f'<text x="0" y="{y + 10}" class="prog">{_e(program)}</text>')
        for k, c in enumerate(contenders):
            v = medians[program].get(c)
            if v:
                w = 20 + (math.log10(v) - lo) / max(hi - lo, 1e-9) * (width - 200)
                parts.append(
                    f'<rect x="110" y="{y}" width="{w:.0f}" height="{bar - 1}" fill="{colours[k % len(colours)]}">'
                    f"<title>{_e(program)} {_e(c)}: {v * 1e3:.2f} ms</title></rect>"
                )
            y += bar
        y += gap
    for k, c in enumerate(contenders):
        parts.append(
            f'<rect x="{width + 60}" y="{20 + k * 16}" width="10" height="10" fill="{colours[k % len(colours)]}"/>'
            f'<text x="{width + 76}" y="{29 + k * 16}">{_e(c)}</text>'
        )
    parts.append("</svg>")
    return "<h3>Run time per program (median, log scale; hover for ms)</h3>" + "".join(parts)


# -- the page ----------------------------------------------------------------------

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 1.5em;color:#222}
nav{position:sticky;top:0;background:#fff;padding:.4em 0;border-bottom:1px solid #ccc;z-index:2}
nav a{margin-right:1.2em}
.filters{position:sticky;top:2.2em;background:#f6f6f6;padding:.4em;z-index:1}
table.code{border-collapse:collapse;font:12px/1.3 ui-monospace,monospace}
table.code td{padding:0 .6em 0 0;white-space:pre;vertical-align:top}
table.code td.b{color:#666}
tr.hole{background:#fff3c4}
span.hb{background:#f4b400;color:#000;border-radius:2px}
td.n{color:#8a5a00}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1.5em}
.stencil{border-top:1px solid #ddd;margin-top:.8em}
.size,.sub{color:#555;margin:.2em 0}
ul.notes{color:#2a6;margin:.2em 0}
.srcline{font:13px ui-monospace,monospace;background:#e8f0fe;padding:.15em .4em;margin-top:.5em}
.step{margin-left:1.5em}
.st{font-weight:600}
.exit{color:#b00}
.link{color:#06c}
table.sortable{border-collapse:collapse}
table.sortable td,table.sortable th{border:1px solid #ddd;padding:.15em .5em}
table.sortable th{cursor:pointer;background:#f0f0f0}
tr.v-met td:last-child{color:#080}
tr.v-not-met td:last-child{color:#b00}
svg text{font:11px sans-serif}
[hidden]{display:none!important}
"""

_JS = """
function applyFilters(){
  var op=document.getElementById('f-op'), v=document.getElementById('f-variant');
  if(!op) return;
  var want=op.value.trim().toUpperCase(), variant=v.value;
  var shown={};
  document.querySelectorAll('input.tf').forEach(function(c){shown[c.value]=c.checked;});
  document.querySelectorAll('section.stencil, #size-table tbody tr').forEach(function(s){
    var ok=(!want||s.dataset.op.indexOf(want)===0)&&(!variant||s.dataset.variant===variant);
    s.hidden=!ok;
  });
  document.querySelectorAll('div.t').forEach(function(t){t.hidden=!shown[t.dataset.target];});
}
function sortTable(th){
  var table=th.closest('table'), body=table.tBodies[0], col=th.cellIndex;
  var num=th.dataset.sort==='num', dir=th.dataset.dir==='asc'?-1:1;
  th.dataset.dir=dir===1?'asc':'desc';
  var rows=Array.prototype.slice.call(body.rows);
  rows.sort(function(a,b){
    var x=a.cells[col].textContent, y=b.cells[col].textContent;
    if(num){x=parseFloat(x.replace(/,/g,''))||0;y=parseFloat(y.replace(/,/g,''))||0;return dir*(x-y);}
    return dir*x.localeCompare(y);
  });
  rows.forEach(function(r){body.appendChild(r);});
}
document.addEventListener('DOMContentLoaded',function(){
  var params=new URLSearchParams(location.hash.slice(1));
  if(params.get('op')) document.getElementById('f-op').value=params.get('op');
  if(params.get('variant')) document.getElementById('f-variant').value=params.get('variant');
  var only=params.get('target');
  document.querySelectorAll('input.tf').forEach(function(c){
    if(only) c.checked=c.value===only;
    c.addEventListener('change',applyFilters);
  });
  ['f-op','f-variant'].forEach(function(id){
    var e=document.getElementById(id); if(e) e.addEventListener('input',applyFilters);
  });
  document.querySelectorAll('table.sortable th').forEach(function(th){
    th.addEventListener('click',function(){sortTable(th);});
  });
  if(params.get('sort')) sortTable(document.querySelectorAll('#size-table th')[parseInt(params.get('sort'))]);
  applyFilters();
  document.body.dataset.ready='yes';
});
"""


def page(
    libraries: dict[str, StencilLibrary], program: tuple[Program, list[int], str] | None, bench: dict | None
) -> str:
    """The whole report, as one HTML document."""
    nav = ['<a href="#stencils">Stencils</a>', '<a href="#sizes">Sizes</a>']
    body = [stencils_section(libraries)]
    if program is not None:
        nav.append('<a href="#program">Program</a>')
        body.insert(0, program_section(*program))
    if bench is not None:
        nav.append('<a href="#bench">Benchmark</a>')
        body.insert(0, bench_section(bench))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>jit explorer</title>'
        f"<style>{_CSS}</style><script>{_JS}</script></head><body>"
        f"<nav><b>jit explorer</b> {' '.join(nav)}</nav>{''.join(body)}</body></html>\n"
    )


def explore(
    out: Path,
    targets: Sequence[str],
    program: Path | None,
    args: list[int],
    bench: Path | None,
    opset: OpSet | None = None,
) -> None:
    """The page; `opset` shows another op set's stencils (docs/opsets.md) instead of the stack machine's."""
    from ..api import check_args, load
    from ..errors import JitError
    from ..opsets import stack_machine
    from ..opsets.build import library_for

    if opset is not None and program is not None:
        raise JitError("--program shows the stack machine's traces; it does not go with --opset")
    libraries = {t: library_for(opset or stack_machine(), t) for t in targets}
    shown = None
    if program is not None:
        loaded = load(program)
        shown = (loaded, check_args(loaded, args), Path(program).read_text())
    data = None
    if bench is not None:
        try:
            data = json.loads(Path(bench).read_text())
        except (OSError, ValueError) as e:
            raise JitError(f"{bench}: not a benchmark JSON file ({e})") from None
        if not isinstance(data, dict) or "goals" not in data:
            raise JitError(f"{bench}: not a benchmark JSON file (no goals; write one with `bench --json`)")
    out.write_text(page(libraries, shown, data))

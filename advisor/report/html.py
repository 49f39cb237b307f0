"""The consultation page's HTML: a fixed template, small builders, escaping everywhere.

Every value that comes from data goes through `esc` (or a builder that calls it); the only
unescaped strings are the fragments these builders return. The page has no external assets and
no scripts: CSS is inline, figures are data URIs, so the file can be mailed or attached to a
ticket and opened anywhere, and it prints cleanly.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from string import Template

from advisor.report.plots import Figure


class Safe(str):
    """A fragment of HTML that is already escaped (builders return these)."""


def esc(value: object) -> Safe:
    """Escaped text; a `Safe` fragment passes through unchanged."""
    if isinstance(value, Safe):
        return value
    return Safe(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[str]) -> Safe:
    return Safe("".join(esc(p) for p in parts))


def tag(name: str, body: object = "", **attrs: object) -> Safe:
    """`<name attr="...">body</name>` with the attributes and a plain-text body escaped.
    `class_` is written `class`; attributes whose value is None are left out."""
    text = "".join(f' {k.rstrip("_").replace("_", "-")}="{esc(v)}"' for k, v in attrs.items() if v is not None)
    return Safe(f"<{name}{text}>{esc(body)}</{name}>")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, caption: str | None = None,
          numeric: Sequence[int] = (), nowrap: Sequence[int] = (),
          row_classes: Sequence[str | None] | None = None, class_: str = "data") -> Safe:
    """A table; columns listed in `numeric` are right-aligned (class `num`), those in `nowrap`
    never wrap."""
    def col_class(i: int) -> str | None:
        names = [n for n, cols in (("num", numeric), ("nowrap", nowrap)) if i in cols]
        return " ".join(names) or None

    head = join(tag("th", h, class_=col_class(i)) for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        cells = join(tag("td", v, class_=col_class(i)) for i, v in enumerate(row))
        cls = row_classes[r] if row_classes is not None and r < len(row_classes) else None
        body.append(tag("tr", cells, class_=cls))
    cap = tag("caption", caption) if caption else Safe("")
    return Safe(f'<div class="table-wrap"><table class="{esc(class_)}">{cap}<thead><tr>{head}</tr></thead>'
                f"<tbody>{join(body)}</tbody></table></div>")


def bullet_list(items: Iterable[object], class_: str | None = None) -> Safe:
    return tag("ul", join(tag("li", i) for i in items), class_=class_)


def figure(fig: Figure, caption: object = "") -> Safe:
    img = Safe(f'<img src="{esc(fig.uri)}" alt="{esc(fig.alt)}" title="{esc(fig.title)}">')
    cap = tag("figcaption", caption) if caption else Safe("")
    return Safe(f'<figure class="plot">{img}{cap}</figure>')


def section(id_: str, title: str, body: object, *, lead: object = "") -> Safe:
    lead_html = tag("p", lead, class_="lead") if lead else Safe("")
    return Safe(f'<section id="{esc(id_)}" class="card"><h2>{esc(title)}</h2>{lead_html}{esc(body)}</section>')


def stat(label: str, value: object, sub: object = "") -> Safe:
    return Safe(f'<div class="stat"><div class="stat-label">{esc(label)}</div>'
                f'<div class="stat-value">{esc(value)}</div>'
                + (f'<div class="stat-sub">{esc(sub)}</div>' if sub else "") + "</div>")


def code_block(text: str, *, label: str, id_: str | None = None) -> Safe:
    ident = f' id="{esc(id_)}"' if id_ else ""
    return Safe(f'<div class="code"><div class="code-label">{esc(label)}</div>'
                f'<pre{ident}><code>{esc(text)}</code></pre></div>')


def details(summary: str, body: object) -> Safe:
    return Safe(f"<details><summary>{esc(summary)}</summary>{esc(body)}</details>")


VERDICT_STYLE = {
    "htc-able": ("good", "HTC-able"),
    "htc-able-with-checkpointing": ("warn", "HTC-able with checkpointing"),
    "not-a-fit": ("bad", "Not a fit for HTC"),
}
STATUS_MARK = {"fail": ("bad", "✗"), "checkpoint": ("warn", "⟳"), "warn": ("warn", "!"),
               "ok": ("good", "✓"), "info": ("info", "i")}


def badge(verdict: str) -> Safe:
    cls, text = VERDICT_STYLE.get(verdict, ("info", verdict))
    return Safe(f'<span class="badge {cls}">{esc(text)}</span>')


def check_list(checks: Iterable[tuple[str, str]]) -> Safe:
    """(status, text) pairs as a list with a coloured mark per status."""
    items = []
    for status, text in checks:
        cls, mark = STATUS_MARK.get(status, ("info", "•"))
        items.append(f'<li class="check {cls}"><span class="mark" aria-label="{esc(status)}">{esc(mark)}</span>'
                     f"<span>{esc(text)}</span></li>")
    return Safe(f'<ul class="checks">{"".join(items)}</ul>')


CSS = """
:root { --ink:#111827; --muted:#6b7280; --line:#e5e7eb; --bg:#f3f4f6; --card:#fff;
  --accent:#0072B2; --good:#047857; --good-bg:#d1fae5; --warn:#92400e; --warn-bg:#fef3c7;
  --bad:#b91c1c; --bad-bg:#fee2e2; --info:#1e40af; --info-bg:#dbeafe; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin:0; background:var(--bg); color:var(--ink);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header.top { background:#0b2545; color:#fff; padding:28px 0 22px; }
.wrap { max-width: 1120px; margin: 0 auto; padding: 0 24px; }
header.top .kicker { text-transform:uppercase; letter-spacing:.08em; font-size:12px; opacity:.75; }
header.top h1 { margin:4px 0 6px; font-size:26px; font-weight:650; }
header.top .meta { font-size:13.5px; opacity:.85; }
header.top .badge { margin-left: 0; margin-top: 10px; }
nav.toc { background:#fff; border-bottom:1px solid var(--line); position:sticky; top:0; z-index:5; }
nav.toc ul { list-style:none; margin:0 auto; padding:0 24px; max-width:1120px; display:flex; flex-wrap:wrap; gap:2px 18px; }
nav.toc a { display:inline-block; padding:10px 0; color:var(--muted); text-decoration:none; font-size:13.5px; font-weight:550; }
nav.toc a:hover { color:var(--accent); }
main { padding: 22px 0 40px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:22px 26px;
  margin: 0 0 20px; box-shadow: 0 1px 2px rgba(0,0,0,.04); }
.card h2 { margin:0 0 10px; font-size:19px; font-weight:650; }
.card h3 { margin:20px 0 8px; font-size:15.5px; font-weight:650; }
p.lead { margin:0 0 14px; color:#374151; }
.muted { color: var(--muted); font-size: 13.5px; }
.badge { display:inline-block; padding:4px 12px; border-radius:999px; font-weight:650; font-size:14px; }
.badge.good { background:var(--good-bg); color:var(--good); }
.badge.warn { background:var(--warn-bg); color:var(--warn); }
.badge.bad { background:var(--bad-bg); color:var(--bad); }
.badge.info { background:var(--info-bg); color:var(--info); }
.stats { display:grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap:12px; margin: 4px 0 16px; }
.stat { border:1px solid var(--line); border-radius:8px; padding:12px 14px; background:#fafafa; }
.stat-label { font-size:12px; text-transform:uppercase; letter-spacing:.05em; color:var(--muted); }
.stat-value { font-size:21px; font-weight:650; margin-top:2px; }
.stat-sub { font-size:12.5px; color:var(--muted); }
ul.checks { list-style:none; padding:0; margin: 0 0 8px; }
li.check { display:flex; gap:10px; padding:7px 0; border-bottom:1px solid #f1f5f9; }
li.check:last-child { border-bottom:0; }
li.check .mark { flex: 0 0 22px; height:22px; border-radius:50%; text-align:center; font-weight:700;
  font-size:13px; line-height:22px; }
li.check.good .mark { background:var(--good-bg); color:var(--good); }
li.check.warn .mark { background:var(--warn-bg); color:var(--warn); }
li.check.bad .mark { background:var(--bad-bg); color:var(--bad); }
li.check.info .mark { background:var(--info-bg); color:var(--info); }
ul.advice li { margin: 4px 0; }
.table-wrap { overflow-x:auto; margin: 6px 0 10px; }
table.data { border-collapse:collapse; width:100%; font-size:13.5px; }
table.data caption { caption-side:bottom; text-align:left; color:var(--muted); font-size:12.5px; padding-top:8px; }
table.data th { text-align:left; font-weight:600; color:#374151; background:#f9fafb; border-bottom:2px solid var(--line);
  padding:7px 9px; white-space:nowrap; }
table.data td { padding:6px 9px; border-bottom:1px solid var(--line); vertical-align:top; }
table.data td:first-child, table.data .nowrap { white-space:nowrap; }
table.data .num { text-align:right; font-variant-numeric: tabular-nums; white-space:nowrap; }
table.data.compact { font-size:13px; }
table.data.compact th, table.data.compact td { padding:6px 7px; }
table.data tr.chosen td { background:#fff7ed; font-weight:600; }
table.data tr.chosen td:first-child { box-shadow: inset 3px 0 0 #D55E00; }
table.data tr.nofit td { color:var(--muted); }
.code { border:1px solid #1f2937; border-radius:8px; overflow:hidden; margin: 10px 0; }
.code-label { background:#1f2937; color:#d1d5db; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  padding:7px 12px; }
.code pre { margin:0; padding:14px 16px; background:#0f172a; color:#e2e8f0; overflow-x:auto;
  font: 12.5px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; }
details { margin: 8px 0; }
details summary { cursor:pointer; color:var(--accent); font-weight:550; }
figure.plot { margin: 8px 0 4px; }
figure.plot img { display:block; width:100%; height:auto; }
figure.plot figcaption { color:var(--muted); font-size:13px; margin-top:6px; }
.note { background:#f8fafc; border-left:3px solid var(--accent); padding:10px 14px; margin:10px 0; font-size:14px; }
.note.bad { border-left-color: var(--bad); background:#fff5f5; }
footer { color:var(--muted); font-size:12.5px; padding: 0 0 40px; }
footer code { font-size: 12px; }
@media print {
  body { background:#fff; }
  nav.toc { display:none; }
  header.top { background:#fff; color:var(--ink); border-bottom:2px solid var(--ink); }
  .card { box-shadow:none; break-inside: avoid-page; border-color:#d1d5db; }
  .code pre { background:#fff; color:#000; white-space:pre-wrap; }
  .code-label { background:#e5e7eb; color:#000; }
}
"""

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="advisor report">
<title>$title</title>
<style>$css</style>
</head>
<body>
<header class="top"><div class="wrap">
<div class="kicker">GPU pool consultation</div>
<h1>$heading</h1>
<div class="meta">$meta</div>
$badge
</div></header>
<nav class="toc" aria-label="sections"><ul>$toc</ul></nav>
<main class="wrap">
$sections
</main>
<footer class="wrap">$footer</footer>
</body>
</html>
""")


def page(*, title: str, heading: str, meta: str, verdict: str,
         sections: Sequence[tuple[str, str, Safe]], footer: Safe) -> str:
    """The whole document. `sections` are (id, nav label, section html)."""
    toc = join(tag("li", Safe(f'<a href="#{esc(i)}">{esc(label)}</a>')) for i, label, _ in sections)
    return PAGE.substitute(
        title=esc(title), css=CSS, heading=esc(heading), meta=esc(meta), badge=badge(verdict),
        toc=toc, sections="\n".join(s for _, _, s in sections), footer=footer,
    )

"""The HTML around the charts: escaping, the page shell with its stylesheet, tables.

Everything that comes from a run (model output, prompts, metric names, directory names) goes
through ``esc``. The page carries a Content-Security-Policy that allows no network access and
only the page's own script and styles (by hash), so even a missed escape could not run code.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Sequence

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def printable(value: object) -> str:
    """``value`` as text any UTF-8 stream can write: lone surrogates (from a file name that is
    not UTF-8, through ``os.fsdecode``) become U+FFFD.

    >>> printable("run-\\udcff")
    'run-\ufffd'
    """
    return _SURROGATE.sub("\ufffd", str(value))


def esc(value: object) -> str:
    """``value`` as text that is safe inside HTML elements and quoted attributes. Control
    characters become visible symbols (U+2400 block), lone surrogates become U+FFFD."""
    text = printable(value)
    text = _CONTROL.sub(lambda m: chr(0x2421) if m.group() == "\x7f" else chr(0x2400 + ord(m.group())), text)
    return html.escape(text, quote=True)


def fmt(value: float | None) -> str:
    """A number for people: 3 significant digits, exponent for tiny or huge values."""
    if value is None:
        return "–"
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.3g}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, group_headers: Sequence[tuple[str, int]] = ()) -> str:
    """An HTML table; ``headers`` and the cells are already HTML (escape data first).
    ``group_headers`` adds a row above of (label, column span)."""
    head = ""
    if group_headers:
        head += "<tr>" + "".join(f'<th colspan="{span}">{label}</th>' for label, span in group_headers) + "</tr>"
    head += "<tr>" + "".join(f"<th>{h}</th>" for h in headers) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="figures"><thead>{head}</thead><tbody>{body}</tbody></table>'


STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
header { background: #24292f; color: #f6f8fa; padding: 14px 28px; }
header h1 { margin: 0 0 4px; font-size: 20px; }
header .meta { color: #c9d1d9; font-size: 13px; }
main { padding: 8px 28px 40px; }
h2 { font-size: 17px; margin: 26px 0 10px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
.warnings { background: #fff8c5; border: 1px solid #d4a72c; padding: 8px 12px; border-radius: 6px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 14px; }
.card { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 6px; }
svg { display: block; width: 100%; height: auto; }
svg text { font-family: system-ui, sans-serif; }
table.figures { border-collapse: collapse; background: #fff; font-variant-numeric: tabular-nums; }
table.figures th, table.figures td { border: 1px solid #d0d7de; padding: 4px 9px; text-align: right; }
table.figures th { background: #eaeef2; text-align: center; }
table.figures td:first-child { text-align: left; }
.switches { color: #57606a; font-size: 13px; }
.pager { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; margin: 6px 0 12px; }
.pager a { padding: 1px 7px; border-radius: 4px; border: 1px solid #d0d7de; text-decoration: none; color: #1f2328; font-size: 12px; }
.pager select, .pager button { font-size: 13px; }
details.step { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; margin: 8px 0; }
details.step > summary { padding: 7px 12px; cursor: pointer; font-weight: 600; }
details.step > summary .stats { font-weight: normal; color: #57606a; margin-left: 8px; }
.game { border-top: 1px solid #d0d7de; padding: 8px 12px 12px; }
.game h4 { margin: 2px 0 6px; font-size: 14px; }
.game .info { color: #57606a; font-size: 12px; margin-bottom: 6px; }
table.turns { border-collapse: collapse; width: 100%; font-size: 13px; }
table.turns th { background: #eaeef2; text-align: left; padding: 4px 6px; font-weight: 600; }
table.turns td { border-top: 1px solid #eaeef2; padding: 5px 6px; vertical-align: top; }
table.turns td:nth-child(7) { min-width: 13em; }
table.turns td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
pre { margin: 0; white-space: pre-wrap; word-break: break-word; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre.completion { background: #f6f8fa; padding: 4px 6px; border-radius: 4px; max-height: 14em; overflow: auto; }
details.prompt summary { color: #0969da; cursor: pointer; font-size: 12px; }
details.prompt pre { background: #f6f8fa; padding: 6px; border-radius: 4px; max-height: 24em; overflow: auto; }
.role { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 12px; background: #ddf4ff; color: #0a3069; }
.role.r1 { background: #ffebe9; color: #82071e; } .role.r2 { background: #dafbe1; color: #116329; } .role.r3 { background: #fff8c5; color: #7d4e00; }
.trained-mark { display: inline-block; padding: 0 5px; border-radius: 9px; font-size: 11px; background: #dafbe1; color: #116329; margin-left: 4px; }
table.turns tr.untrained td.num { color: #8c959f; font-style: italic; }
.kind { font-weight: 600; } .kind.invalid { color: #cf222e; } .reason { color: #57606a; font-size: 12px; }
.thumb { display: inline-block; width: 64px; height: 64px; background-size: contain; background-repeat: no-repeat; background-position: center; border: 1px solid #d0d7de; border-radius: 3px; margin: 0 3px 3px 0; }
.thumb.missing { background: repeating-linear-gradient(45deg, #eee, #eee 4px, #fff 4px, #fff 8px); font-size: 9px; overflow: hidden; word-break: break-all; }
.thumb.small { width: 44px; height: 44px; }
.game .seen { display: flex; flex-wrap: wrap; gap: 14px; margin-bottom: 8px; }
.game .seen figure { margin: 0; display: flex; align-items: center; gap: 8px; }
.game .seen .thumb { width: 96px; height: 96px; }
.note { color: #57606a; font-size: 13px; }
h3 { font-size: 15px; margin: 18px 0 8px; }
details.more { margin: 6px 0 4px; } details.more summary { color: #0969da; cursor: pointer; font-size: 13px; margin-bottom: 6px; }
"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def page(title: str, body: str, *, header: str = "", styles: Sequence[str] = (), script: str = "") -> str:
    """A complete self-contained HTML document. ``title`` is text (escaped here); ``header``
    and ``body`` are HTML. ``styles`` are extra style sheets and ``script`` the one static
    script; the Content-Security-Policy admits exactly these, and images only as data URIs."""
    sheets = [STYLE, *styles]
    sources = ["default-src 'none'", "img-src data:", "style-src " + " ".join(_csp_hash(s) for s in sheets)]
    if script:
        sources.append("script-src " + _csp_hash(script))
    style_tags = "".join(f"<style>{s}</style>" for s in sheets)
    script_tag = f"<script>{script}</script>" if script else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{"; ".join(sources)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title>{style_tags}</head>\n"
        f"<body><header><h1>{esc(title)}</h1>{header}</header>\n<main>{body}</main>{script_tag}</body></html>\n"
    )


def warnings_box(warnings: Sequence[str]) -> str:
    if not warnings:
        return ""
    items = "".join(f"<li>{esc(w)}</li>" for w in warnings)
    return f'<div class="warnings"><strong>Warnings while reading the run</strong><ul>{items}</ul></div>'

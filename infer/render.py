"""HTML highlighting of analysed articles. Every piece of input text is escaped, so
markup in an article (``<script>`` included) is shown as text, never run."""
from __future__ import annotations

import html
from typing import Sequence

from .classifier import ArticleAnalysis

COLOURS = {"martyrdom": "#e45756", "heroism": "#f2b701", "triumph": "#54a24b", "loss": "#6f7fd6"}
FALLBACK = ["#b279a2", "#9d755d", "#72b7b2", "#ff9da6"]

STYLE = """<style>
.smf-article{font-family:Georgia,serif;line-height:1.7;max-width:52em}
.smf-s{border-radius:3px;padding:1px 2px}
.smf-legend span{display:inline-block;margin-right:1em;padding:0 .4em;border-radius:3px}
.smf-table{border-collapse:collapse;font-family:sans-serif;font-size:.85em;margin-top:1em}
.smf-table td,.smf-table th{border:1px solid #ddd;padding:2px 6px;text-align:right}
.smf-table td:first-child{text-align:left;max-width:40em}
</style>"""


def colour_map(labels: Sequence[str]) -> dict[str, str]:
    extra = iter(FALLBACK * (len(labels) // len(FALLBACK) + 1))
    return {l: COLOURS.get(l) or next(extra) for l in labels}


def highlight_html(result: ArticleAnalysis, text: str | None = None, labels: Sequence[str] | None = None,
                   with_table: bool = True) -> str:
    """One article as HTML: each sentence tinted by its frames, scores on hover and in a table.
    Pass the original ``text`` to keep the characters between sentences."""
    labels = list(labels or (result.profile.counts if result.profile else []))
    colours = colour_map(labels)
    parts, cursor = [], 0
    for s in result.sentences:
        if text is not None and s.start > cursor:
            parts.append(html.escape(text[cursor:s.start]))
        parts.append(_sentence_span(s, colours))
        parts.append("" if text is not None else " ")
        cursor = s.end
    if text is not None:
        parts.append(html.escape(text[cursor:]))
    body = f'<div class="smf-article">{"".join(parts)}</div>'
    return _legend(colours) + body + (_score_table(result, labels) if with_table else "")


def _sentence_span(s, colours: dict[str, str]) -> str:
    tip = html.escape("; ".join(f"{l} {p:.2f}" for l, p in s.scores.items()), quote=True)
    if not s.labels:
        return f'<span class="smf-s" title="{tip}">{html.escape(s.text)}</span>'
    tints = [colours.get(l, "#ccc") + "55" for l in s.labels]  # 55 = one third opacity
    stops = ",".join(f"{c} {i * 100 // len(tints)}%,{c} {(i + 1) * 100 // len(tints)}%" for i, c in enumerate(tints))
    names = html.escape(" ".join(s.labels), quote=True)
    return (f'<span class="smf-s" data-frames="{names}" title="{tip}" '
            f'style="background:linear-gradient(180deg,{stops})">{html.escape(s.text)}</span>')


def _legend(colours: dict[str, str]) -> str:
    items = "".join(f'<span style="background:{c}55">{html.escape(l)}</span>' for l, c in colours.items())
    return f'<div class="smf-legend">{items}</div>'


def _score_table(result: ArticleAnalysis, labels: list[str]) -> str:
    head = "".join(f"<th>{html.escape(l)}</th>" for l in labels)
    rows = []
    for s in result.sentences:
        cells = "".join(f"<td>{s.scores.get(l, 0.0):.2f}</td>" for l in labels)
        rows.append(f"<tr><td>{html.escape(s.text)}</td>{cells}</tr>")
    return f'<table class="smf-table"><tr><th>sentence</th>{head}</tr>{"".join(rows)}</table>'


def html_page(bodies: Sequence[str], title: str = "state-media-framing") -> str:
    sections = "".join(f"<section>{b}</section><hr>" for b in bodies)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>{STYLE}"
            f"</head><body><h1>{html.escape(title)}</h1>{sections}</body></html>\n")

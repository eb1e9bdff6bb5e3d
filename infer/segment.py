"""Sentence splitting with character spans: ``text[span.start:span.end]`` gives the sentence back.

pysbd does the splitting (rule-based, offline, handles abbreviations such as
"U.S." and "Dr." and quotations). We locate each piece in the original text
ourselves, so spans are exact even where the splitter normalises whitespace,
and we peel a news dateline ("Pyongyang, May 3 (KCNA) --") off the first
sentence because it carries no frame and would otherwise shift it.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache

log = logging.getLogger(__name__)

DATELINE = re.compile(
    r"""^\s*[A-Z][\w.' -]{1,40},\s+                 # place
        (?:[A-Z][a-z]{2,8}\.?\s+\d{1,2}\s+)?          # optional date: May 3
        \([A-Za-z][\w .-]{0,30}\)\s*                  # agency: (KCNA)
        (?:--|—|–|-)\s*                               # dash
    """,
    re.VERBOSE,
)


# pysbd's time grows quadratically with the length of what it is given (1,000
# sentences in one call took 7 s here), so long texts are first cut into blocks
# at safe boundaries: a newline, or ". " after a lowercase word of 4+ letters and
# before a capital, which no abbreviation rule would join.
BLOCK_CHARS = 2000
# A run with no safe boundary at all (scraped text without punctuation) is still
# quadratic: 1 MB took 8 minutes. It is cut into windows of at most this size, where
# pysbd takes ~0.03 s (the sweet spot measured between 2,000 and 16,000 chars).
MAX_BLOCK_CHARS = 2 * BLOCK_CHARS
SAFE_BREAK = re.compile(r"(?<=[a-z]{4}[.!?])\s+(?=[A-Z\"“])")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    text: str


@lru_cache(maxsize=1)
def _segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def split_sentences(text: str) -> list[Span]:
    """Split an article into sentence spans; empty or blank text gives []."""
    if not isinstance(text, str):
        raise TypeError(f"expected the article as str, got {type(text).__name__}")
    if not text.strip():
        return []
    offset = 0
    dateline = DATELINE.match(text)
    if dateline:
        offset = dateline.end()
    spans: list[Span] = []
    for block_start, block_end in _blocks(text, offset):
        cursor = block_start
        for piece in _segmenter().segment(text[block_start:block_end]):
            piece = piece.strip()
            if not piece:
                continue
            start = text.find(piece, cursor, block_end)
            if start < 0:  # the splitter altered the piece: take the next non-blank run
                start = cursor + len(text[cursor:block_end]) - len(text[cursor:block_end].lstrip())
            end = min(start + len(piece), block_end)
            spans.append(Span(start, end, text[start:end]))
            cursor = end
    return spans


def _blocks(text: str, start: int) -> list[tuple[int, int]]:
    """Cut text[start:] into blocks of about BLOCK_CHARS at safe sentence boundaries,
    and none longer than MAX_BLOCK_CHARS."""
    blocks = []
    for line in re.finditer(r"[^\n]+", text[start:]):
        line_start, line_end = start + line.start(), start + line.end()
        block_start = line_start
        for cut in SAFE_BREAK.finditer(text, line_start, line_end):
            if cut.start() - block_start >= BLOCK_CHARS:
                blocks.append((block_start, cut.start()))
                block_start = cut.end()
        blocks.append((block_start, line_end))
    bounded = [window for a, b in blocks for window in _windows(text, a, b)]
    if len(bounded) > len(blocks):
        log.warning("a text of %d chars has runs of over %d chars with no sentence break; they were cut at "
                    "whitespace into windows of at most %d chars before sentence splitting",
                    len(text), MAX_BLOCK_CHARS, MAX_BLOCK_CHARS)
    return [(a, b) for a, b in bounded if text[a:b].strip()]


def _windows(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Cut text[start:end] at the last blank before each MAX_BLOCK_CHARS, or hard where there is none."""
    windows = []
    while end - start > MAX_BLOCK_CHARS:
        limit = start + MAX_BLOCK_CHARS
        cut = max(text.rfind(" ", start + 1, limit), text.rfind("\t", start + 1, limit))
        cut = cut if cut > start else limit
        windows.append((start, cut))
        start = cut
    windows.append((start, end))
    return windows

"""Matching prompts against the banned-word list: case- and punctuation-insensitive.

A word matches its letters in order with any punctuation or spaces between them ("B.A.D", "bad!",
"b-a-d" all match "bad"), but not inside a longer Latin word ("badge" does not). Scripts written
without spaces (Chinese, Japanese) match anywhere. Text is NFKC-normalised and case-folded first,
so full-width letters and ligatures count as the letters they show.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_GAP = r"[\W_]*"  # anything that is not a letter or digit, including nothing


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def letters_of(word: str) -> str:
    """The word as it is compared: its letters and digits, case-folded (what makes two words the same)."""
    return "".join(ch for ch in normalize(word) if ch.isalnum())


def _pattern(letters: str) -> str:
    body = _GAP.join(re.escape(ch) for ch in letters)
    # Only a word written with spaces around it (Latin, Cyrillic, ...) needs its own edges.
    start = r"(?<![^\W_])" if letters[0].isascii() else ""
    end = r"(?![^\W_])" if letters[-1].isascii() else ""
    return start + body + end


@dataclass(frozen=True)
class Hit:
    word: str
    group: str


class BannedWords:
    """The compiled list: one regular expression for the scan, one per word to name the hit."""

    def __init__(self, entries: list[tuple[str, str]]):  # (group, word)
        self._words: list[tuple[re.Pattern, Hit]] = []
        seen = set()
        for group, word in entries:
            letters = letters_of(word)
            if letters and letters not in seen:
                seen.add(letters)
                self._words.append((re.compile(_pattern(letters)), Hit(word, group)))
        self._any = re.compile("|".join(p.pattern for p, _ in self._words)) if self._words else None

    def __len__(self) -> int:
        return len(self._words)

    def find(self, *texts: str | None) -> Hit | None:
        """The first banned word in any of the texts, or None."""
        if self._any is None:
            return None
        for text in texts:
            if not text:
                continue
            folded = normalize(text)
            if self._any.search(folded):
                for pattern, hit in self._words:
                    if pattern.search(folded):
                        return hit
        return None


EMPTY = BannedWords([])

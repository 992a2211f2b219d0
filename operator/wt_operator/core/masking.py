"""Masking Secret values in everything the operator writes or logs.

Exists because a workflow may print what it was given, and its output reaches
``status.message``, Events, the stored log and the operator's own log. A Secret
does not appear there only in the exact form it was stored in: files made with
``kubectl create secret --from-file`` end in a newline the workflow will not
print, a PEM key or a JSON credential spans lines that are printed one by one,
and a workflow that logs a request shows the value base64-, URL- or JSON-encoded.
So every form is a needle: the whole value, the value without surrounding
whitespace, each non-trivial line, and the encoded forms of those.

The search is Aho-Corasick: one pass over the text whatever the number of needles
(the regex alternation it replaces took ~9 s of CPU for one 64 KiB line against a
50,000-line Secret). Every character that any needle covers is masked, overlapping
and adjacent matches merge into one ``***``: where one Secret is the prefix of
another, or two overlap, no tail of either is left readable. The automaton keeps, per
state, the length of the longest needle ending there, so this stays linear even for
needles that are suffixes of one another (an ``iter()`` over every match would not).
"""

from __future__ import annotations

import array
import base64
import collections
import json
import urllib.parse
from collections.abc import Iterable

from wt_operator.core.errors import InvalidSpecError

__all__ = ["MASK", "Masker", "SecretBudget", "StreamMasker", "needles"]

MASK = "***"
_MIN_VALUE = 3
"""Shorter values are not masked: masking every "a" would destroy the output and hide nothing."""
_MIN_LINE = 4
"""Shorter lines of a multi-line value (``}``, ``-----``) are structure, not secret."""
_MIN_ENCODED = 6
"""Base64 of a value seen at an unknown offset is stable only in its middle; a shorter
middle than this would match ordinary text."""

_EMBEDDED_MAX = 256
"""Values up to this many bytes are also masked base64-encoded at an offset inside a blob."""


def _base64_forms(raw: bytes) -> set[str]:
    """The base64 text of ``raw`` at each of the three byte alignments inside a larger blob.

    A value encoded on its own starts at offset 0; inside ``user:password`` or a JSON
    credential it starts at 1 or 2 (mod 3), and only the characters fully made of its
    own bits are the same whatever surrounds it.
    """
    # Encoded on its own, the whole text (its last group and padding included) is known.
    whole = base64.b64encode(raw).decode("ascii")
    forms = {whole, whole.translate(str.maketrans("+/", "-_"))}
    # A long value (a key file, a kubeconfig) is encoded whole, at offset 0; only short
    # ones (passwords, tokens) end up inside a larger encoded blob.
    for shift in range(3) if len(raw) <= _EMBEDDED_MAX else range(1):
        encoded = base64.b64encode(b"\0" * shift + raw).decode("ascii")
        stable = encoded[-(-8 * shift // 6) : (8 * (shift + len(raw))) // 6]
        if len(stable) >= _MIN_ENCODED:
            forms.add(stable)
            forms.add(stable.translate(str.maketrans("+/", "-_")))  # urlsafe alphabet
    return forms


def _escaped_forms(value: str) -> set[str]:
    """``value`` as a URL component and inside a JSON string (each form that differs)."""
    return {
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value, safe=""),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }


def needles(secrets: Iterable[str]) -> set[str]:
    """Every form of ``secrets`` that is masked (see the module docstring)."""
    found: set[str] = set()
    for value in secrets:
        stripped = value.strip()
        wholes = {v for v in (value, stripped) if len(v.strip()) >= _MIN_VALUE}
        lines = [line.strip() for line in value.splitlines()]
        if len(lines) > 1:
            # The URL and JSON forms of a multi-line value are its lines' forms joined by
            # an escaped newline: the lines' needles cover them at a fraction of the size.
            forms = {line for line in lines if len(line) >= _MIN_LINE}
            found.update(wholes)
        else:
            forms = wholes
        for form in forms:
            found.add(form)
            found.update(_escaped_forms(form))
        for form in wholes:
            found.update(_base64_forms(form.encode("utf-8")))
    return {n for n in found if n}


class _Automaton:
    """An Aho-Corasick automaton answering "the longest needle ending here" per character.

    Most states of a trie built from long values have one child, so a state's transition
    is one character and a target (``_char``/``_next``) and only branching states get a
    dict: about 40 bytes a state instead of an empty dict's 200 (measured: a 4,096-line
    Secret took 320 MB with a dict per state).
    """

    def __init__(self, words: Iterable[str]) -> None:
        char: list[str | None] = [None]
        nxt = array.array("q", [0])
        many: dict[int, dict[str, int]] = {0: {}}
        longest = array.array("q", [0])
        for word in words:
            state = 0
            for ch in word:
                target = self._step(char, nxt, many, state, ch)
                if not target:
                    target = len(char)
                    char.append(None)
                    nxt.append(0)
                    longest.append(0)
                    if state in many:
                        many[state][ch] = target
                    elif char[state] is None:
                        char[state], nxt[state] = ch, target
                    else:  # a second child: the state branches from now on
                        many[state] = {char[state] or "": nxt[state], ch: target}
                        char[state] = None
                state = target
            longest[state] = len(word)
        self._char, self._next, self._many = char, nxt, many
        fail = array.array("q", bytes(8 * len(char)))
        queue = collections.deque(child for _, child in self._children(0))
        while queue:
            state = queue.popleft()
            for ch, child in self._children(state):
                queue.append(child)
                f = fail[state]
                while f and not self._step(char, nxt, many, f, ch):
                    f = fail[f]
                fail[child] = self._step(char, nxt, many, f, ch)
                if not longest[child]:
                    # Breadth-first order: the fail state's value is already final.
                    longest[child] = longest[fail[child]]
        self._fail = fail
        self._longest = longest

    @staticmethod
    def _step(
        char: list[str | None],
        nxt: array.array[int],
        many: dict[int, dict[str, int]],
        state: int,
        ch: str,
    ) -> int:
        """The child of ``state`` by ``ch``; 0 (the root) when there is none."""
        if char[state] == ch:
            return nxt[state]
        branches = many.get(state)
        return branches.get(ch, 0) if branches is not None else 0

    def _children(self, state: int) -> list[tuple[str, int]]:
        one = self._char[state]
        if one is not None:
            return [(one, self._next[state])]
        return list(self._many.get(state, {}).items())

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Sorted, merged ``[start, end)`` ranges of ``text`` covered by any needle."""
        char, nxt, many = self._char, self._next, self._many
        fail, longest = self._fail, self._longest
        spans: list[tuple[int, int]] = []
        state = 0
        for end, ch in enumerate(text, 1):
            while True:
                if char[state] == ch:
                    state = nxt[state]
                    break
                branches = many.get(state)
                if branches is not None and ch in branches:
                    state = branches[ch]
                    break
                if not state:
                    break
                state = fail[state]
            size = longest[state]
            if size:
                start = end - size
                # A longer needle may end here and reach back over earlier ranges.
                while spans and start <= spans[-1][1]:
                    start = min(start, spans.pop()[0])
                spans.append((start, end))
        return spans


def _apply(text: str, spans: Iterable[tuple[int, int]]) -> str:
    parts: list[str] = []
    at = 0
    for start, end in spans:
        parts.append(text[at:start])
        parts.append(MASK)
        at = end
    parts.append(text[at:])
    return "".join(parts)


class Masker:
    """Replaces every known form of the given secret values with ``***``.

    Building it for a large Secret takes a noticeable fraction of a second: the
    operator builds it, and masks long output, off the event loop.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        words = needles(secrets)
        self._automaton = _Automaton(words) if words else None

    def __bool__(self) -> bool:
        return self._automaton is not None

    def mask(self, text: str) -> str:
        """``text`` with every secret form replaced."""
        if self._automaton is None or not text:
            return text
        return _apply(text, self._automaton.spans(text))

    def mask_between(self, before: str, text: str, after: str) -> str:
        """``text`` masked as it reads between ``before`` and ``after``.

        For a line cut in pieces: a secret that straddles a cut is found in the joined
        text and masked on both sides of it.
        """
        if self._automaton is None or not text:
            return text
        lo, hi = len(before), len(before) + len(text)
        spans = self._automaton.spans(before + text + after)
        clipped = [(max(s, lo) - lo, min(e, hi) - lo) for s, e in spans if s < hi and e > lo]
        return _apply(text, clipped)


class StreamMasker:
    """Masks one output stream line by line, across the cuts of over-long lines.

    The reader cuts a line longer than its limit into pieces of (nearly) the limit's
    length. A piece that long may continue in the next one, so it is held until the
    next arrives and both are masked as one text; a real line of exactly that length
    only gets its neighbour as context, which can mask more, never less.
    """

    def __init__(self, masker: Masker, *, cut_bytes: int) -> None:
        self.masker = masker
        self.cut_bytes = cut_bytes
        self._previous = ""
        """The piece before the held one, when that was cut too (its context)."""
        self._held: str | None = None

    def _is_cut(self, line: str) -> bool:
        # The reader cuts at a character boundary up to 3 bytes before its limit.
        return len(line) * 4 >= self.cut_bytes - 3 and len(line.encode()) >= self.cut_bytes - 3

    def feed(self, line: str) -> list[str]:
        """The masked lines ready after ``line`` arrived (held pieces come out later)."""
        out: list[str] = []
        before = ""
        if self._held is not None:
            out.append(self.masker.mask_between(self._previous, self._held, line))
            before, self._held = self._held, None
        if self._is_cut(line):
            self._previous, self._held = before, line
        else:
            self._previous = ""
            out.append(self.masker.mask_between(before, line, ""))
        return out

    def gap(self) -> int:
        """Lines were lost here: a held piece is dropped, not shown half-masked; its size."""
        held, self._held, self._previous = self._held, None, ""
        return 0 if held is None else len(held.encode("utf-8", "replace")) + 1

    def flush(self) -> list[str]:
        """The stream ended: the held piece, masked with what came before it."""
        if self._held is None:
            return []
        held, self._held = self._held, None
        return [self.masker.mask_between(self._previous, held, "")]


class SecretBudget:
    """The most Secret text one run may reference: what bounds building its masker.

    Every line of a Secret becomes needles of the run's masker; without a bound one
    run's 50,000-line Secret costs the operator seconds of CPU and hundreds of MB.
    """

    def __init__(self, *, max_bytes: int, max_lines: int) -> None:
        self.max_bytes = max_bytes
        self.max_lines = max_lines
        self.bytes = 0
        self.lines = 0

    def add(self, what: str, value: str) -> None:
        """Count ``value`` (read from ``what``); InvalidSpecError once over either cap."""
        self.bytes += len(value.encode("utf-8", "replace"))
        self.lines += max(len(value.splitlines()), 1)
        if self.bytes > self.max_bytes or self.lines > self.max_lines:
            raise InvalidSpecError(
                f"the Secret values this run references exceed the operator's limit of "
                f"{self.max_bytes} bytes and {self.max_lines} lines in total (reached at "
                f"{what}: {self.bytes} bytes, {self.lines} lines); reference smaller Secrets "
                "or ask the operator admin to raise secretMaxBytes/secretMaxLines"
            )

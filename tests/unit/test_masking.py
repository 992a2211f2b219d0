"""The masker: every form of a Secret hidden, in one pass, across the reader's line cuts."""

from __future__ import annotations

import base64
import json
import logging
import urllib.parse

import pytest

from tests.unit.fakes import FakeKube
from wt_invokers.local import MAX_LINE_BYTES
from wt_operator.core.errors import InvalidSpecError, Terminal, classify
from wt_operator.core.masking import Masker, SecretBudget, StreamMasker
from wt_operator.shell.refs import RunRef
from wt_operator.shell.runlog import RunLog

SECRET = "s3cr3t/p+ss=word"


@pytest.mark.parametrize(
    ("secrets", "text", "masked"),
    [
        # Longest wins: one Secret the prefix of another leaks no tail.
        (["token-abc", "token-abc-extra-tail"], "token=token-abc-extra-tail.", "token=***."),
        (["token-abc-extra-tail", "token-abc"], "token=token-abc, x", "token=***, x"),
        # Overlapping Secrets: the union is hidden, not the first match only.
        (["xab12", "ab12cdef"], "..xab12cdef..", "..***.."),
        (["abc1", "def2"], "abc1def2 abc1", "*** ***"),
        # Forms a workflow prints a value in.
        ([SECRET], base64.b64encode(SECRET.encode()).decode(), "***"),
        ([SECRET], base64.urlsafe_b64encode(SECRET.encode()).decode(), "***"),
        ([SECRET], urllib.parse.quote(SECRET, safe=""), "***"),
        ([SECRET], urllib.parse.quote_plus(SECRET), "***"),
        ([SECRET], json.dumps({"k": SECRET}), '{"k": "***"}'),
        (['pa"ss\\wd'], json.dumps({"k": 'pa"ss\\wd'}), '{"k": "***"}'),
        ([SECRET + "\n"], f"v={SECRET}", "v=***"),  # --from-file's newline
        (["line-one-xyz\nline-two-xyz\n"], "a line-two-xyz b", "a *** b"),
        (["ab"], "ab cd", "ab cd"),  # too short to mask without destroying output
        ([], "nothing to hide", "nothing to hide"),
    ],
)
def test_masking_table(secrets: list[str], text: str, masked: str) -> None:
    assert Masker(secrets).mask(text) == masked


def test_a_value_base64_encoded_inside_a_larger_blob_is_masked() -> None:
    # Basic auth: the password starts at an offset that is not a multiple of 3.
    blob = base64.b64encode(f"user:{SECRET}".encode()).decode()
    masked = Masker([SECRET]).mask(blob)
    assert "***" in masked
    assert base64.b64encode(SECRET.encode()).decode()[2:12] not in masked
    assert masked.startswith(blob[:4])  # the user name part stays readable


def test_needles_that_are_suffixes_of_each_other_stay_linear() -> None:
    # 500 nested suffixes: an automaton reporting every match would yield 500 per char.
    masker = Masker(["a" * n + "b" for n in range(10, 510)])
    text = "a" * 60_000 + "b"
    assert masker.mask(text) == "a" * (60_000 - 509) + "***"


def _piece(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def test_a_secret_split_by_the_line_cut_is_masked_on_both_sides() -> None:
    line = "." * (MAX_LINE_BYTES - 5) + SECRET + " tail"
    pieces = _piece(line, MAX_LINE_BYTES)
    stream = StreamMasker(Masker([SECRET]), cut_bytes=MAX_LINE_BYTES)
    out = [m for piece in pieces for m in stream.feed(piece)] + stream.flush()
    assert len(out) == 2
    assert out[0].endswith(".***") and out[1] == "*** tail"
    assert SECRET[:5] not in out[0] and SECRET[5:] not in out[1]


def test_a_held_piece_whose_continuation_was_dropped_is_never_shown() -> None:
    stream = StreamMasker(Masker([SECRET]), cut_bytes=MAX_LINE_BYTES)
    assert stream.feed("." * (MAX_LINE_BYTES - 5) + SECRET[:5]) == []
    assert stream.gap() == MAX_LINE_BYTES + 1
    assert stream.feed("short") == ["short"]
    assert stream.flush() == []


def test_the_secret_budget_ends_the_run_invalid_spec_without_echoing_values() -> None:
    budget = SecretBudget(max_bytes=100, max_lines=3)
    budget.add("env A", "x" * 60)
    with pytest.raises(InvalidSpecError) as err:
        budget.add("env B", "y" * 60)
    assert "y" * 10 not in str(err.value)
    assert "100 bytes" in str(err.value) and "env B" in str(err.value)
    verdict = classify(err.value)
    assert isinstance(verdict, Terminal) and verdict.reason == "InvalidSpec"
    lines = SecretBudget(max_bytes=10_000, max_lines=3)
    with pytest.raises(InvalidSpecError):
        lines.add("env C", "a\nb\nc\nd")


async def test_the_run_log_masks_long_output_off_the_event_loop() -> None:
    ref = RunRef("ns", "run", "uid-1")
    runlog = RunLog(
        ref,
        kube=FakeKube(),
        masker=Masker([SECRET]),
        max_bytes=512 * 1024,
        flush_seconds=60,
        tail_lines=5,
        logger=logging.getLogger("test"),
    )
    for piece in _piece("." * (MAX_LINE_BYTES - 5) + SECRET + " end", MAX_LINE_BYTES):
        runlog.line("stdout", piece)
    assert runlog.tail() == []  # nothing masked on the caller's stack
    await runlog.close()
    assert SECRET[:5] not in runlog.text() and SECRET[5:] not in runlog.text()
    assert runlog.tail()[-1] == "*** end"


def test_the_reader_cuts_long_lines_at_a_character_boundary() -> None:
    from wt_invokers._output import _cut

    # A 3-byte character straddling the limit moves the cut before it: both pieces decode.
    data = ("." * (MAX_LINE_BYTES - 1) + "€" + "tail").encode()
    at = _cut(data)
    assert at == MAX_LINE_BYTES - 1
    assert data[:at].decode() + data[at:].decode() == "." * (MAX_LINE_BYTES - 1) + "€tail"
    assert _cut(b"." * (MAX_LINE_BYTES + 10)) == MAX_LINE_BYTES


def test_secrets_are_masked_in_every_form_they_take() -> None:
    pem = (
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\n"
        "AQEFAASCBKcwggSjAgEAAoIB\n-----END PRIVATE KEY-----\n"
    )
    masker = Masker(["s3cr3t-token\n", pem, "ab"])
    assert masker.mask("token: s3cr3t-token") == "token: ***"  # trailing newline stripped
    assert masker.mask("MIIEvQIBADANBgkqhkiG9w0B") == "***"  # one line of a multi-line value
    assert masker.mask(pem).count("MIIE") == 0
    assert masker.mask("ab cd") == "ab cd"  # too short to mask without destroying output
    assert not Masker([]) and Masker(["abc"])

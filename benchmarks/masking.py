"""Masking cost: building the masker and masking one 64 KiB line, against Secret size.

Compares the Aho-Corasick masker with the regex alternation it replaced (rebuilt here
as it was: every needle escaped, longest first, one ``re.sub`` per line). Process CPU
time, one run per size; ``python -m benchmarks.masking [LINES ...]`` prints the table.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable

from wt_operator.core.masking import Masker, needles

_LINE = "k0000-12" * 8192  # 64 KiB of text that starts many needles (their worst case)


def _secret(lines: int) -> str:
    return "\n".join(f"k{i:05d}-{i * 7919 % 100000:05d}-secret" for i in range(lines))


def _cpu(call: Callable[[], object]) -> tuple[float, object]:
    start = time.process_time()
    value = call()
    return time.process_time() - start, value


def measure(lines: int) -> dict[str, float]:
    secret = _secret(lines)
    build, masker = _cpu(lambda: Masker([secret]))
    assert isinstance(masker, Masker)
    mask, _ = _cpu(lambda: masker.mask(_LINE))
    ordered = sorted(needles([secret]), key=len, reverse=True)
    old_build, pattern = _cpu(lambda: re.compile("|".join(map(re.escape, ordered))))
    assert isinstance(pattern, re.Pattern)
    old_mask, _ = _cpu(lambda: pattern.sub("***", _LINE))
    return {
        "lines": lines,
        "bytes": len(secret),
        "build_s": build,
        "mask_ms": mask * 1000,
        "old_build_s": old_build,
        "old_mask_ms": old_mask * 1000,
    }


def table(rows: list[dict[str, float]]) -> str:
    out = [
        "| Secret lines | bytes | build (s) | mask 64 KiB (ms) | regex build (s) "
        "| regex mask 64 KiB (ms) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        out.append(
            f"| {r['lines']:,.0f} | {r['bytes']:,.0f} | {r['build_s']:.2f} | {r['mask_ms']:.0f} "
            f"| {r['old_build_s']:.2f} | {r['old_mask_ms']:.0f} |"
        )
    return "\n".join(out)


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [1024, 4096, 10_000]
    print(table([measure(n) for n in sizes]))


if __name__ == "__main__":
    main(sys.argv[1:])

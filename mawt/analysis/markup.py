"""The report's HTML building blocks: escaped text, a table from a frame, an embedded PNG."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd


def escape(value) -> str:
    """HTML-escaped text; None and NaN are empty."""
    return html.escape("" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value))


def html_table(frame: pd.DataFrame, row_class=None, cell_class=None, table_class: str = "") -> str:
    """`frame` as a table in a horizontally scrolling box; row_class(i, row) and cell_class(column, value)
    give each row's and cell's CSS class ("" for none)."""
    def attr(cls: str) -> str:
        return f' class="{escape(cls)}"' if cls else ""

    head = "".join(f"<th>{escape(c)}</th>" for c in frame.columns)
    body = []
    for i, (_, row) in enumerate(frame.iterrows()):
        cls = row_class(i, row) if row_class else ""
        cells = "".join(f"<td{attr(cell_class(c, row[c]) if cell_class else '')}>{escape(row[c])}</td>"
                        for c in frame.columns)
        body.append(f"<tr{attr(cls)}>{cells}</tr>")
    return (f'<div class="scroll"><table{attr(table_class)}><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def image(path: Path, alt: str) -> str:
    """The PNG at `path`, embedded as a data URI (the report loads nothing from outside itself)."""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}">'

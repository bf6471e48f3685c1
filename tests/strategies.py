"""Hypothesis strategies shared by the property tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def json_values(specials: list[Any], text_size: int, max_leaves: int) -> st.SearchStrategy[Any]:
    """Any JSON-like value: scalars (with `specials` among them), lists and objects, nested."""
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(10**30), max_value=10**30)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=text_size)
        | st.sampled_from(specials)
    )
    return st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
        max_leaves=max_leaves,
    )


def field_holder(record: dict[str, Any], name: str) -> tuple[dict[str, Any], str] | None:
    """The dict that holds `name` ("field" or "parent.field") and its key there; None when the
    parent is not an object (a record an earlier change already broke)."""
    target, _, sub = name.partition(".")
    if not sub:
        return record, target
    parent = record.get(target)
    return (parent, sub) if isinstance(parent, dict) else None

"""Request bodies that probe the services' JSON plumbing (httpkit.bodies): nesting past the parser's recursion
limit, and past the depth a request of ours ever needs."""

from __future__ import annotations


def nested(depth: int, inner: str = "1") -> str:
    """A JSON text of ``depth`` nested objects and arrays (alternating) around ``inner``."""
    opening = "".join("[" if level % 2 else '{"a":' for level in range(depth))
    closing = "".join("]" if level % 2 else "}" for level in reversed(range(depth)))
    return opening + inner + closing


#: Too deep, by id: past Python's recursion limit (json.loads raises RecursionError), far past it, and an
#: ordinary-looking object 65 levels deep (it parses, but is deeper than the 64 levels the services accept).
TOO_DEEP = {
    "1000 deep": nested(1000),
    "100000 deep": "[" * 100_000 + "]" * 100_000,
    "65 deep in a field": '{"application_id": "app-deep", "a": ' + nested(64) + "}",
}

"""Config names that are safe inside file names (checkpoints and outputs are named
after their config)."""

from __future__ import annotations

import re

# Characters that make a name more than one file name: separators (both systems'),
# a Windows drive's colon, and control characters (NUL included).
_NOT_IN_NAME = re.compile(r"[/\\:\x00-\x1f\x7f]")
MAX_NAME_LENGTH = 128


def is_plain_name(name: object) -> bool:
    """True for a config name that is safe inside a file name: text of 1 to 128
    characters, not ``.`` or ``..``, without path separators, colons or control
    characters (so ``../x``, ``/tmp/x``, ``a\\b`` and ``C:x`` are not)."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= MAX_NAME_LENGTH
        and name not in (".", "..")
        and _NOT_IN_NAME.search(name) is None
    )

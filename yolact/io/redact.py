"""Hiding credentials in source specs before they are shown (messages, windows, files)."""

from __future__ import annotations

import re

# "scheme://" and the user information before the last "@" of the host part.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)([^/?#]*)@")


def redact(spec: str) -> str:
    """A source spec as messages, window titles and result files show it.

    A URL's password is hidden (``rtsp://user:***@host/live``), and a user name
    alone too, as it may be a token (``https://***@host/live``); a password
    holding ``@`` is hidden whole. Other specs (paths, webcam indices) are
    returned unchanged.
    """
    match = _USERINFO.match(spec)
    if match is None:
        return spec
    user, has_password, _ = match.group(2).partition(":")
    hidden = f"{user}:***" if has_password else "***"
    return f"{match.group(1)}{hidden}@{spec[match.end() :]}"

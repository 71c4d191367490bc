"""Tokens: how teams and organisers authenticate to ``ccbench serve``.

A token is 32 random bytes from :mod:`secrets`, shown once (``ccbench challenge token``) and
stored only as its SHA-256 digest: a token has 256 bits of entropy, so a fast hash cannot be
brute-forced and a slow key-derivation function would add nothing but latency. A request
carries it as ``Authorization: Bearer <token>``; the server hashes what it got and looks the
digest up, so no stored secret is ever compared byte by byte. Tokens have a prefix naming their
role (``ccb_org_``, ``ccb_team_``), which makes a leaked token easy to recognise in logs and
secret scanners; the role itself comes from the store, never from the prefix.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal

__all__ = ["ROLES", "Role", "hash_token", "new_token"]

Role = Literal["organiser", "team"]
#: Roles, in the order of what they may see (the public has no token).
ROLES: tuple[Role, ...] = ("organiser", "team")
_PREFIX = {"organiser": "ccb_org_", "team": "ccb_team_"}


def new_token(role: Role) -> str:
    """A fresh token for ``role``.

    Examples
    --------
    >>> t = new_token("team")
    >>> t.startswith("ccb_team_") and len(t) > 40 and t != new_token("team")
    True
    """
    return _PREFIX[role] + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token: its SHA-256 digest, hex.

    Examples
    --------
    >>> hash_token("ccb_team_x") == hash_token("ccb_team_x") != hash_token("ccb_team_y")
    True
    >>> len(hash_token("ccb_team_x"))
    64
    """
    return hashlib.sha256(token.encode("utf-8", errors="surrogateescape")).hexdigest()

"""Password hashing: argon2id through argon2-cffi (the reference implementation's maintained
Python binding; pwdlib would only wrap it).

The default parameters are argon2-cffi's (RFC 9106 "low memory": t=3, m=64 MiB, p=4);
a hash made with other parameters still verifies, and is re-hashed with the current ones at
the next successful login.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 10
MAX_LENGTH = 1000
#: per hasher, a hash verified when the account does not exist, so that "no such user"
#: costs the same time as a wrong password
_DUMMIES: dict[tuple[int, int, int], str] = {}


def _dummy(hasher: PasswordHasher) -> str:
    key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    if key not in _DUMMIES:
        _DUMMIES[key] = hasher.hash("no such account")
    return _DUMMIES[key]


def check_new(password: str, username: str) -> None:
    """ValueError naming the rule a new password breaks."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise ValueError(f"a password has at most {MAX_LENGTH} characters")
    if password.casefold() == username.casefold():
        raise ValueError("the password must not be the user name")


def verify(hasher: PasswordHasher, stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (None: no such account; still costs a verify)."""
    try:
        return hasher.verify(stored or _dummy(hasher), password[:MAX_LENGTH]) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False

"""API keys: where they come from and how a request's key is checked.

Keys come from `[serving] api_key` (or TESSERA_SERVING__API_KEY), else TESSERA_API_KEY, plus every
line of `[serving] api_key_file`, so several clients can hold different keys and a key can be
rotated without a moment in which neither works. A key is never logged or echoed: errors name the
file, never its content.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
from pathlib import Path
from typing import Mapping, Sequence

from tessera.config import Settings

API_KEY_ENV = "TESSERA_API_KEY"
log = logging.getLogger("tessera.serving")


class ApiKeyError(ValueError):
    """A key file that cannot be used; the message names the file and never holds a key."""


def read_key_file(path: Path) -> list[str]:
    """One key per line; blank lines and lines starting with '#' are skipped, spaces trimmed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ApiKeyError(f"[serving] api_key_file {path}: cannot read it ({type(err).__name__})") from None
    keys = [line.strip() for line in text.splitlines()]
    keys = [k for k in keys if k and not k.startswith("#")]
    if not keys:
        # A file was asked for: serving without any key would silently open the API.
        raise ApiKeyError(f"[serving] api_key_file {path} holds no key")
    if path.stat().st_mode & 0o077:
        log.warning("api key file %s can be read by other users; chmod 600 it", path)
    return keys


def api_keys_of(settings: Settings, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Every accepted key, in no meaningful order; empty: the API is open."""
    environ = os.environ if environ is None else environ
    keys: list[str] = []
    if settings.serving.api_key is not None:
        keys.append(settings.serving.api_key.get_secret_value())
    elif environ.get(API_KEY_ENV):
        keys.append(environ[API_KEY_ENV])
    if settings.serving.api_key_file is not None:
        keys.extend(read_key_file(settings.resolve(settings.serving.api_key_file)))
    return tuple(dict.fromkeys(k for k in keys if k))


def _digest(key: str) -> bytes:
    # Compared as SHA-256 digests: the time taken depends on neither key's length or content.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class KeyChecker:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("a KeyChecker needs at least one key")
        self._digests = tuple(_digest(k) for k in keys)

    def accepts(self, given: str | None) -> bool:
        """Constant time in the given key; every stored key is compared (no early exit), so the
        time says nothing about which key, if any, matched."""
        if given is None:
            return False
        digest = _digest(given)
        matched = False
        for expected in self._digests:
            matched |= hmac.compare_digest(digest, expected)
        return matched

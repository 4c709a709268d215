"""The user's own SecuPass key in the client: unlock it, read and change its keyring.

The private record, the pepper and the keyring come from ``/api/v1/keys/mine``; the
SecuPass never leaves this computer. The keyring (approved fingerprints per address) is
encrypted so the server can neither read nor forge it, but it could offer an older copy;
so the highest version seen per key is remembered in ``keyring-versions.json`` in the
configuration folder (``$XDG_CONFIG_HOME/secushare``, else ``~/.config/secushare``) and an
older keyring is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path

from secupass import keys, sxf
from secushare_cli.client import Api, describe, exit_code_for
from secushare_cli.errors import FAILED, REFUSED, REJECTED, UNSAFE, USAGE, CliError

VERSIONS_FILE = "keyring-versions.json"
PIN_ATTEMPTS = 3
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class NoKey(CliError):
    """The account has no SecuPass key yet."""


# -- fingerprints ---------------------------------------------------------------------------


def full_fingerprint(email: str, ecdh_public_b64: str, ecdsa_public_b64: str) -> str:
    """The 64 hex digits of a key's fingerprint, computed here from the public keys."""
    try:
        ecdh, ecdsa = sxf.b64u_decode(ecdh_public_b64), sxf.b64u_decode(ecdsa_public_b64)
        return keys.full_fingerprint_hex(email, ecdh, ecdsa)
    except (sxf.SXFError, TypeError, ValueError):
        raise CliError(f"The server offered an unusable public key for {email}.", UNSAFE) from None


def shown(full_hex: str) -> str:
    """The fingerprint as people compare it: the first 16 bytes, 8 groups of 4."""
    return sxf.format_fingerprint(bytes.fromhex(full_hex))


def given_fingerprint(text: str) -> str:
    """A fingerprint typed by a person: 32 hex digits (as shown) or all 64; case and
    spaces do not matter."""
    digits = "".join(text.split()).lower()
    if not re.fullmatch(r"[0-9a-f]{32}|[0-9a-f]{64}", digits):
        raise CliError(
            f"{text!r} is not a fingerprint: give the 8 groups of 4 hex digits as shown, "
            'for example "1a2b 3c4d ...".',
            USAGE,
        )
    return digits


def fingerprint_matches(given_digits: str, full_hex: str) -> bool:
    return full_hex.startswith(given_digits) and len(given_digits) in (32, 64)


# -- keyring versions seen on this computer -------------------------------------------------


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME", "").strip()
    if not base or not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "secushare"


class SeenVersions:
    """key_id -> the highest keyring version this computer saw."""

    def __init__(self, path: Path | None = None):
        self.path = path or config_dir() / VERSIONS_FILE

    def load(self) -> dict[str, int]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise CliError(f"Cannot read {self.path}: {e.strerror}.", FAILED) from None
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError
        except ValueError:
            raise CliError(
                f"{self.path} is damaged. It protects you against an older keyring being "
                "offered by the server; repair it or, if you accept that risk once, remove it.",
                FAILED,
            ) from None
        return {
            k: v
            for k, v in data.items()
            if isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
        }

    def get(self, key_id: str) -> int | None:
        return self.load().get(key_id)

    def note(self, key_id: str, version: int) -> None:
        seen = self.load()
        if seen.get(key_id, 0) >= version:
            return
        seen[key_id] = version
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, temp = tempfile.mkstemp(prefix=".keyring-versions-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(seen, f, indent=1, sort_keys=True)
                    f.write("\n")
                os.replace(temp, self.path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
                raise
        except OSError as e:
            raise CliError(f"Cannot write {self.path}: {e.strerror}.", FAILED) from None


# -- the key session ------------------------------------------------------------------------


class KeySession:
    """The caller's key: ``unlock()`` with the SecuPass, then ``pins()`` and ``pin()``."""

    def __init__(self, api: Api, seen: SeenVersions | None = None):
        self.api = api
        self.seen = seen or SeenVersions()
        self.info: dict | None = None
        self.unlocked: keys.Unlocked | None = None
        self.remembered: int | None = None  # the version known before this run; None: new device

    @property
    def key_id(self) -> str:
        return self.info["key_id"]

    def fetch(self) -> dict | None:
        """``GET /api/v1/keys/mine``, or None when there is no key."""
        response = self.api.request("GET", "/api/v1/keys/mine", retries=2)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise CliError(describe(response), exit_code_for(response.status_code))
        info = response.json()
        if not isinstance(info, dict) or not _UUID.fullmatch(str(info.get("key_id", ""))):
            raise CliError("The server's description of your key is not usable.", FAILED)
        return info

    def require(self) -> dict:
        info = self.fetch()
        if info is None:
            raise NoKey(
                "You have no SecuPass key yet. Create one with: secushare keys create", REJECTED
            )
        self.info = info
        return info

    def own_fingerprint(self, email: str | None = None) -> str:
        info = self.info or self.require()
        return full_fingerprint(email or info["email"], info["ecdh_public"], info["ecdsa_public"])

    def unlock(self, secupass: str) -> keys.Unlocked:
        """Fetch the key and its pepper (every unlock does; the server throttles) and open
        the private record."""
        info = self.require()
        answer = self.api.json("POST", "/api/v1/keys/mine/pepper", json={})
        if answer.get("key_id") not in (None, info["key_id"]):
            raise CliError("Your key changed while it was being unlocked; try again.", FAILED)
        try:
            self.unlocked = keys.unlock(secupass, info, answer["pepper"])
        except keys.WrongSecuPass:
            raise CliError(
                "Wrong SecuPass. Check it and try again (attempts are limited).", REFUSED
            ) from None
        except (sxf.SXFError, KeyError, TypeError, ValueError):
            raise CliError("The server's record of your key is not usable.", FAILED) from None
        return self.unlocked

    def keyring(self) -> tuple[int, dict[str, str]]:
        """(version, pins) of the stored keyring; an older one than seen here is refused."""
        key_id = self.key_id
        if self.remembered is None:
            self.remembered = self.seen.get(key_id)
        try:
            version, pins = keys.open_keyring(
                sxf.b64u_decode(self.info["keyring"]),
                self.unlocked.derived.keyring_key,
                key_id,
                min_version=self.seen.get(key_id),
            )
        except keys.KeyringRollback as e:
            raise CliError(
                f"Refused: {e}. Someone may be trying to undo an approval; tell your "
                "administrator.",
                UNSAFE,
            ) from None
        except sxf.SXFError as e:
            raise CliError(f"Your keyring cannot be trusted: {e}.", UNSAFE) from None
        self.seen.note(key_id, version)
        return version, pins

    @property
    def new_device(self) -> bool:
        """No keyring version of this key was seen here before this run."""
        return self.remembered is None

    def pin(self, email: str, full_hex: str) -> bool:
        """Approve ``full_hex`` for ``email`` in a new keyring version; False if it was already."""
        email = sxf.normalize_email(email)
        for _attempt in range(PIN_ATTEMPTS):
            version, pins = self.keyring()
            if pins.get(email) == full_hex:
                return False
            following = max(version, int(self.info.get("keyring_version") or 0)) + 1
            blob = keys.seal_keyring(
                {**pins, email: full_hex},
                following,
                self.unlocked.derived.keyring_key,
                self.key_id,
            )
            body = {"keyring": sxf.b64u_encode(blob), "version": following, "key_id": self.key_id}
            response = self.api.request("PUT", "/api/v1/keys/mine/keyring", json=body)
            if response.status_code == 200:
                self.info = {**self.info, "keyring": body["keyring"], "keyring_version": following}
                self.seen.note(self.key_id, following)
                return True
            if response.status_code != 409:
                raise CliError(describe(response), exit_code_for(response.status_code))
            # Changed meanwhile (another device): take the newer keyring and pin again.
            fresh = self.require()
            if fresh["key_id"] != self.unlocked.key_id:
                raise CliError(describe(response), REJECTED)
        raise CliError("Your keyring keeps changing on the server; try again later.", FAILED)

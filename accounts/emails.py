"""E-mail address normalisation, shared by accounts, deliveries and the keys.

DESIGN.md section 4: NFC, then ASCII A-Z lowercased only (Unicode case mappings
differ between runtimes), then NFC again.  The same rule runs in the browser and
the command-line client, so a fingerprint computed anywhere agrees.
"""

import unicodedata

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def normalize_email(address: str) -> str:
    address = unicodedata.normalize("NFC", address.strip())
    return unicodedata.normalize("NFC", address.translate(_ASCII_LOWER))

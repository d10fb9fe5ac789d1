"""Secret files a configuration refers to. Password files (nginx `auth_basic_user_file`,
Apache `AuthUserFile`): who may log in is configuration too. Each user of the referenced file
is an entry next to the directive (`auth_basic_user_file#alice password`) whose value is the
password hash, which the masker keeps only as a keyed digest: a user added or removed is
drift with the user's name, a changed password is "a secret value changed", and no hash
reaches the store. Files that are secrets whole (`ssl_password_file`, `auth_jwt_key_file`)
are one entry (`ssl_password_file#secret`), kept as a keyed digest too. A referenced file
that cannot be read is named unreadable, never skipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from checks.config_drift.secrets import last_segment
from checks.files import read_input_file
from checks.interface import BadInput

REFERRING_DIRECTIVES = frozenset({"auth_basic_user_file", "authuserfile"})
# files whose whole content is a secret (key passphrases, JWT keys): one masked entry
SECRET_FILE_DIRECTIVES = frozenset({"ssl_password_file", "auth_jwt_key_file"})
# user:hash (htpasswd: $apr1$, $2y$, {SHA}, $5$/$6$ crypt or 13-character DES crypt) and
# user:realm:md5 (htdigest)
_HASHED = re.compile(
    r"^[^:\s#][^:\s]*:(?:[^:\s]+:[0-9a-fA-F]{32}|\$(?:apr1|2[abxy]?|1|5|6|y)\$\S+|\{SHA\}\S+"
    r"|[./0-9A-Za-z]{13})$"
)


def looks_like_password_file(text: str) -> bool:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return bool(lines) and all(_HASHED.match(line) for line in lines)


def password_entries(text: str, origin: str) -> dict[str, str]:
    """`user password -> hash` for each line of an htpasswd or htdigest file (the realm of
    a digest line is part of the user's name)."""
    entries: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, separator, hashed = line.rpartition(":")
        if not separator or not user:
            raise BadInput(f"line {number}: not `user:hash`", subject=origin)
        entries[f"{user} password"] = hashed
    return entries


def referenced_files(
    entries: Mapping[str, str], base: Path, max_bytes: int
) -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    """Entries for the users of every password file `entries` refer to (relative paths are
    taken from `base`, the configuration file's directory), and the referring keys whose
    file could not be read, with why."""
    extra: dict[str, str] = {}
    unreadable: list[tuple[str, str]] = []
    for key, value in entries.items():
        lowered = key.lower()
        if "_file" not in lowered and "userfile" not in lowered:
            continue  # the cheap test first: most keys of most files are not these
        directive = last_segment(key).split(" ", 1)[0].lower()
        if directive not in REFERRING_DIRECTIVES and directive not in SECRET_FILE_DIRECTIVES:
            continue
        if "$" in value or value.lower() == "off" or value.startswith("["):
            continue  # set per request (nginx variables), switched off, or several: not read
        path = Path(value) if Path(value).is_absolute() else base / value
        try:
            text = read_input_file(path, max_bytes).decode("utf-8", "replace")
            if directive in SECRET_FILE_DIRECTIVES:
                extra[f"{key}#secret"] = text  # masked with the rest: a keyed digest
                continue
            users = password_entries(text, str(path))
        except BadInput as error:
            unreadable.append((key, f"the secret file it names: {error}"))
            continue
        extra.update((f"{key}#{user}", hashed) for user, hashed in users.items())
    return extra, tuple(unreadable)

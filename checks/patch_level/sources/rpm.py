"""Red Hat family hosts: the rpm database, as listed by `rpm -qa` with a fixed query format."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from checks.interface import BadInput, TargetUnreachable
from checks.patch_level.packages import Ecosystem, InstalledPackage
from checks.patch_level.sources.files import quote_line, read_text
from checks.patch_level.sources.os_release import OsRelease, distribution, load_os_release

# One line per package: name|epoch|version|release|arch; `(none)` when there is no epoch.
# The backslash-n is rpm's own escape, given to rpm as two characters (no shell unquotes it).
RPM_QUERY_FORMAT = "%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}|%{ARCH}\\n"

RPM_QUERY_ARGUMENTS = ("-qa", "--queryformat", RPM_QUERY_FORMAT)

_NO_VALUE = "(none)"
_FAMILY = frozenset({Ecosystem.RED_HAT, Ecosystem.ROCKY, Ecosystem.ALMA})
_EPOCH = re.compile(r"\d+")
# `rpm -qa` also lists the imported signing keys as pseudo-packages; they are no software
_SIGNING_KEYS = "gpg-pubkey"
_MAX_ERROR_CHARS = 500


def parse_rpm_list(
    text: str, origin: str, os_release: OsRelease | None = None
) -> tuple[InstalledPackage, ...]:
    """Packages from `rpm -qa --queryformat RPM_QUERY_FORMAT` output, in its order.

    Versions take OSV's form `[epoch:]version-release`; an epoch rpm reports (even `0`) is
    kept, `(none)` gives none. Multi-arch copies collapse to one entry. The ecosystem comes
    from `os_release` (Red Hat for RHEL and CentOS, Rocky Linux, AlmaLinux); without it,
    CheckMisconfigured. Raises BadInput naming `origin` and the line for a line not of five fields.
    """
    ecosystem, release = distribution(os_release, family=_FAMILY, database="rpm")
    packages: dict[InstalledPackage, None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.strip().split("|")
        if len(fields) != 5:
            raise BadInput(
                f"line {number} {quote_line(line)} is not name|epoch|version|release|arch",
                subject=origin,
            )
        name, epoch, version, package_release, _arch = fields
        if not (name and version and package_release) or _NO_VALUE in (name, version):
            raise BadInput(
                f"line {number} {quote_line(line)} lacks a name, version or release",
                subject=origin,
            )
        if epoch != _NO_VALUE and not _EPOCH.fullmatch(epoch):
            raise BadInput(f"line {number}: epoch {epoch!r} is not a number", subject=origin)
        if name == _SIGNING_KEYS:
            continue
        prefix = "" if epoch == _NO_VALUE else f"{epoch}:"
        package = InstalledPackage(
            ecosystem=ecosystem,
            name=name,
            version=f"{prefix}{version}-{package_release}",
            source=origin,
            release=release,
        )
        packages[package] = None
    return tuple(packages)


def read_rpm_list(
    path: Path, os_release: Path | OsRelease | None = None
) -> tuple[InstalledPackage, ...]:
    """`parse_rpm_list` of a file saved from the rpm query."""
    return parse_rpm_list(read_text(path), str(path), load_os_release(os_release))


def query_rpm(timeout: float, *, executable: str = "rpm", root: Path | None = None) -> str:
    """The output of `rpm -qa` with RPM_QUERY_FORMAT, run without a shell.

    `root` is passed as `--root` to read another tree's database (a mounted image).
    Raises TargetUnreachable when rpm cannot be started or does not finish in `timeout`
    seconds, BadInput when it fails or prints something that is not text.
    """
    command = [executable, *RPM_QUERY_ARGUMENTS]
    if root is not None:
        command[1:1] = ["--root", str(root)]
    subject = " ".join(command[:-1]) + " <query format>"
    try:
        completed = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise TargetUnreachable(f"{executable!r} is not installed", subject=subject) from None
    except subprocess.TimeoutExpired:
        raise TargetUnreachable(f"no answer within {timeout:g}s", subject=subject) from None
    except OSError as error:
        raise TargetUnreachable(f"cannot run: {error}", subject=subject) from None
    if completed.returncode != 0:
        stderr = completed.stderr.decode("utf-8", errors="replace").strip()
        raise BadInput(
            f"exited with status {completed.returncode}: {stderr[:_MAX_ERROR_CHARS]}",
            subject=subject,
        )
    try:
        return completed.stdout.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadInput(f"printed bytes that are not UTF-8: {error}", subject=subject) from None


def query_installed_rpms(
    timeout: float,
    *,
    os_release: Path | OsRelease | None = None,
    executable: str = "rpm",
    root: Path | None = None,
) -> tuple[InstalledPackage, ...]:
    """Run the rpm query and parse its output; raises what `query_rpm` and the parser raise."""
    stated = load_os_release(os_release)
    text = query_rpm(timeout, executable=executable, root=root)
    return parse_rpm_list(text, f"{executable} -qa", stated)

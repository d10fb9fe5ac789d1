"""Real configuration files from Debian's packages, for the config_drift tests.

`tests/install-drift-test-deps.sh` downloads the packages (never installs them) into a
git-ignored cache; `extract` unpacks them under one root and fails when a package no
longer ships a file a test relies on.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

TESTS = Path(__file__).parent.parent
PACKAGE_FILES = {
    "nginx-common": ("etc/nginx/nginx.conf", "etc/nginx/sites-available/default"),
    "apache2": (
        "etc/apache2/apache2.conf",
        "etc/apache2/ports.conf",
        "etc/apache2/sites-available/000-default.conf",
        "etc/apache2/sites-available/default-ssl.conf",
        "etc/apache2/conf-available/security.conf",
    ),
    "openssh-server": ("usr/share/openssh/sshd_config",),
    "openssh-client": ("etc/ssh/ssh_config",),
    "php8.2-common": ("usr/lib/php/8.2/php.ini-production",),
    "postgresql-common": ("usr/share/postgresql-common/createcluster.conf",),
    "postgresql-15": ("usr/share/postgresql/15/postgresql.conf.sample",),
    "redis-server": ("etc/redis/redis.conf",),
    "haproxy": ("etc/haproxy/haproxy.cfg",),
    "prometheus": ("etc/prometheus/prometheus.yml",),
    "cloud-init": ("etc/cloud/cloud.cfg",),
    "logrotate": (),
    "ufw": ("etc/ufw/applications.d/nginx",),
}


def extract(root: Path) -> Path:
    """The packages' files extracted under `root` (never installed)."""
    installed = subprocess.run(
        ["bash", str(TESTS / "install-drift-test-deps.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    for package, files in PACKAGE_FILES.items():
        (deb,) = sorted((TESTS / ".drift-debs").glob(f"{package}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=120)
        for name in files:
            assert (root / name).is_file(), f"{package} no longer ships {name}"
    return root

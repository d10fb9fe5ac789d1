"""Drift of real configuration files, as their publishers ship them, under scripted edits.

The files come from Debian's packages at test time (`tests/install-drift-test-deps.sh`
downloads them; a missing package fails these tests), plus this project's own Kubernetes
manifests joined as `kubectl kustomize` prints them. Each edit says first which drift it
must cause: value changes, comment- and whitespace-only edits and reorders of independent
blocks (none), a block inserted or removed among repeated ones (exactly one item, the
block, with no cascade on its siblings), secrets (masked, in no key). The precision and
recall of the reported items over all edits is printed at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import pytest

from checks.baseline_diff import Change, is_masked
from checks.config_drift.diff import DriftItem, diff, severity_of
from checks.config_drift.formats import parse_detected
from checks.config_drift.secrets import SecretMasker
from monitor.model import Severity
from tests.support.debian_files import extract

MASKED = "<masked>"  # an expected value that must be a secret's digest


@pytest.fixture(scope="module")
def debian(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = extract(tmp_path_factory.mktemp("debian"))
    base = Path(__file__).parent.parent / "deploy/k8s/base"
    (root / K8S).parent.mkdir()
    (root / K8S).write_text("---\n".join((base / f"{name}.yaml").read_text() for name in K8S_BASE))
    for unit in (NGINX_UNIT, REDIS_UNIT):
        assert (root / unit).is_file(), f"Debian no longer ships {unit}"
    return root


def replaced(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, f"the Debian file no longer holds {old!r}"
        return text.replace(old, new, 1)

    return edit


def appended(extra: str) -> Callable[[str], str]:
    return lambda text: text + extra


def both(*edits: Callable[[str], str]) -> Callable[[str], str]:
    def edit(text: str) -> str:
        for one in edits:
            text = one(text)
        return text

    return edit


def same(text: str) -> str:
    return text


Expected = tuple[Change, str, str | None]


@dataclass(frozen=True)
class Edit:
    file: str
    edit: Callable[[str], str]
    expected: frozenset[Expected]
    base: Callable[[str], str] = same  # applied to the approved file too
    secrets: tuple[str, ...] = ()
    severity: Severity | None = None  # of every item, by the built-in rules
    renamed: str | None = None  # the file's name in the test (its format is detected)
    note: bool = False  # read as text with a note
    extra: dict[str, str] = field(default_factory=dict)


def drift(*items: Expected) -> frozenset[Expected]:
    return frozenset(items)


A, R, C = Change.ADDED, Change.REMOVED, Change.CHANGED
NGINX_DEFAULT = "etc/nginx/sites-available/default"
SITE_B = "\nserver {\n\tlisten 80;\n\tserver_name b.example.test;\n\treturn 301 https://b;\n}\n"
SITE_C = "\nserver {\n\tlisten 80;\n\tserver_name c.example.test;\n\treturn 444;\n}\n"
SITE_W = "\nserver {\n\tlisten 443 ssl;\n\tserver_name www.example.test;\n\troot /srv/www;\n}\n"
SITE_D = "\nserver {\n\tlisten 80;\n\tserver_name d.example.test;\n\treturn 301 https://d;\n}\n"
VHOST = "\n<VirtualHost *:80>\n\tServerName {0}\n\tDocumentRoot /srv/{0}\n</VirtualHost>\n"
APACHE_DEFAULT = "etc/apache2/sites-available/000-default.conf"
SSHD = "usr/share/openssh/sshd_config"
MATCH = "\nMatch User backup\n\tX11Forwarding no\n\tForceCommand /usr/bin/rrsync\n"
PHP = "usr/lib/php/8.2/php.ini-production"
PG = "usr/share/postgresql/15/postgresql.conf.sample"
HAPROXY = "etc/haproxy/haproxy.cfg"
BACKEND = "\nbackend {0}\n\tbalance roundrobin\n\tserver {0}1 127.0.0.1:80{1} check\n"
PROMETHEUS = "etc/prometheus/prometheus.yml"
JOB = "\n  - job_name: blackbox\n    static_configs:\n      - targets: ['localhost:9115']\n"
REDIS = "etc/redis/redis.conf"
LOC_API = (
    "\tlocation /api/ {\n\t\tproxy_pass http://127.0.0.1:8080;\n\t\tproxy_read_timeout 30s;\n\t}\n"
)
LOC_ADMIN = "\tlocation /admin/ {\n\t\tallow 127.0.0.1;\n\t\tdeny all;\n\t}\n"
LOC_STATIC = "\tlocation /static/ {\n\t\troot /srv/static;\n\t\texpires 1d;\n\t}\n"
TWIN = "\nserver {{\n\tlisten 8080;\n\treturn 301 https://{0}.test$request_uri;\n}}\n"
DIRECTORY = (
    "<Directory /srv/api>\n\tOptions None\n\tAllowOverride None\n\tRequire all granted\n"
    "</Directory>\n\n"
)
MATCH_SFTP = "\nMatch Group sftp\n\tChrootDirectory /srv/sftp\n\tForceCommand internal-sftp\n"
MATCH_ADMIN = (
    "\nMatch Address 127.0.0.1\n\tPermitRootLogin prohibit-password\n\tPasswordAuthentication no\n"
)
XDEBUG = "[xdebug]\nxdebug.mode = debug\nxdebug.client_host = 127.0.0.1\n\n"
K8S = "k8s/apivigil.yaml"  # the project's own manifests, as `kubectl kustomize` joins them
K8S_BASE = ("namespace", "serviceaccount", "service", "deployment", "networkpolicy")
INGRESS = (
    "  ingress:\n    - from:\n        - ipBlock:\n            cidr: 10.20.0.0/16\n"
    "      ports:\n        - {port: 9690, protocol: TCP}\n"
)
CONFIGMAP = (
    "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  a: '1'\n  b: '2'\n"
)
NGINX_UNIT = "lib/systemd/system/nginx.service"
REDIS_UNIT = "lib/systemd/system/redis-server.service"

EDITS: dict[str, Edit] = {
    # nginx
    "nginx: root changed": Edit(
        NGINX_DEFAULT,
        replaced("root /var/www/html;", "root /srv/www;"),
        drift((C, "server _.root", "/srv/www")),
    ),
    "nginx: comments and indentation only": Edit(
        NGINX_DEFAULT,
        lambda text: "# managed by hand\n" + text.replace("\t", "    ").replace(";\n", "; # x\n"),
        drift(),
    ),
    "nginx: a name added to server_name": Edit(
        NGINX_DEFAULT,
        replaced("server_name _;", "server_name _ www.example.test;"),
        drift((C, "server _.server_name", "_ www.example.test")),
    ),
    "nginx: a name that sorts first added to server_name (the block's key)": Edit(
        NGINX_DEFAULT,
        replaced("server_name www.example.test;", "server_name www.example.test example.test;"),
        drift((C, '["server example.test"].server_name', "example.test www.example.test")),
        base=appended(SITE_W),
    ),
    "nginx: server_name names reordered": Edit(
        NGINX_DEFAULT,
        replaced("server_name _ www.example.test;", "server_name www.example.test _;"),
        drift(),
        base=replaced("server_name _;", "server_name _ www.example.test;"),
    ),
    "nginx: listen lines reordered and one repeated": Edit(
        NGINX_DEFAULT,
        replaced(
            "listen 80 default_server;\n\tlisten [::]:80 default_server;",
            "listen [::]:80 default_server;\n\tlisten 80 default_server;\n"
            "\tlisten 80 default_server;",
        ),
        drift(),
    ),
    "nginx: two server blocks swapped": Edit(
        NGINX_DEFAULT,
        lambda text: SITE_B + text.replace(SITE_B, ""),
        drift(),
        base=appended(SITE_B),
    ),
    "nginx: a server inserted between two others": Edit(
        NGINX_DEFAULT,
        lambda text: text.replace(SITE_B, SITE_C + SITE_B),
        drift(
            (A, '["server c.example.test"]', "{listen 80; return 444; server_name c.example.test}")
        ),
        base=appended(SITE_B + SITE_D),
    ),
    "nginx: weak TLS protocols removed": Edit(
        "etc/nginx/nginx.conf",
        replaced("ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;", "ssl_protocols TLSv1.2;"),
        drift((C, "http.ssl_protocols", "TLSv1.2")),
        severity=Severity.MEDIUM,
    ),
    "nginx: weak TLS protocol added": Edit(
        "etc/nginx/nginx.conf",
        replaced("ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;", "ssl_protocols TLSv1.1;"),
        drift((C, "http.ssl_protocols", "TLSv1.1")),
        severity=Severity.HIGH,
    ),
    "nginx: server_tokens enabled": Edit(
        "etc/nginx/nginx.conf",
        replaced("# server_tokens off;", "server_tokens on;"),
        drift((A, "http.server_tokens", "on")),
        severity=Severity.LOW,
    ),
    "nginx: HSTS header removed": Edit(
        NGINX_DEFAULT,
        replaced('\n\tadd_header Strict-Transport-Security "max-age=63072000";', ""),
        drift((R, "server _.add_header Strict-Transport-Security", None)),
        base=replaced(
            "server_name _;",
            'server_name _;\n\tadd_header Strict-Transport-Security "max-age=63072000";',
        ),
        severity=Severity.HIGH,
    ),
    "nginx: secrets in env, auth_http_header and an Authorization header": Edit(
        "etc/nginx/nginx.conf",
        both(
            lambda text: "env AWS_SECRET_ACCESS_KEY=awssecret-Nq71Lp;\n" + text,
            replaced(
                "http {\n",
                'http {\n\tauth_http_header X-Auth-Key "authkey-Hd62Vm";\n'
                '\tproxy_set_header Authorization "Basic b3BzOnB3LUt6ODg=";\n',
            ),
        ),
        drift(
            (A, "env AWS_SECRET_ACCESS_KEY", MASKED),
            (A, "http.auth_http_header X-Auth-Key", MASKED),
            (A, "http.proxy_set_header Authorization", MASKED),
        ),
        secrets=("awssecret-Nq71Lp", "authkey-Hd62Vm", "b3BzOnB3LUt6ODg="),
    ),
    "nginx: ssl_certificate_key is a path, shown": Edit(
        NGINX_DEFAULT,
        replaced("server_name _;", "server_name _;\n\tssl_certificate_key /etc/ssl/private/b.key;"),
        drift((A, "server _.ssl_certificate_key", "/etc/ssl/private/b.key")),
    ),
    "nginx: a file that no longer parses is read as text": Edit(
        NGINX_DEFAULT,
        replaced("=404;\n\t}", "=404;\n"),
        frozenset(),  # judged by its note, not by items
        note=True,
    ),
    # Apache
    "apache: a VirtualHost inserted between two others": Edit(
        APACHE_DEFAULT,
        lambda text: text.replace(
            VHOST.format("b.test"), VHOST.format("c.test") + VHOST.format("b.test")
        ),
        drift((A, '["VirtualHost *:80 c.test"]', "{DocumentRoot /srv/c.test; ServerName c.test}")),
        base=appended(VHOST.format("a.test") + VHOST.format("b.test")),
    ),
    "apache: a VirtualHost's ServerName changed (the block's key)": Edit(
        APACHE_DEFAULT,
        replaced("ServerName b.test", "ServerName c.test"),
        drift((C, '["VirtualHost *:80 c.test"].ServerName', "c.test")),
        base=appended(VHOST.format("a.test") + VHOST.format("b.test")),
    ),
    "apache: two VirtualHosts swapped": Edit(
        APACHE_DEFAULT,
        lambda text: VHOST.format("b.test") + text.replace(VHOST.format("b.test"), ""),
        drift(),
        base=appended(VHOST.format("b.test")),
    ),
    "apache: DocumentRoot changed": Edit(
        APACHE_DEFAULT,
        replaced("DocumentRoot /var/www/html", "DocumentRoot /srv/html"),
        drift((C, "VirtualHost *:80.DocumentRoot", "/srv/html")),
    ),
    "apache: AllowOverride in <Directory /var/www/>": Edit(
        "etc/apache2/apache2.conf",
        replaced(
            "<Directory /var/www/>\n\tOptions Indexes FollowSymLinks\n\tAllowOverride None",
            "<Directory /var/www/>\n\tOptions Indexes FollowSymLinks\n\tAllowOverride All",
        ),
        drift((C, "Directory /var/www/.AllowOverride", "All")),
    ),
    "apache: <Directory /var/www/private> is not secret": Edit(
        "etc/apache2/apache2.conf",
        appended("<Directory /var/www/private>\n\tRequire all denied\n</Directory>\n"),
        drift((A, "Directory /var/www/private.Require", "all denied")),
    ),
    "apache: ServerTokens and ServerSignature shown": Edit(
        "etc/apache2/conf-available/security.conf",
        both(
            replaced("\nServerTokens OS", "\nServerTokens Full"),
            replaced("\nServerSignature On", "\nServerSignature Off"),
        ),
        drift((C, "ServerTokens", "Full"), (C, "ServerSignature", "Off")),
        severity=Severity.LOW,
    ),
    "apache: a second identical Listen": Edit(
        "etc/apache2/ports.conf",
        replaced("Listen 80\n", "Listen 80\nListen 80\n"),
        drift(),
    ),
    "apache: SSLCertificateKeyFile path shown": Edit(
        "etc/apache2/sites-available/default-ssl.conf",
        replaced("ssl-cert-snakeoil.key", "api.key"),
        drift((C, "VirtualHost *:443.SSLCertificateKeyFile", "/etc/ssl/private/api.key")),
    ),
    # OpenSSH
    "sshd: PermitRootLogin yes": Edit(
        SSHD,
        replaced("#PermitRootLogin prohibit-password", "PermitRootLogin yes"),
        drift((A, "PermitRootLogin", "yes")),
        severity=Severity.CRITICAL,
    ),
    "sshd: value with a trailing comment and spaces": Edit(
        SSHD,
        replaced("X11Forwarding yes", "X11Forwarding   no   # hardening"),
        drift((C, "X11Forwarding", "no")),
    ),
    "sshd: a later duplicate does not count (first value wins)": Edit(
        SSHD,
        replaced("UsePAM yes\n", "UsePAM yes\nUsePAM no\n"),
        drift(),
    ),
    "sshd: a setting in a Match block": Edit(
        SSHD,
        replaced("\tForceCommand /usr/bin/rrsync", "\tForceCommand /usr/local/bin/rrsync"),
        drift((C, "Match User backup.ForceCommand", "/usr/local/bin/rrsync")),
        base=appended(MATCH),
    ),
    "sshd: PasswordAuthentication enabled": Edit(
        SSHD,
        replaced("#PasswordAuthentication yes", "PasswordAuthentication yes"),
        drift((A, "PasswordAuthentication", "yes")),
        severity=Severity.HIGH,
    ),
    "ssh_config: a Host block before Host *": Edit(
        "etc/ssh/ssh_config",
        replaced("Host *\n", "Host bastion\n    User ops\n\nHost *\n"),
        drift((A, "Host bastion.User", "ops")),
    ),
    "ssh_config: value in Host *": Edit(
        "etc/ssh/ssh_config",
        replaced("HashKnownHosts yes", "HashKnownHosts no"),
        drift((C, "Host *.HashKnownHosts", "no")),
    ),
    # redis
    "redis: protected-mode off": Edit(
        REDIS,
        replaced("protected-mode yes", "protected-mode no"),
        drift((C, "protected-mode", "no")),
        severity=Severity.HIGH,
    ),
    "redis: bind addresses reordered, port respaced": Edit(
        REDIS,
        both(
            replaced("bind 127.0.0.1 -::1", "bind -::1 127.0.0.1"),
            replaced("port 6379", "port    6379   "),
        ),
        drift(),
    ),
    "redis: requirepass, masterauth and an ACL user": Edit(
        REDIS,
        both(
            replaced("# requirepass foobared", "requirepass redispw-Tq83Zx"),
            replaced("# masterauth <master-password>", 'masterauth "mauth-Bn27Wd"'),
            appended("user alice on >alicepw-Ks55Qe ~cache:* +get\n"),
        ),
        drift(
            (A, "requirepass", MASKED),
            (A, "masterauth", MASKED),
            (A, "user alice", MASKED),
        ),
        secrets=("redispw-Tq83Zx", "mauth-Bn27Wd", "alicepw-Ks55Qe"),
    ),
    # haproxy
    "haproxy: timeout changed with different spacing": Edit(
        HAPROXY,
        replaced("timeout client  50000", "timeout client 60000"),
        drift((C, "defaults.timeout client", "60000")),
    ),
    "haproxy: errorfile lines reordered": Edit(
        HAPROXY,
        replaced(
            "\terrorfile 400 /etc/haproxy/errors/400.http\n"
            "\terrorfile 403 /etc/haproxy/errors/403.http\n",
            "\terrorfile 403 /etc/haproxy/errors/403.http\n"
            "\terrorfile 400 /etc/haproxy/errors/400.http\n",
        ),
        drift(),
    ),
    "haproxy: a backend inserted between two others": Edit(
        HAPROXY,
        lambda text: text.replace(
            BACKEND.format("b", 2), BACKEND.format("c", 3) + BACKEND.format("b", 2)
        ),
        drift((A, "backend c", "{balance roundrobin; server c1 127.0.0.1:803 check}")),
        base=appended(BACKEND.format("a", 1) + BACKEND.format("b", 2)),
    ),
    "haproxy: stats auth and a userlist": Edit(
        HAPROXY,
        appended(
            "\nlisten stats\n\tbind 127.0.0.1:8404\n\tstats enable\n"
            "\tstats auth admin:hapw-Lr40Xc\n"
            "\nuserlist ops\n\tuser dev insecure-password devpw-Mm19Ty\n"
        ),
        drift(
            (
                A,
                "listen stats",
                '{stats auth <secret>; stats enable present; ["bind 127.0.0.1:8404"] present}',
            ),
            (A, "userlist ops.user dev", MASKED),
        ),
        secrets=("hapw-Lr40Xc", "devpw-Mm19Ty"),
    ),
    # PHP and INI
    "php: extension=curl enabled": Edit(
        PHP,
        replaced(";extension=curl", "extension=curl"),
        drift((A, "PHP.extension", "curl")),
    ),
    "php: display_errors on, with an inline comment": Edit(
        PHP,
        replaced("display_errors = Off", "display_errors = On ; while debugging"),
        drift((C, "PHP.display_errors", "On")),
        severity=Severity.HIGH,
    ),
    "php: session.cookie_secure shown": Edit(
        PHP,
        replaced(";session.cookie_secure =", "session.cookie_secure = 0"),
        drift((A, 'Session["session.cookie_secure"]', "0")),
    ),
    "php: expose_php on": Edit(
        PHP,
        replaced("expose_php = Off", "expose_php = On"),
        drift((C, "PHP.expose_php", "On")),
        severity=Severity.LOW,
    ),
    "postgresql: password_encryption md5": Edit(
        PG,
        replaced("#password_encryption = scram-sha-256", "password_encryption = md5"),
        drift((A, "password_encryption", "md5")),
        severity=Severity.HIGH,
        renamed="postgresql.conf",
    ),
    "postgresql: ssl off in createcluster.conf": Edit(
        "usr/share/postgresql-common/createcluster.conf",
        replaced("ssl = on", "ssl = off"),
        drift((C, "ssl", "off")),
        severity=Severity.HIGH,
    ),
    "ufw: nginx application ports (INI, not nginx)": Edit(
        "etc/ufw/applications.d/nginx",
        replaced("ports=80/tcp", "ports=8080/tcp"),
        drift((C, "Nginx HTTP.ports", "8080/tcp")),
    ),
    # blocks inserted and removed among repeated ones: one item each, no cascade
    "nginx: a location inserted among several": Edit(
        NGINX_DEFAULT,
        replaced(LOC_API + LOC_STATIC, LOC_API + LOC_ADMIN + LOC_STATIC),
        drift((A, "server _.location /admin/", "{allow 127.0.0.1; deny all}")),
        base=replaced("\tlocation / {", LOC_API + LOC_STATIC + "\tlocation / {"),
    ),
    "nginx: a location removed from among several": Edit(
        NGINX_DEFAULT,
        replaced(LOC_ADMIN, ""),
        drift((R, "server _.location /admin/", "{allow 127.0.0.1; deny all}")),
        base=replaced("\tlocation / {", LOC_API + LOC_ADMIN + LOC_STATIC + "\tlocation / {"),
    ),
    "nginx: a server inserted among same-identity servers": Edit(
        NGINX_DEFAULT,
        replaced(TWIN.format("a"), TWIN.format("a") + TWIN.format("c")),
        drift((A, "server :8080 #3", "{listen 8080; return 301 https://c.test$request_uri}")),
        base=appended(TWIN.format("a") + TWIN.format("b")),
    ),
    "nginx: one of same-identity servers changed": Edit(
        NGINX_DEFAULT,
        replaced("https://b.test$request_uri", "https://b2.test$request_uri"),
        drift((C, "server :8080 #3.return", "301 https://b2.test$request_uri")),
        base=appended(TWIN.format("a") + TWIN.format("b") + TWIN.format("c")),
    ),
    "nginx: the first of same-identity servers removed": Edit(
        NGINX_DEFAULT,
        replaced(TWIN.format("a"), ""),
        drift((R, "server :8080 #2", "{listen 8080; return 301 https://a.test$request_uri}")),
        base=appended(TWIN.format("a") + TWIN.format("b") + TWIN.format("c")),
    ),
    "apache: a <Directory> inserted among several": Edit(
        "etc/apache2/apache2.conf",
        replaced("<Directory /var/www/>", DIRECTORY + "<Directory /var/www/>"),
        drift(
            (
                A,
                "Directory /srv/api",
                "{AllowOverride None; Options None; Require all granted}",
            )
        ),
    ),
    "sshd: a Match block inserted between two": Edit(
        SSHD,
        replaced(MATCH_SFTP, MATCH_ADMIN + MATCH_SFTP),
        drift(
            (
                A,
                '["Match Address 127.0.0.1"]',
                "{PasswordAuthentication no; PermitRootLogin prohibit-password}",
            )
        ),
        base=appended(MATCH + MATCH_SFTP),
    ),
    "php: a [section] inserted among sections": Edit(
        PHP,
        replaced("\n[Date]\n", "\n" + XDEBUG + "[Date]\n"),
        drift((A, "xdebug", '{["xdebug.client_host"] 127.0.0.1; ["xdebug.mode"] debug}')),
    ),
    "k8s: an ingress rule inserted first (a list without names)": Edit(
        K8S,
        replaced("  ingress:\n", INGRESS),
        drift(
            (
                A,
                "NetworkPolicy apivigil.spec.ingress[0]",
                "{from[0].ipBlock.cidr 10.20.0.0/16; ports[0].port 9690; ports[0].protocol TCP}",
            )
        ),
    ),
    "k8s: a volume mount inserted among named ones": Edit(
        K8S,
        replaced(
            "            - {name: data, mountPath: /var/lib/apivigil}\n",
            "            - {name: cache, mountPath: /var/cache/apivigil}\n"
            "            - {name: data, mountPath: /var/lib/apivigil}\n",
        ),
        drift(
            (
                A,
                "Deployment apivigil.spec.template.spec.containers[name=apivigil]"
                ".volumeMounts[name=cache]",
                "{mountPath /var/cache/apivigil; name cache}",
            )
        ),
    ),
    "k8s: a resource inserted among the documents": Edit(
        K8S,
        replaced("---\n# The daemon", CONFIGMAP + "---\n# The daemon"),
        drift(
            (
                A,
                "ConfigMap extra",
                "{apiVersion v1; data.a 1; data.b 2; kind ConfigMap; metadata.name extra}",
            )
        ),
    ),
    "k8s: documents reordered": Edit(
        K8S,
        lambda text: "---\n".join(reversed(text.split("---\n"))),
        drift(),
    ),
    "k8s: allowPrivilegeEscalation enabled": Edit(
        K8S,
        replaced("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true"),
        drift(
            (
                C,
                "Deployment apivigil.spec.template.spec.containers[name=apivigil]"
                ".securityContext.allowPrivilegeEscalation",
                "true",
            )
        ),
    ),
    # systemd units
    "systemd: sets reordered, a ';' inside a value kept": Edit(
        REDIS_UNIT,
        both(
            replaced(
                "ReadWritePaths=-/var/lib/redis\nReadWritePaths=-/var/log/redis\n",
                "ReadWritePaths=-/var/log/redis\nReadWritePaths=-/var/lib/redis\n",
            ),
            replaced(
                "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
            ),
        ),
        drift(),
    ),
    "systemd: a capability allowed": Edit(
        REDIS_UNIT,
        replaced("CapabilityBoundingSet=\n", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"),
        drift((C, "Service.CapabilityBoundingSet", "CAP_NET_BIND_SERVICE")),
    ),
    "systemd: ExecStartPre changed inside its quotes": Edit(
        NGINX_UNIT,
        replaced(
            "-t -q -g 'daemon on; master_process on;'", "-t -g 'daemon on; master_process on;'"
        ),
        drift((C, "Service.ExecStartPre", "/usr/sbin/nginx -t -g 'daemon on; master_process on;'")),
    ),
    # YAML
    "prometheus: two jobs swapped": Edit(
        PROMETHEUS,
        lambda text: text.replace("scrape_configs:" + JOB, "scrape_configs:\n") + JOB.lstrip("\n"),
        drift(),
        base=replaced("scrape_configs:\n", "scrape_configs:" + JOB),
    ),
    "prometheus: a job's interval": Edit(
        PROMETHEUS,
        replaced("scrape_interval: 5s", "scrape_interval: 10s"),
        drift((C, "scrape_configs[job_name=prometheus].scrape_interval", "10s")),
    ),
    "prometheus: a job inserted first": Edit(
        PROMETHEUS,
        replaced("scrape_configs:\n", "scrape_configs:" + JOB),
        drift(
            (
                A,
                "scrape_configs[job_name=blackbox]",
                "{job_name blackbox; static_configs[0].targets [localhost:9115]}",
            )
        ),
    ),
    "cloud-init: cloud.cfg is YAML": Edit(
        "etc/cloud/cloud.cfg",
        replaced("disable_root: true", "disable_root: false"),
        drift((C, "disable_root", "false")),
    ),
}


def _state(
    debian: Path, case: Edit, text: str, masker: SecretMasker
) -> tuple[dict[str, str], str | None]:
    path = debian / "edited" / (case.renamed or case.file)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    parsed = parse_detected(path.read_bytes(), PurePath(path), case.file, 100_000)
    return masker.mask_all(parsed.entries), parsed.note


def _as_expected(item: DriftItem) -> Expected:
    value = item.before if item.is_block and item.change is Change.REMOVED else item.after
    if value is not None and is_masked(value):
        value = MASKED
    return (item.change, item.path, value)


def _drift(debian: Path, case: Edit) -> tuple[list[DriftItem], dict[str, str], str | None]:
    """The items an edit causes, the edited state, and the note when read as text."""
    original = (debian / case.file).read_text()
    masker = SecretMasker(b"k" * 32)
    approved_text = case.base(original)
    approved, approved_note = _state(debian, case, approved_text, masker)
    assert approved_note is None, approved_note
    observed, note = _state(debian, case, case.edit(approved_text), masker)
    return diff("f", approved, observed), observed, note


@pytest.mark.integration
@pytest.mark.parametrize("name", EDITS)
def test_a_scripted_edit_of_a_real_debian_file_drifts_exactly_as_expected(
    debian: Path, name: str
) -> None:
    case = EDITS[name]
    items, observed, note = _drift(debian, case)
    if case.note:
        assert note is not None
        assert "compared as text lines" in note
        return
    assert note is None, note

    assert {_as_expected(item) for item in items} == case.expected
    for secret in case.secrets:
        assert not [k for k in observed if secret in k], f"{secret} in a key"
        assert not [v for v in observed.values() if secret in v], f"{secret} in a value"
    if case.severity is not None:
        assert {severity_of(item, (), Severity.MEDIUM) for item in items} == {case.severity}


@pytest.mark.integration
def test_drift_precision_and_recall_over_the_scripted_edits(debian: Path) -> None:
    expected = reported = right = 0
    wrong: list[str] = []
    judged = [name for name, case in EDITS.items() if not case.note]
    for name in judged:
        case = EDITS[name]
        found = {_as_expected(item) for item in _drift(debian, case)[0]}
        expected += len(case.expected)
        reported += len(found)
        right += len(found & case.expected)
        if found != case.expected:
            wrong.append(name)
    precision = right / reported if reported else 1.0
    recall = right / expected if expected else 1.0
    print(
        f"\ndrift precision/recall: {precision:.2f}/{recall:.2f} over {len(judged)} scripted edits"
    )
    assert wrong == []

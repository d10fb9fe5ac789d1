"""config_drift's pure parts: formats, directive files, flattening budgets, secret keys."""

from __future__ import annotations

from pathlib import PurePath

import pytest

from checks.baseline_diff import Change
from checks.config_drift.diff import DriftItem, diff, severity_of
from checks.config_drift.flatten import TooManyKeys, flatten
from checks.config_drift.formats import detect_format, parse
from checks.config_drift.params import FileFormat, SeverityRule
from checks.config_drift.secrets import SecretMasker, is_secret_key
from checks.interface import BadInput
from monitor.model import Severity

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "path",
    [
        "db.password",
        "apiKey",
        "API_TOKEN",
        "x.client_secret",
        "ssl_certificate_key",
        "proxy_set_header Authorization",
        "header.set-cookie",
        "PRIVATE_KEY",
        "dsn",
        "api_keys",
        "PGPASSWORD",
        "requirepass",
        "credentials[0].user",
        "auth",
        "bearer",
        "jwt",
        "x-auth",
        "X-Auth-Token",
        "x-api-key",
        "token",
        "session",
        "cookie",
        "private_key",
        "headers.Bearer",
        "server.jwt_secret",
    ],
)
def test_secret_looking_keys_are_recognised(path: str) -> None:
    assert is_secret_key(path)


@pytest.mark.parametrize(
    "path",
    [
        "proxy_pass",
        "keepalive_timeout",
        "password_file",
        "server_tokens",
        "user",
        "monkey",
        "token_ttl",
        "author",
        "auth_enabled",
        "session_timeout",
        "jwt_algorithm",
    ],
)
def test_ordinary_keys_are_not_secrets(path: str) -> None:
    assert not is_secret_key(path)


def test_masking_is_keyed_stable_and_hides_url_passwords() -> None:
    masker, other = SecretMasker(b"k" * 32), SecretMasker(b"o" * 32)
    assert masker.mask("db.password", "s3cret") == masker.mask("db.password", "s3cret")
    assert masker.mask("db.password", "s3cret") != other.mask("db.password", "s3cret")
    assert "s3cret" not in masker.mask("db.password", "s3cret")
    url = masker.mask("upstream", "https://user:pw123@example.com/x")
    assert url.startswith("https://user:<secret hmac:")
    assert "pw123" not in url


def test_nginx_repeated_directives_are_keyed_by_their_arguments_not_their_order() -> None:
    first = parse(
        b"server { listen 443; listen [::]:443; add_header A 1; add_header B 2; }",
        FileFormat.NGINX,
        "n",
        100,
    )
    reordered = parse(
        b"server { listen [::]:443; listen 443; add_header B 2; add_header A 1; add_header C 3; }",
        FileFormat.NGINX,
        "n",
        100,
    )
    assert {k: v for k, v in reordered.items() if k != "server.add_header C"} == first
    assert first["server.add_header A"] == "1"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"http { server { listen 80; }", "never closed"),
        (b"listen 80", "has no ';'"),
        (b"}", "unexpected '}'"),
    ],
)
def test_broken_nginx_files_name_the_line(text: bytes, problem: str) -> None:
    with pytest.raises(BadInput, match=problem):
        parse(text, FileFormat.NGINX, "nginx.conf", 100)


def test_apache_sections_must_close() -> None:
    with pytest.raises(BadInput, match="<VirtualHost> is never closed"):
        parse(b"<VirtualHost *:80>\nServerName a\n", FileFormat.APACHE, "httpd.conf", 100)


def test_an_alias_bomb_stops_at_the_key_budget() -> None:
    document: list[object] = ["lol"]
    for _ in range(30):
        document = [document, document]  # 2**30 leaves, shared
    with pytest.raises(TooManyKeys, match="more than 1000 keys"):
        flatten(document, 1000, "bomb.yaml")


def test_deeply_nested_json_is_a_clear_error_not_a_crash() -> None:
    with pytest.raises(BadInput, match=r"nested too deeply|invalid JSON"):
        parse(b"[" * 100_000 + b"]" * 100_000, FileFormat.JSON, "deep.json", 1000)


def test_lists_of_scalars_are_one_value_and_odd_keys_are_quoted() -> None:
    assert flatten({"a.b": {"c": [1, "x", None]}}, 10, "o") == {'["a.b"].c': "[1, x, null]"}


_NGINX_SITE = "server {\n  listen 80;\n  root /var/www;\n  location / { try_files $uri =404; }\n}\n"
_LOGROTATE = "/var/log/nginx/*.log {\n\tdaily\n\trotate 14\n\tcompress\n}\n"
_UFW_APP = "[Nginx HTTP]\ntitle=Web Server (Nginx, HTTP)\nports=80/tcp\n"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("/etc/nginx/nginx.conf", "", FileFormat.NGINX),
        ("/etc/nginx/sites-enabled/api", _NGINX_SITE, FileFormat.NGINX),
        ("/srv/sites/api", _NGINX_SITE, FileFormat.NGINX),
        ("/etc/logrotate.d/nginx", _LOGROTATE, FileFormat.TEXT),
        ("/etc/ufw/applications.d/nginx", _UFW_APP, FileFormat.INI),
        ("/etc/apache2/apache2.conf", "", FileFormat.APACHE),
        (
            "/etc/apache2/sites-available/x.conf",
            "<VirtualHost *:80>\n</VirtualHost>\n",
            FileFormat.APACHE,
        ),
        ("/etc/haproxy/haproxy.cfg", "", FileFormat.HAPROXY),
        ("/etc/lb/main.cfg", "global\n\tdaemon\ndefaults\n\tmode http\n", FileFormat.HAPROXY),
        ("/etc/cloud/cloud.cfg.d/05_logging.cfg", "_log:\n - x\n", FileFormat.YAML),
        ("/etc/ssh/sshd_config", "", FileFormat.SSH),
        ("/etc/ssh/sshd_config.d/hardening.conf", "PermitRootLogin no\n", FileFormat.SSH),
        ("/etc/redis/redis.conf", "", FileFormat.REDIS),
        ("/srv/app/config.yml", "", FileFormat.YAML),
        ("/srv/app/settings.toml", "", FileFormat.TOML),
        ("/etc/app.cfg", "[db]\nhost = a\n", FileFormat.INI),
        ("/etc/sysctl.conf", "net.ipv4.ip_forward = 0\n", FileFormat.TEXT),
        ("/etc/nginx/.htpasswd", "", FileFormat.HTPASSWD),
        ("/srv/auth/users", "alice:$apr1$Xk3$Qm0dQ6Kx0Yl3rG1sVbS0y.\n", FileFormat.HTPASSWD),
        ("/srv/auth/digest", "bob:ops:0123456789abcdef0123456789abcdef\n", FileFormat.HTPASSWD),
        ("/etc/apache2/mods-available/dir.conf", "DirectoryIndex index.html\n", FileFormat.APACHE),
    ],
)
def test_formats_are_detected_from_exact_names_and_content_never_a_path_substring(
    name: str, content: str, expected: FileFormat
) -> None:
    assert detect_format(PurePath(name), content) is expected


def test_secrets_inside_values_are_masked_too() -> None:
    masker = SecretMasker(b"k" * 32)
    environment = masker.mask("environment", "[DB_PASSWORD=zz9, MODE=strict]")
    dsn = masker.mask("url", "postgres://app:p@ss/w0rd@db/app")
    assert "zz9" not in environment
    assert "MODE=strict" in environment
    assert "p@ss" not in dsn
    assert "w0rd" not in dsn
    assert dsn.endswith("@db/app")


TEXT_SECRETS = {
    "export DB_PASSWORD=hunter2-export": "hunter2-export",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig-header": "c2VjcmV0.sig-header",
    'curl -H "Authorization: Bearer tok-curl-123456" http://127.0.0.1/': "tok-curl-123456",
    "Bearer tok-bare-987654": "tok-bare-987654",
    "--password=s3cr3t-flag": "s3cr3t-flag",
    "requirepass foobared-redis": "foobared-redis",
    "masterauth two words-redis": "words-redis",
    "auth = aut-val-1": "aut-val-1",
    "bearer = bea-val-1": "bea-val-1",
    "jwt = jwt-val-1": "jwt-val-1",
    "x-auth = xau-val-1": "xau-val-1",
    "session = ses-val-1": "ses-val-1",
    "x-api-key = xak-val-1": "xak-val-1",
    "token: tok-val-1": "tok-val-1",
    "cookie = coo-val-1": "coo-val-1",
    "private_key = pk-val-1": "pk-val-1",
    "set PGPASSWORD pgpw-set-1": "pgpw-set-1",
    "proxy https://user:pw-in-url-1@127.0.0.1/": "pw-in-url-1",
    'ENV DB_PASSWORD="quoted-pw-1" MODE=x': "quoted-pw-1",
    "{'token': 'json-tok-1'}": "json-tok-1",
    "alice:$apr1$Xk3$Qm0dQ6Kx0Yl3rG1sVbS0y.": "Qm0dQ6Kx0Yl3rG1sVbS0y.",
    "pg_user: SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy": "c3RvcmVk",
}


@pytest.mark.hostile_peer
@pytest.mark.parametrize("line", TEXT_SECRETS, ids=TEXT_SECRETS.values())
def test_a_text_line_keeps_its_secret_out_of_both_key_and_value(line: str) -> None:
    # Given a text config line holding a secret, shaped `key = value` or not
    flat = parse(f"# app\n{line}\nmode = strict\n".encode(), FileFormat.TEXT, "app.env", 100)

    # When it is masked as config_drift masks every source
    masked = SecretMasker(b"k" * 32).mask_all(flat)

    # Then the secret is in no key and no value, and the other lines are untouched
    secret = TEXT_SECRETS[line]
    assert [k for k in masked if secret in k] == []
    assert [v for v in masked.values() if secret in v] == []
    assert masked["mode"] == "strict"
    assert len(masked) == 2


def test_masked_keys_are_stable_so_a_changed_secret_line_is_drift() -> None:
    masker = SecretMasker(b"k" * 32)
    before = masker.mask_all(
        parse(b"curl -H 'Authorization: Bearer aaa-111'\n", FileFormat.TEXT, "t", 9)
    )
    again = masker.mask_all(
        parse(b"curl -H 'Authorization: Bearer aaa-111'\n", FileFormat.TEXT, "t", 9)
    )
    after = masker.mask_all(
        parse(b"curl -H 'Authorization: Bearer bbb-222'\n", FileFormat.TEXT, "t", 9)
    )
    assert before == again
    assert before != after


def test_switches_under_secret_looking_keys_stay_visible() -> None:
    masker = SecretMasker(b"k" * 32)
    assert masker.mask("auth", "off") == "off"
    assert masker.mask("security.session.cookie_secure", "false") == "false"
    assert masker.mask("auth", "aut-val-1") != "aut-val-1"


@pytest.mark.parametrize(
    "path",
    [
        "ServerTokens",
        "ServerSignature",
        "password_encryption",
        'Session["session.cookie_secure"]',
        'Session["session.cookie_lifetime"]',
        "Directory /var/www/private.Require",
        "secrets.d/app.conf:mode",
        "PasswordAuthentication",
        "passwordauthentication",
        "PermitEmptyPasswords",
        "http.ssl_session_cache",
        "tls-auth-clients",
        "server api.auth_basic",
        "Host *.StrictHostKeyChecking",
        "SSLPassPhraseDialog",
        "AuthType",
        "defaults.timeout client",
    ],
)
def test_settings_about_secrets_and_anything_under_a_secret_looking_parent_are_shown(
    path: str,
) -> None:
    assert not is_secret_key(path)


@pytest.mark.parametrize(
    "path",
    [
        "listen stats.stats auth",
        "env AWS_SECRET_ACCESS_KEY",
        "http.auth_http_header X-Auth-Key",
        "masterauth",
        "tls-key-file-pass",
        "Header always set Authorization",
        'PHP["mysqli.default_pw"]',
        "scrape_configs[job_name=x].basic_auth.password",
        "conf.d/redis.conf:requirepass",
    ],
)
def test_directives_whose_arguments_are_secrets_are_recognised(path: str) -> None:
    assert is_secret_key(path)


def test_a_path_to_a_key_file_is_shown_but_a_password_that_looks_like_a_path_is_not() -> None:
    masker = SecretMasker(b"k" * 32)
    assert masker.mask("server api.ssl_certificate_key", "/etc/ssl/private/api.key") == (
        "/etc/ssl/private/api.key"
    )
    assert (
        masker.mask("HostKey", "/etc/ssh/ssh_host_ed25519_key") == "/etc/ssh/ssh_host_ed25519_key"
    )
    assert "/secret" not in masker.mask("db.password", "/secret")
    assert "pw1" not in masker.mask("user alice", "on >pw1 ~* +@all")
    assert masker.mask("user alice", "on >pw1 ~* +@all").startswith("on >")
    assert "$6$salt" not in masker.mask("userlist ops.user dev", "password $6$salt$hash")


def test_nginx_regex_locations_compare_in_order_and_same_identity_servers_by_content() -> None:
    first = b"location ~ \\.php$ { deny all; }\nlocation ~* \\.(png|jpg)$ { expires 1d; }\n"
    second = b"location ~* \\.(png|jpg)$ { expires 1d; }\nlocation ~ \\.php$ { deny all; }\n"
    before = parse(b"server { server_name a; %s }" % first, FileFormat.NGINX, "n", 100)
    after = parse(b"server { server_name a; %s }" % second, FileFormat.NGINX, "n", 100)
    assert {k for k in before if before[k] != after.get(k)} == {"server a.location regex order"}

    twins = (b"server { listen 80; return 301 https://a; }", b"server { listen 80; root /a; }")
    swapped = parse(b"\n".join(reversed(twins)), FileFormat.NGINX, "n", 100)
    assert parse(b"\n".join(twins), FileFormat.NGINX, "n", 100) == swapped


def test_configured_severity_rules_win_over_the_built_in_ones() -> None:
    item = DriftItem("sshd", "PermitRootLogin", Change.CHANGED, "no", "yes")
    assert severity_of(item, (), Severity.MEDIUM) is Severity.CRITICAL
    accepted = SeverityRule(path="sshd|permitrootlogin", severity=Severity.LOW)
    assert severity_of(item, (accepted,), Severity.MEDIUM) is Severity.LOW


def test_a_document_nested_deeper_than_the_tree_walk_still_drifts_setting_by_setting() -> None:
    document: dict[str, object] = {}
    innermost = document
    for _ in range(5000):  # past Python's recursion limit
        innermost["a"] = {}
        innermost = innermost["a"]  # type: ignore[assignment]
    innermost["x"] = 1
    approved = flatten(document, 10**6, "deep.yaml")
    innermost["x"], innermost["y"] = 2, 3
    observed = flatten(document, 10**6, "deep.yaml")

    items = diff("s", approved, observed)

    assert [(item.change, item.path[-2:], item.after) for item in items] == [
        (Change.CHANGED, ".x", "2"),
        (Change.ADDED, ".y", "3"),
    ]

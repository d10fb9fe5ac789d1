#!/bin/sh
# Make the secret files compose.yaml reads from ./secrets/ (random passwords; files that
# exist are kept). Edit secrets/slack_webhook and secrets/smtp_password afterwards for
# Alertmanager's Slack and e-mail receivers (deploy/alertmanager/alertmanager.yml).
set -eu
cd "$(dirname "$0")/secrets"
umask 077
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }
[ -s postgres_password ] || random > postgres_password
[ -s store_url ] || printf 'postgresql+psycopg://apivigil:%s@postgres:5432/apivigil\n' \
    "$(cat postgres_password)" > store_url
[ -s grafana_admin_password ] || random > grafana_admin_password
[ -s slack_webhook ] || echo 'https://hooks.slack.com/services/CHANGE/ME' > slack_webhook
[ -s smtp_password ] || echo 'change-me' > smtp_password
# The containers run as other users than you and see only the files (bind mounts): let them
# read the files, and keep other users of this host out of the directory.
chmod 0644 postgres_password store_url grafana_admin_password slack_webhook smtp_password
chmod 0700 .
echo "secrets in $(pwd): $(ls | tr '\n' ' ')"

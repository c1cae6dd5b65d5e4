#!/usr/bin/env bash
# What `npm test` needs besides npm's packages: the cluster tests start a throwaway PostgreSQL
# server from its installed binaries and run the shipped HAProxy front, and the dashboard's
# browser tests start a headless Chromium. On Debian as root the missing packages are installed
# here (as CI does); elsewhere this says what to install.
set -euo pipefail

missing=()
# A server given by ISOLET_TEST_DATABASE_URL stands in for the local binaries (test/support/postgres.ts).
[[ -n ${ISOLET_TEST_DATABASE_URL:-} ]] || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v haproxy >/dev/null || missing+=(haproxy)
# ISOLET_TEST_CHROMIUM names another Chromium or Chrome binary (test/support/browser.ts, which
# looks for the same names on PATH); a font comes along, so that pages lay out as they would.
[[ -n ${ISOLET_TEST_CHROMIUM:-} ]] || command -v chromium chromium-browser google-chrome google-chrome-stable >/dev/null ||
  missing+=(chromium fonts-liberation)
((${#missing[@]})) || exit 0

if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  echo "isolet: installing ${missing[*]} for the cluster and browser tests (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "isolet: the cluster and browser tests need ${missing[*]}: install them (Debian/Ubuntu: sudo apt-get install -y ${missing[*]}), or point ISOLET_TEST_DATABASE_URL at a PostgreSQL server, put haproxy on PATH and ISOLET_TEST_CHROMIUM at a Chromium or Chrome binary" >&2
exit 1

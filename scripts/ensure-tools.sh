#!/usr/bin/env bash
# Make sure system tools are on PATH: `scripts/ensure-tools.sh COMMAND=DEBIAN_PACKAGE ...`
# e.g. `scripts/ensure-tools.sh java=openjdk-17-jre-headless mvn=maven chromium=chromium`.
# Idempotent: does nothing for a command already there. Installs the missing ones with apt-get only
# when run as root on Debian/Ubuntu; otherwise says what to run and fails.
set -euo pipefail

missing=()
for spec in "$@"; do
    command="${spec%%=*}"
    package="${spec#*=}"
    if command -v "$command" >/dev/null 2>&1; then
        echo "ensure-tools: $command already installed at $(command -v "$command")"
    else
        missing+=("$package")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-tools: missing ${missing[*]}; install them as root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "ensure-tools: installing ${missing[*]} with apt-get (as root)"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq || ! apt-get install -y -qq "${missing[@]}" >/dev/null; then
    echo "ensure-tools: apt-get could not install ${missing[*]}; install them by hand" >&2
    exit 1
fi
for spec in "$@"; do
    command="${spec%%=*}"
    if ! command -v "$command" >/dev/null 2>&1; then
        echo "ensure-tools: installed ${spec#*=} but \`$command\` is still not on PATH" >&2
        exit 1
    fi
done
echo "ensure-tools: installed ${missing[*]}"

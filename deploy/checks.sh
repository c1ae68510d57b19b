# shellcheck shell=bash
# What deploy/apply.sh accepts, sourced by it and by the bootstrap (which checks its config up front,
# so a deploy is not refused after every other step ran).

# An image tag.
is_tag() { [[ "$1" =~ ^[A-Za-z0-9_.-]{1,128}$ ]]; }
# A lower-case domain name.
is_domain() { [[ "$1" =~ ^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$ ]]; }
# Where images are pushed: a lower-case registry host, an optional port, and a path (ghcr.io/your-org).
is_registry() { [[ "$1" =~ ^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*$ ]]; }

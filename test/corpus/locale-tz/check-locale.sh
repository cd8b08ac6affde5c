#!/bin/sh
# Fails unless the locale and the time zone the image configured are in effect.
set -eu
if locale 2>&1 | grep -q 'Cannot set'; then echo "locale $LANG is not installed" >&2; exit 1; fi
[ "$(locale charmap)" = UTF-8 ]
# $TZ names the zone, and /etc/localtime says the same without it
[ "$(date -d '2024-01-15 12:00 UTC' +%Z)" = CET ]
[ "$(env -u TZ date -d '2024-07-15 12:00 UTC' +%Z)" = CEST ]
echo "$LANG $(cat /etc/timezone) $(locale charmap)"

#!/bin/sh
set -e

# first arg is `-f` or `--some-option`
if [ "${1#-}" != "$1" ]; then
	set -- app-server "$@"
fi

# this image's "server": reports who it runs as and what it can write
if [ "$1" = 'app-server' ]; then
	shift
	set -- sh -c 'echo "app-server as $(id -un):$(id -gn) in $PWD"; touch /data/written && ls -ln /data/written' app-server "$@"
	# allow the container to be started with `--user`
	if [ "$(id -u)" = '0' ]; then
		find . \! -user app -exec chown app '{}' +
		exec setpriv --reuid=app --regid=app --init-groups "$0" "$@"
	fi
fi

exec "$@"

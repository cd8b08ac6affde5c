#!/bin/sh
echo "$GREETING"
cat /app/built.txt
echo "running as pid $$ on $(hostname)"

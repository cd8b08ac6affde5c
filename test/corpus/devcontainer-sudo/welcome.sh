#!/bin/sh
echo "welcome, $(id -un) ($(id -u):$(id -g)) in $(pwd)"

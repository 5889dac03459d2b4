#!/usr/bin/env bash
# Init step of the sidecar pattern, as a Kubernetes init container runs it in a pod (after Istio's
# istio-iptables): in the CURRENT network namespace, send every outbound TCP connection to the sidecar
# Envoy's port, except the sidecar's own connections (its uid) and loopback traffic.
#
#   ip netns exec NS envoy/transparent/iptables-init.sh PROXY_UID PROXY_PORT
#
# The rules live in the namespace and disappear with it. Envoy's original_dst listener filter reads the
# address the app dialled (SO_ORIGINAL_DST) from the connection this rule redirected.
set -euo pipefail

(($# == 2)) && [[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ ]] || { echo "usage: $0 PROXY_UID PROXY_PORT" >&2; exit 2; }
uid=$1 port=$2
ipt() { iptables -w -t nat "$@"; }

ipt -N MESHCRYPT_REDIRECT
ipt -A MESHCRYPT_REDIRECT -p tcp -j REDIRECT --to-ports "$port"
ipt -N MESHCRYPT_OUTPUT
ipt -A OUTPUT -p tcp -j MESHCRYPT_OUTPUT
# the sidecar's own upstream connections (to the broker, to the filter-service) leave untouched
ipt -A MESHCRYPT_OUTPUT -m owner --uid-owner "$uid" -j RETURN
ipt -A MESHCRYPT_OUTPUT -m owner --gid-owner "$uid" -j RETURN
# loopback stays loopback (the sidecar's admin, an app talking to itself)
ipt -A MESHCRYPT_OUTPUT -d 127.0.0.1/32 -j RETURN
ipt -A MESHCRYPT_OUTPUT -j MESHCRYPT_REDIRECT

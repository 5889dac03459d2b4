#!/usr/bin/env bash
# Builds the demo's sample apps from the package registries, each only when its output is missing or
# older than its sources, so CI and repeated demos build once:
#   go-producer/go-producer        go build (franz-go, pinned in go.sum)
#   node-producer/node_modules     npm ci (kafkajs, pinned in package-lock.json)
#   spring/*/target/*.jar          ./mvnw -f spring/pom.xml package (Spring Boot, spring-kafka)
# Usage: sample-apps/build.sh [go|node|spring ...]   (default: all). Needs go, npm, a JDK >= 21.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")

say() { printf 'sample-apps: %s\n' "$*"; }
die() { printf 'sample-apps: error: %s\n' "$*" >&2; exit 1; }
# true when $1 is missing or any file under the remaining paths is newer than it
stale() {
  local out=$1
  shift
  [[ -e $out ]] || return 0
  [[ -n $(find "$@" -newer "$out" -type f -print -quit) ]]
}

build_go() {
  command -v go >/dev/null || die "go is not installed (https://go.dev/doc/install, or apt-get install golang-go)"
  local dir=$HERE/go-producer
  stale "$dir/go-producer" "$dir/main.go" "$dir/go.mod" "$dir/go.sum" || return 0
  say "building go-producer (go build)"
  (cd "$dir" && go build -trimpath -o go-producer.tmp . && mv go-producer.tmp go-producer)
}

build_node() {
  command -v npm >/dev/null || die "npm is not installed (apt-get install nodejs npm)"
  local dir=$HERE/node-producer
  stale "$dir/node_modules/.package-lock.json" "$dir/package.json" "$dir/package-lock.json" || return 0
  say "installing node-producer dependencies (npm ci)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}

build_spring() {
  local dir=$HERE/spring
  stale "$dir/consumer/target/spring-consumer.jar" "$dir/pom.xml" "$dir/consumer/pom.xml" "$dir/consumer/src" \
    || stale "$dir/http-echo/target/http-echo.jar" "$dir/pom.xml" "$dir/http-echo/pom.xml" "$dir/http-echo/src" \
    || return 0
  [[ -n ${JAVA_HOME:-} ]] || die "JAVA_HOME is not set (a JDK >= 21)"
  say "building the Spring Boot apps (spring-consumer, http-echo)"
  (cd "$ROOT" && ./mvnw -q -B -f sample-apps/spring/pom.xml -DskipTests package)
}

targets=("$@")
((${#targets[@]} > 0)) || targets=(go node spring)
for t in "${targets[@]}"; do
  case $t in
    go) build_go ;;
    node) build_node ;;
    spring) build_spring ;;
    *) die "unknown app '$t' (one of: go node spring)" ;;
  esac
done

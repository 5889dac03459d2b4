#!/usr/bin/env bash
# The ext_proc bridge (dynamic module, docs/dynamic-module.md) vs Envoy's built-in network ext_proc filter: produce
# and consume throughput on an encrypted topic, direct to the broker and through each, with the CPU time per record of
# Envoy and of the filter-service (user + system, /proc/<pid>/stat). Two meshes side by side that differ only in the
# Kafka filter (`up` vs `up --bridge`), both with the same MESHCRYPT_TLS (default on: mutual TLS to the
# filter-service, as both filters run in a real mesh; MESHCRYPT_TLS=off compares them in plaintext). Per round the three paths run back to back, in an order
# that rotates with the round, so drift and order hit each alike; round 1 is a warm-up (JIT), the summary is the
# median of the others, and the bridge / ext_proc ratio is taken round by round.
#
#   tests/bench/bridge-vs-ext-proc.sh [records=500000] [record-size=1024] [rounds=4]
#
# Meshes: MESHCRYPT_HOME=tests/target/bench-{ext-proc,bridge}, port bases MESHCRYPT_PORT_BASE (default 26000) and
# BRIDGE_PORT_BASE (default base + 1000); both are stopped at the end. One partition per topic, a new topic per run
# (deleted after it).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RECORDS=${1:-500000}
SIZE=${2:-1024}
ROUNDS=${3:-4}
BASE_EXT=${MESHCRYPT_PORT_BASE:-26000}
BASE_BRIDGE=${BRIDGE_PORT_BASE:-$((BASE_EXT + 1000))}
export MESHCRYPT_TLS=${MESHCRYPT_TLS:-on}
declare -A HOME_OF=([ext_proc]=$ROOT/tests/target/bench-ext-proc [bridge]=$ROOT/tests/target/bench-bridge)
declare -A BASE_OF=([ext_proc]=$BASE_EXT [bridge]=$BASE_BRIDGE)

mc() { # ext_proc|bridge, then the ./meshcrypt arguments
  local m=$1
  shift
  MESHCRYPT_HOME=${HOME_OF[$m]} MESHCRYPT_PORT_BASE=${BASE_OF[$m]} "$ROOT/meshcrypt" "$@"
}
trap 'mc ext_proc down >/dev/null; mc bridge down >/dev/null' EXIT
# a mesh left in the other mode by an earlier run refuses to switch until it is down
mc ext_proc down >/dev/null
mc bridge down >/dev/null
mc ext_proc up >/dev/null
mc bridge up --bridge >/dev/null

# shellcheck source=tests/bench/lib.sh
source "$ROOT/tests/bench/lib.sh"
declare -A BOOTSTRAP BROKER FILTER_PID ENVOY_PID
for m in ext_proc bridge; do
  FILTER_PID[$m]=$(cat "${HOME_OF[$m]}/pids/filter-service.pid")
  ENVOY_PID[$m]=$(cat "${HOME_OF[$m]}/pids/envoy.pid")
  BOOTSTRAP[$m]=$(sed -n 's/^KAFKA_BOOTSTRAP=//p' "${HOME_OF[$m]}/endpoints.env")
  BROKER[$m]=$(sed -n 's/^BROKER_DIRECT=//p' "${HOME_OF[$m]}/endpoints.env")
done
# each mesh runs the filter it is named for, and encrypts (the launcher's policy: every topic)
admin_of() { sed -n 's/^ENVOY_ADMIN=//p' "${HOME_OF[$1]}/endpoints.env"; }
curl -fsS "http://$(admin_of bridge)/config_dump?resource=dynamic_listeners" | grep -q '"envoy.filters.network.dynamic_modules"' \
  || { echo "the bridge mesh's Envoy does not run the module" >&2; exit 1; }
curl -fsS "http://$(admin_of ext_proc)/config_dump?resource=dynamic_listeners" | grep -q '"envoy.filters.network.ext_proc"' \
  || { echo "the ext_proc mesh's Envoy does not run network ext_proc" >&2; exit 1; }
for m in ext_proc bridge; do
  topic=bench-enc-check-$m-$$
  bench_topic "${HOME_OF[$m]}" "${BROKER[$m]}" "$topic" 1
  bench_produce "${HOME_OF[$m]}" "${BOOTSTRAP[$m]}" "$topic" 10 "$SIZE" >/dev/null
  # ProducerPerformance's values are SIZE random capital letters
  stored=$(bench_first_value "${HOME_OF[$m]}" "${BROKER[$m]}" "$topic")
  fetched=$(bench_first_value "${HOME_OF[$m]}" "${BOOTSTRAP[$m]}" "$topic")
  bench_delete_topic "${HOME_OF[$m]}" "${BROKER[$m]}" "$topic"
  grep -aqxE "[A-Z]{$SIZE}" <<<"$fetched" || { echo "$m: the value consumed through the mesh is not the plaintext" >&2; exit 1; }
  if [[ -z $stored ]] || grep -aqE "[A-Z]{$SIZE}" <<<"$stored"; then
    echo "$m: the broker holds no envelope" >&2
    exit 1
  fi
done

printf '# %s records of %s bytes, encrypted topic, 1 partition, acks=all, linger.ms=5, batch.size=65536, %s rounds, MESHCRYPT_TLS=%s\n' \
  "$RECORDS" "$SIZE" "$ROUNDS" "$MESHCRYPT_TLS"
row='%-6s %-9s %-8s %12s %9s %18s %16s\n'
printf "$row" round path op records/s MB/s filter_us/record envoy_us/record
declare -A SAMPLES # "path op field" -> space-separated values of the measured rounds
declare -a P_RATIO C_RATIO EP_RATIO EC_RATIO
sample() { SAMPLES["$1"]+=" $2"; }
for round in $(seq 1 "$ROUNDS"); do
  case $((round % 3)) in
    1) order=(direct ext_proc bridge) ;;
    2) order=(ext_proc bridge direct) ;;
    0) order=(bridge direct ext_proc) ;;
  esac
  declare -A THIS_ROUND=()
  for path in "${order[@]}"; do
    m=$path
    [[ $path == direct ]] && m=ext_proc # direct: the ext_proc mesh's broker, no Envoy
    bootstrap=${BOOTSTRAP[$m]}
    [[ $path == direct ]] && bootstrap=${BROKER[$m]}
    topic=bench-enc-$path-$round-$$
    bench_topic "${HOME_OF[$m]}" "${BROKER[$m]}" "$topic" 1
    for op in produce consume; do
      f0=$(bench_cpu_ticks "${FILTER_PID[$m]}"); e0=$(bench_cpu_ticks "${ENVOY_PID[$m]}")
      if [[ $op == produce ]]; then
        read -r rps mbs _ < <(bench_produce "${HOME_OF[$m]}" "$bootstrap" "$topic" "$RECORDS" "$SIZE")
      else
        read -r rps mbs < <(bench_consume "${HOME_OF[$m]}" "$bootstrap" "$topic" "$RECORDS")
      fi
      fus=-; eus=-
      if [[ $path != direct ]]; then
        fus=$(bench_us_per_record $(($(bench_cpu_ticks "${FILTER_PID[$m]}") - f0)) "$RECORDS")
        eus=$(bench_us_per_record $(($(bench_cpu_ticks "${ENVOY_PID[$m]}") - e0)) "$RECORDS")
      fi
      printf "$row" "$round" "$path" "$op" "$rps" "$mbs" "$fus" "$eus"
      THIS_ROUND["$path $op"]=$rps
      THIS_ROUND["$path $op envoy"]=$eus
      if ((round > 1 || ROUNDS == 1)); then
        sample "$path $op rps" "$rps"
        sample "$path $op filter" "$fus"
        sample "$path $op envoy" "$eus"
      fi
    done
    bench_delete_topic "${HOME_OF[$m]}" "${BROKER[$m]}" "$topic"
  done
  if ((round > 1 || ROUNDS == 1)); then
    P_RATIO+=("$(bench_ratio "${THIS_ROUND[bridge produce]}" "${THIS_ROUND[ext_proc produce]}")")
    C_RATIO+=("$(bench_ratio "${THIS_ROUND[bridge consume]}" "${THIS_ROUND[ext_proc consume]}")")
    EP_RATIO+=("$(bench_ratio "${THIS_ROUND[bridge produce envoy]}" "${THIS_ROUND[ext_proc produce envoy]}")")
    EC_RATIO+=("$(bench_ratio "${THIS_ROUND[bridge consume envoy]}" "${THIS_ROUND[ext_proc consume envoy]}")")
  fi
done

median_of() { # "path op field", decimals: the median of its samples, "-" stays "-"
  local -a v
  read -r -a v <<<"${SAMPLES[$1]:-}"
  [[ ${v[0]:-} == - ]] && { echo -; return; }
  bench_median "${v[@]}" | awk -v d="$2" '{printf "%.*f\n", d, $1}'
}
echo
echo "| path | produce rec/s | consume rec/s | produce Envoy µs/rec | consume Envoy µs/rec | produce filter-service µs/rec | consume filter-service µs/rec |"
echo "|---|---|---|---|---|---|---|"
for path in direct ext_proc bridge; do
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$path" "$(median_of "$path produce rps" 0)" "$(median_of "$path consume rps" 0)" \
    "$(median_of "$path produce envoy" 1)" "$(median_of "$path consume envoy" 1)" \
    "$(median_of "$path produce filter" 1)" "$(median_of "$path consume filter" 1)"
done
echo
echo "# bridge / ext_proc throughput per measured round: produce ${P_RATIO[*]}, consume ${C_RATIO[*]}"
echo "# median: produce $(bench_median "${P_RATIO[@]}"), consume $(bench_median "${C_RATIO[@]}") (issue 16: >= 0.90)"
echo "# bridge / ext_proc Envoy CPU per record per measured round: produce ${EP_RATIO[*]}, consume ${EC_RATIO[*]}"
echo "# median: produce $(bench_median "${EP_RATIO[@]}"), consume $(bench_median "${EC_RATIO[@]}")"

#!/usr/bin/env bash
# Fuzzing campaign over the Jazzer @FuzzTest harnesses of filter-service, one harness at a time.
#
#   tests/fuzz/run.sh MINUTES [FILTER]
#
# MINUTES  how long each harness fuzzes (a number, decimals allowed: 0.5 = 30 s)
# FILTER   optional extended regex matched against "Class#method" (e.g. FrameStream, 'Envelope.*V2', KafkaConnection)
#
# Each harness runs in its own Maven/Surefire JVM (-Dtest=Class#method, JAZZER_FUZZ=1, Jazzer hooks on); its
# saved inputs are replayed first, then libFuzzer mutates for MINUTES. Prints per harness the executions, exec/s
# and the result, and at the end a table; exits 1 when any harness found something, 2 on a setup error.
#
# Where things go (jazzer-junit's own layout, nothing is moved):
#   crashes      jazzer-junit writes them as filter-service/src/test/resources/<package>/<Class>Inputs/<method>/crash-<sha1>;
#                this script turns each into hex text under filter-service/src/test/fuzz-inputs/ (the committed
#                regression corpus: the build writes the raw files under the test classes, and a plain
#                `./mvnw -pl filter-service test` replays them) and removes the binary file
#   new corpus   filter-service/.cifuzz-corpus/<fully.qualified.Class>/<method>/  (not committed; reused by the
#                next campaign and replayed by local test runs)
#   logs         filter-service/target/fuzz-logs/<Class>.<method>.log
# CI never fuzzes: without JAZZER_FUZZ the harnesses only replay the committed inputs.
#
# FUZZ_KEEP_GOING=N  keep fuzzing after a finding, until N distinct findings (Jazzer dedups them by stack trace);
#                    default 1: stop at the first
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MODULE=$ROOT/filter-service
TESTS=$MODULE/src/test/java
RESOURCES=$MODULE/src/test/resources
CORPUS=$MODULE/.cifuzz-corpus
LOGS=$MODULE/target/fuzz-logs

usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

(($# >= 1 && $# <= 2)) || usage
MINUTES=$1
FILTER=${2:-}
[[ $MINUTES =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "MINUTES must be a number, got '$MINUTES'" >&2; usage; }
SECONDS_EACH=$(awk -v m="$MINUTES" 'BEGIN { s = int(m * 60 + 0.5); print (s < 1 ? 1 : s) }')

# A JDK >= 21, like ./meshcrypt picks one: JAVA_HOME if new enough, else the newest under /usr/lib/jvm.
java_major() { "$1/bin/java" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}'; }
if [[ -z ${JAVA_HOME:-} || ! -x ${JAVA_HOME}/bin/javac || $(java_major "$JAVA_HOME") -lt 21 ]]; then
  best="" best_major=0
  for jdk in /usr/lib/jvm/*; do
    [[ -x $jdk/bin/javac ]] || continue
    major=$(java_major "$jdk")
    if ((${major:-0} > best_major)); then best=$jdk; best_major=$major; fi
  done
  ((best_major >= 21)) || { echo "no JDK >= 21 found; set JAVA_HOME" >&2; exit 2; }
  export JAVA_HOME=$best
fi
export PATH=$JAVA_HOME/bin:$PATH

# Every @FuzzTest method as Class#method (the harness classes are named *FuzzTest.java).
mapfile -t HARNESSES < <(
  grep -rl --include='*FuzzTest.java' '@FuzzTest' "$TESTS" | sort | while read -r file; do
    cls=$(basename "$file" .java)
    pkg=$(sed -n 's/^package \([a-z0-9_.]*\);/\1/p' "$file")
    awk -v cls="$cls" -v pkg="$pkg" '
      /@FuzzTest/ { want = 1; next }
      want && match($0, /void[ \t]+[A-Za-z0-9_]+[ \t]*\(/) {
        m = substr($0, RSTART, RLENGTH); sub(/void[ \t]+/, "", m); sub(/[ \t]*\($/, "", m)
        print pkg "." cls "#" m; want = 0
      }' "$file"
  done)
SELECTED=()
for h in "${HARNESSES[@]}"; do
  if [[ -z $FILTER || ${h##*.} =~ $FILTER ]]; then SELECTED+=("$h"); fi
done
((${#SELECTED[@]} > 0)) || { echo "no harness matches '$FILTER'; harnesses: ${HARNESSES[*]##*.}" >&2; exit 2; }

mkdir -p "$LOGS" "$CORPUS"
# The generated corpus is machine-local working state: it ignores itself so that no `git add -A` picks it up.
[[ -f $CORPUS/.gitignore ]] || printf '# written by tests/fuzz/run.sh: Jazzer'"'"'s working corpus is never committed\n*\n' >"$CORPUS/.gitignore"
echo "fuzzing ${#SELECTED[@]} harness(es), ${SECONDS_EACH}s each, Java $(java_major "$JAVA_HOME") at $JAVA_HOME"
echo "compiling..."
(cd "$ROOT" && ./mvnw -q -B -pl filter-service -am process-test-classes -DskipTests) >"$LOGS/compile.log" 2>&1 \
  || { echo "compile failed, see $LOGS/compile.log" >&2; tail -20 "$LOGS/compile.log" >&2; exit 2; }

inputs_dir() { # fqcn method -> the regression-corpus folder of that harness
  local fqcn=$1 method=$2
  echo "$RESOURCES/$(dirname "${fqcn//.//}")/${fqcn##*.}Inputs/$method"
}
hex_dir() { # fqcn method -> the committed hex inputs of that harness
  local fqcn=$1 method=$2
  echo "$MODULE/src/test/fuzz-inputs/$(dirname "${fqcn//.//}")/${fqcn##*.}Inputs/$method"
}
to_hex() { # raw-file hex-folder: commit-friendly hex text, 64 digits a line, then the binary file is removed
  mkdir -p "$2"
  python3 -c 'import sys; h=open(sys.argv[1],"rb").read().hex(); open(sys.argv[2],"w").write("".join(h[i:i+64]+"\n" for i in range(0,len(h),64)))' \
    "$1" "$2/$(basename "$1").hex"
  rm -f "$1"
  echo "$2/$(basename "$1").hex"
}
count_files() { if [[ -d $1 ]]; then find "$1" -maxdepth 1 -type f | wc -l; else echo 0; fi; }

ROWS=()
FOUND=0
for h in "${SELECTED[@]}"; do
  fqcn=${h%%#*} method=${h#*#} cls=${fqcn##*.}
  log=$LOGS/$cls.$method.log
  inputs=$(inputs_dir "$fqcn" "$method")
  corpus=$CORPUS/$fqcn/$method
  hexes=$(hex_dir "$fqcn" "$method")
  crashes_before=$(find "$inputs" -maxdepth 1 -name 'crash-*' 2>/dev/null | sort || true)
  saved=$(find "$hexes" -maxdepth 1 -name 'crash-*.hex' 2>/dev/null | sort || true)
  if [[ -n $saved ]]; then
    echo "    ($(wc -l <<<"$saved") saved crash input(s) of this harness are replayed first)"
  fi
  corpus_before=$(count_files "$corpus")
  echo
  echo "==> $cls#$method (${SECONDS_EACH}s), log: ${log#"$ROOT"/}"
  # The config readers compile the regexes an operator writes (http pathRegex, body patterns) by design: Jazzer's
  # regex-injection detector would only report that. Runaway regexes still show up as timeouts.
  extra=(-Djazzer.keep_going="${FUZZ_KEEP_GOING:-1}")
  case $cls in
    ConfigReaderFuzzTest) extra+=(-Djazzer.disabled_hooks=com.code_intelligence.jazzer.sanitizers.RegexInjection) ;;
  esac
  start=$(date +%s)
  rc=0
  # -Xmx bounds a decompression bomb so it is reported as an OutOfMemoryError finding, not a swapping machine.
  (cd "$ROOT" && JAZZER_FUZZ=1 ./mvnw -B -pl filter-service surefire:test \
      -Dtest="$cls#$method" -Dsurefire.failIfNoSpecifiedTests=false \
      -Djazzer.hooks=true -Djazzer.max_duration="${SECONDS_EACH}s" \
      -DargLine="-Xmx2g -XX:+EnableDynamicAgentLoading" \
      -DtrimStackTrace=false "${extra[@]}") >"$log" 2>&1 || rc=$?
  elapsed=$(($(date +%s) - start))

  # libFuzzer's closing lines: "#N DONE ... exec/s: E ..." when the time is up, "Done N runs in S second(s)" always.
  done_line=$(grep -aoE 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 || true)
  runs=$(awk '{print $2}' <<<"$done_line")
  secs=$(awk '{print $5}' <<<"$done_line")
  execs=$({ grep -aE '^#[0-9]+[[:space:]]+DONE' "$log" || true; } | tail -1 | { grep -aoE 'exec/s: [0-9]+' || true; } | awk '{print $2}')
  if [[ -z $runs ]]; then # killed before libFuzzer's closing lines: take its last status line
    last=$({ grep -aE '^#[0-9]+[[:space:]]' "$log" || true; } | tail -1)
    runs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$last")
  fi
  if [[ -z $execs && -n $runs && -n $secs && $secs -gt 0 ]]; then execs=$((runs / secs)); fi
  crashes_after=$(find "$inputs" -maxdepth 1 -name 'crash-*' 2>/dev/null | sort || true)
  new_crashes=$(comm -13 <(echo "$crashes_before") <(echo "$crashes_after") | sed '/^$/d')
  if [[ -n $new_crashes ]]; then
    new_crashes=$(while read -r f; do to_hex "$f" "$hexes"; done <<<"$new_crashes")
  fi
  corpus_new=$(($(count_files "$corpus") - corpus_before))

  if [[ -n $new_crashes ]] || grep -aq 'FuzzTestFinding\|== Java Exception\|Uncaught exception' "$log"; then
    result=CRASH
    FOUND=1
  elif ((rc != 0)); then
    result="ERROR(rc=$rc)"
    FOUND=1
  elif [[ -z $runs ]]; then
    result="NO-RUN"
    FOUND=1
  else
    result=OK
  fi
  printf '    executions: %s, exec/s: %s, wall: %ss, new corpus inputs: %s, result: %s\n' \
    "${runs:-?}" "${execs:-?}" "$elapsed" "$corpus_new" "$result"
  if [[ $result == CRASH ]]; then
    { grep -aE -m1 -A12 '== Java Exception|FuzzTestFinding' "$log" || true; } | sed 's/^/    | /'
    if [[ -n $new_crashes ]]; then
      while read -r f; do echo "    crash input: ${f#"$ROOT"/}"; done <<<"$new_crashes"
      echo "    It is now in the regression corpus (replayed by './mvnw -pl filter-service test', failing until fixed)."
      echo "    Not fixed yet and must not fail CI? Move it out of the replay:"
      echo "      mkdir -p filter-service/src/test/fuzz-findings/$cls/$method && git mv <crash input> filter-service/src/test/fuzz-findings/$cls/$method/"
      echo "    Reproduce: ./mvnw -pl filter-service test -Dtest='$cls#$method'"
    fi
  elif [[ $result != OK ]]; then
    tail -25 "$log" | sed 's/^/    | /'
  fi
  ROWS+=("$(printf '%-80s %12s %8s %6s  %s' "$cls#$method" "${runs:-?}" "${execs:-?}" "$corpus_new" "$result")")
done

echo
printf '%-80s %12s %8s %6s  %s\n' "harness" "executions" "exec/s" "corpus" "result"
printf '%s\n' "${ROWS[@]}"
echo
echo "New interesting inputs stay in ${CORPUS#"$ROOT"/}/<Class>/<method>/ (not committed; the next campaign resumes"
echo "from them). To promote some into the committed regression corpus, copy them (small, distinct ones) into"
echo "filter-service/src/test/fuzz-inputs/<package>/<Class>Inputs/<method>/ as hex text (NAME.hex, 64 hex digits a"
echo "line, e.g. with: python3 -c 'import sys;print(open(sys.argv[1],\"rb\").read().hex())' FILE) and commit; CI then"
echo "replays them."
exit "$FOUND"

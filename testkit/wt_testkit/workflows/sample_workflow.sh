#!/bin/sh
# Sample wt workflow __NAME__ __VERSION__ (built by wt_testkit.workflows).
# A test double: what it does is driven by its --config-file (see wt_testkit.workflows).
NAME='__NAME__'
VERSION='__VERSION__'

case "${1:-}" in
  --version) echo "$NAME $VERSION"; exit 0 ;;
  echo-stdin) cat; exit 0 ;;
  fail) echo "${3:-failing on purpose}" >&2; exit "${2:-3}" ;;
  run) ;;
  *) echo "usage: $NAME run --config-file F --execution-mode M --mock-io|--no-mock-io" \
          "[--otel-exporter X] [--otel-console-exporter-dst Y]" >&2
     exit 2 ;;
esac

config_file=
prev=
for a in "$@"; do
  [ "$prev" = --config-file ] && config_file=$a
  prev=$a
done
[ -n "$config_file" ] || { echo "$NAME: --config-file is required" >&2; exit 2; }
[ -r "$config_file" ] || { echo "$NAME: cannot read config file $config_file" >&2; exit 2; }

cfg() {
  sed -n "s/^$1:[[:space:]]*//p" "$config_file" | head -n 1 \
    | sed 's/[[:space:]]*$//; s/^"\(.*\)"$/\1/'
}

echo_file=$(cfg echo_file)
if [ -n "$echo_file" ]; then
  {
    printf 'name %s\n' "$NAME"
    printf 'version %s\n' "$VERSION"
    for a in "$@"; do printf 'argv %s\n' "$a"; done
    printf 'cwd %s\n' "$(pwd)"
    printf 'pid %s\n' "$$"
    printf 'config_mode %s\n' "$(stat -c %a "$config_file")"
    printf 'oom_score_adj %s\n' "$(cat /proc/self/oom_score_adj 2>/dev/null)"
    env | sed 's/^/env /'
  } > "$echo_file.tmp"
  cp "$config_file" "$echo_file.config"
  if [ -n "${LITHOPS_CONFIG_FILE:-}" ]; then
    cp "$LITHOPS_CONFIG_FILE" "$echo_file.lithops"
    printf 'lithops_mode %s\n' "$(stat -c %a "$LITHOPS_CONFIG_FILE")" >> "$echo_file.tmp"
  fi
  mv "$echo_file.tmp" "$echo_file"
fi

shift
mode=
mock=
while [ $# -gt 0 ]; do
  case "$1" in
    --config-file|--execution-mode|--otel-exporter|--otel-console-exporter-dst)
      [ $# -ge 2 ] || { echo "$NAME: $1 needs a value" >&2; exit 2; }
      [ "$1" = --execution-mode ] && mode=$2
      shift 2 ;;
    --mock-io|--no-mock-io) mock=$1; shift ;;
    *) echo "$NAME: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$mode" ] || { echo "$NAME: --execution-mode is required" >&2; exit 2; }
[ -n "$mock" ] || { echo "$NAME: --mock-io or --no-mock-io is required" >&2; exit 2; }

[ "$(cfg ignore_term)" = true ] && trap '' TERM

gsleep=$(cfg grandchild_sleep)
if [ -n "$gsleep" ]; then
  if [ "$(cfg grandchild_holds_output)" = true ]; then
    sleep "$gsleep" </dev/null &
  elif [ "$(cfg grandchild_setsid)" = true ]; then
    setsid sleep "$gsleep" </dev/null >/dev/null 2>&1 &
  elif [ "$(cfg grandchild_ignore_term)" = true ]; then
    ( trap '' TERM; exec sleep "$gsleep" ) </dev/null >/dev/null 2>&1 &
  else
    sleep "$gsleep" </dev/null >/dev/null 2>&1 &
  fi
  gpid=$!
  pid_file=$(cfg grandchild_pid_file)
  [ -n "$pid_file" ] && { echo "$gpid" > "$pid_file.tmp"; mv "$pid_file.tmp" "$pid_file"; }
fi

append_to=$(cfg append_to)
[ -n "$append_to" ] && { t=$(cfg tag); printf '%s\n' "${t:-ran}" >> "$append_to"; }
# try_read: paths the workflow tries to read, one verdict line each (isolation tests):
# READ (something in it), EMPTY (readable, nothing in it), DENIED (absent or unreadable).
for p in $(cfg try_read | tr ',' ' '); do
  if [ -d "$p" ]; then got=$(ls -A "$p" 2>/dev/null) || { echo "DENIED $p"; continue; }
  else got=$(cat "$p" 2>/dev/null) || { echo "DENIED $p"; continue; }; fi
  [ -n "$got" ] && echo "READ $p" || echo "EMPTY $p"
done
# scan_environ: look for TEXT in every process environment this workflow can read.
needle=$(cfg scan_environ)
if [ -n "$needle" ]; then
  n=0
  for f in /proc/[0-9]*/environ; do
    tr '\0' '\n' < "$f" 2>/dev/null | grep -q -- "$needle" && echo "FOUND $f"
    n=$((n + 1))
  done
  echo "SCANNED $n"
fi
var=$(cfg print_env)
pad=$(cfg pad_env)
[ -n "$pad" ] && [ -n "$var" ] && head -c "$pad" /dev/zero | tr '\0' '.'
[ -n "$var" ] && eval "printf '%s=%s' \"\$var\" \"\${$var:-}\""
[ -n "$pad" ] && [ -n "$var" ] && head -c "$((pad * 2))" /dev/zero | tr '\0' '.'
[ -n "$var" ] && echo

n=$(cfg stdout_lines)
[ -n "$n" ] && awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) print "stdout line " i }'
n=$(cfg stderr_lines)
[ -n "$n" ] && awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) print "stderr line " i }' >&2
n=$(cfg long_lines)
[ -n "$n" ] && awk -v n="$n" 'BEGIN { s = sprintf("%8125s", ""); gsub(/ /, "k0000-12", s); for (i = 1; i <= n; i++) print s }'
n=$(cfg stdout_bytes)
[ -n "$n" ] && yes '__LINE99__' | head -c "$n"
n=$(cfg stderr_bytes)
[ -n "$n" ] && yes '__LINE99__' | head -c "$n" >&2

result=$(cfg result_file)
if [ -n "$result" ]; then
  var=$(cfg results_env_var)
  var=${var:-WT_RESULTS}
  eval "url=\${$var:-}"
  [ -n "$url" ] || { echo "$NAME: \$$var is not set" >&2; exit 3; }
  case "$url" in
    file://*)
      p=${url#file://}
      p=${p#localhost}
      dir=$(printf '%s\n' "$p" | awk 'BEGIN { hex = "0123456789abcdef" } {
        s = $0; out = ""
        while ((i = index(s, "%")) > 0) {
          h = tolower(substr(s, i + 1, 2))
          c = (index(hex, substr(h, 1, 1)) - 1) * 16 + index(hex, substr(h, 2, 1)) - 1
          out = out substr(s, 1, i - 1) sprintf("%c", c)
          s = substr(s, i + 3)
        }
        print out s }') ;;
    /*) dir=$url ;;
    *) echo "$NAME: unsupported results URL $url" >&2; exit 3 ;;
  esac
  text=$(cfg result_text)
  printf '%s\n' "${text:-ok}" > "$dir/$result" || exit 3
fi

s=$(cfg sleep)
[ -n "$s" ] && sleep "$s"

sig=$(cfg kill_self)
[ -n "$sig" ] && kill -s "$sig" $$

code=$(cfg exit_code)
exit "${code:-0}"

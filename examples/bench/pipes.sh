#!/usr/bin/env bash
# Raw relay with pipe endpoints, side by side: `cat FILE | CLIENT` ->
# `SERVER | cat >/dev/null`, for duplex, OpenBSD nc and socat, over
# loopback; wall seconds per run (the Rust bench covers file endpoints).
# Usage: examples/bench/pipes.sh [MIB] [RUNS]   (after cargo build --release)
set -euo pipefail
mib="${1:-1024}"; runs="${2:-3}"
cd "$(dirname "$0")/../.."
duplex="$PWD/target/release/duplex"
data="$(mktemp)"; trap 'rm -f "$data"' EXIT
head -c "$((mib << 20))" /dev/urandom >"$data"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
listening() { for _ in $(seq 100); do ss -ltn | grep -q ":$1 " && return; sleep 0.05; done; echo "no listener on $1" >&2; exit 1; }
one() { # tool -> seconds
  local p; p="$(port)"
  case "$1" in
    duplex) "$duplex" serve --once --raw -q -b 127.0.0.1 "$p" </dev/null | cat >/dev/null & ;;
    nc) nc -l 127.0.0.1 "$p" </dev/null | cat >/dev/null & ;;
    socat) socat -b 65536 -u "TCP-LISTEN:$p,bind=127.0.0.1,reuseaddr" STDOUT | cat >/dev/null & ;;
  esac
  local server=$!
  listening "$p"
  local t0 t1; t0="$(date +%s.%N)"
  case "$1" in
    duplex) cat "$data" | "$duplex" connect --raw -q 127.0.0.1 "$p" >/dev/null ;;
    nc) cat "$data" | nc -N 127.0.0.1 "$p" >/dev/null ;;
    socat) cat "$data" | socat -b 65536 -u STDIN "TCP:127.0.0.1:$p" ;;
  esac
  wait "$server"; t1="$(date +%s.%N)"
  echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}'
}
echo "pipes: $mib MiB, cat | client -> server | cat, $runs runs each (interleaved), load $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A all
for r in $(seq "$runs"); do
  for tool in duplex nc socat; do
    s="$(one "$tool")"; all[$tool]+="$s "
    echo "  run $r: $tool ${s}s"
  done
done
for tool in duplex nc socat; do
  median="$(echo "${all[$tool]}" | tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
  echo "$tool: median ${median}s, $(echo "$mib $median" | awk '{printf "%.0f", $1 / $2}') MiB/s"
done

#!/usr/bin/env bash
# Several "hosts" on one machine for multi-host MPI runs (issue 19): network namespaces
# lamina-h0..h{N-1}, each with one veth (eth0, 10.77.0.(i+1)/24) whose peer lamina-h<i>v sits on
# the bridge lamina-br (10.77.0.254, where mpirun itself runs). Not a container: the hosts share
# the file system, the processes and the CPUs; only the network is separate. Needs root.
#   scripts/netns-hosts.sh up N [--rate 1gbit|100mbit|RATE] [--mtu M]   create (after a `down`)
#   scripts/netns-hosts.sh down        remove everything it made; idempotent, also after a half `up`
#   scripts/netns-hosts.sh hosts       one address per line, h0 first
#   scripts/netns-hosts.sh counters    "NS ADDRESS TX_BYTES RX_BYTES" per host, as the host sees its eth0
# --rate puts a token bucket (tc tbf) on each host's eth0, so every host sends at most RATE; a
# ring allreduce sends and receives on every link at once, as on a full-duplex NIC. (netem is not
# in this kernel; tbf is.) LAMINA_NETNS_NET (default 10.77.0) picks another /24.
set -euo pipefail

prefix=lamina-h
bridge=lamina-br
net=${LAMINA_NETNS_NET:-10.77.0}

die() { echo "netns-hosts.sh: $*" >&2; exit 1; }
usage() { sed -n '6,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

namespaces() {  # ours, in host order
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${prefix}[0-9]+$" | sort -t h -k 2 -n || true
}

down() {
  local ns pid
  for ns in $(namespaces); do
    # Processes left in a namespace (an orted of an interrupted run) would keep it alive.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  # Deleting a namespace deletes its veth end and so the pair; a half-made pair may be left in
  # the root namespace.
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^${prefix}[0-9]+v$"); do
    ip link del "$link" 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
}

up() {
  local n=$1 rate="" mtu=""
  shift
  [[ "$n" =~ ^[0-9]+$ && $n -ge 1 && $n -le 200 ]] || die "up: N must be 1..200, got '$n'"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --rate) rate=${2:?--rate needs a value (1gbit, 100mbit)}; shift 2 ;;
      --mtu) mtu=${2:?--mtu needs a value}; shift 2 ;;
      *) die "up: unknown option '$1' (known: --rate RATE, --mtu M)" ;;
    esac
  done
  [[ $(id -u) -eq 0 ]] || die "needs root (ip netns, ip link)"
  [[ -z "$(namespaces)" ]] || die "hosts already up ($(namespaces | tr '\n' ' ')): run 'down' first"
  trap 'echo "netns-hosts.sh: up failed, removing what was made" >&2; down' ERR

  ip link add "$bridge" type bridge
  ip addr add "$net.254/24" dev "$bridge"
  [[ -n "$mtu" ]] && ip link set "$bridge" mtu "$mtu"
  ip link set "$bridge" up
  local i ns peer
  for ((i = 0; i < n; i++)); do
    ns=$prefix$i
    peer=$prefix${i}v
    ip netns add "$ns"
    ip link add "$peer" type veth peer name eth0 netns "$ns"
    ip link set "$peer" master "$bridge"
    [[ -n "$mtu" ]] && ip link set "$peer" mtu "$mtu" && ip -n "$ns" link set eth0 mtu "$mtu"
    ip link set "$peer" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$net.$((i + 1))/24" dev eth0
    ip -n "$ns" link set eth0 up
    if [[ -n "$rate" ]]; then
      # burst: 4 ms at RATE but at least 64 KiB (one GSO segment); queue up to 50 ms.
      local bits
      bits=$(rate_bits "$rate")
      local burst=$((bits / 8 / 250))
      ((burst < 65536)) && burst=65536
      ip netns exec "$ns" tc qdisc add dev eth0 root tbf rate "$rate" burst "$burst" latency 50ms
    fi
  done
  trap - ERR
  # Ready when every bridge port forwards (state 3; no STP, so at once) and every link is up.
  # (No ping in this image; the first MPI connection is the real test.)
  for ((i = 0; i < n; i++)); do
    local ok=0
    for _ in $(seq 50); do
      if [[ $(cat "/sys/class/net/$prefix${i}v/brport/state") == 3 &&
            $(ip netns exec "$prefix$i" cat /sys/class/net/eth0/operstate) == up ]]; then ok=1; break; fi
      sleep 0.1
    done
    [[ $ok -eq 1 ]] || { down; die "host $i's link ($prefix${i}v, eth0) did not come up"; }
  done
}

rate_bits() {  # 1gbit, 100mbit, 500kbit, 1000000 -> bits per second
  local r=${1,,}
  case "$r" in
    *gbit) echo $((${r%gbit} * 1000000000)) ;;
    *mbit) echo $((${r%mbit} * 1000000)) ;;
    *kbit) echo $((${r%kbit} * 1000)) ;;
    *bit) echo "${r%bit}" ;;
    *[!0-9]*) die "--rate: say it as tc does, e.g. 1gbit or 100mbit (got '$1')" ;;
    *) echo "$r" ;;
  esac
}

hosts() {
  local ns
  for ns in $(namespaces); do echo "$net.$((${ns#"$prefix"} + 1))"; done
}

counters() {
  # The root-side peer's counters, turned round: what lamina-h<i>v receives, host i sent.
  local ns i s=/sys/class/net
  for ns in $(namespaces); do
    i=${ns#"$prefix"}
    echo "$ns $net.$((i + 1)) $(cat "$s/$prefix${i}v/statistics/rx_bytes") $(cat "$s/$prefix${i}v/statistics/tx_bytes")"
  done
}

case "${1:-}" in
  up) shift; [[ $# -ge 1 ]] || usage; up "$@" ;;
  down) down ;;
  hosts) hosts ;;
  counters) counters ;;
  *) usage ;;
esac

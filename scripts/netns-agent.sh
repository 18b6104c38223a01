#!/usr/bin/env bash
# OpenMPI's launcher agent for the namespaced hosts of scripts/netns-hosts.sh, used instead of ssh
# (mpirun --mca plm_rsh_agent THIS; scripts/netns-mpirun.sh passes it). Not a remote shell: the
# "host" is a network namespace on this machine.
#   netns-agent.sh HOST COMMAND...     HOST: 10.77.0.(i+1) or lamina-h<i>
# Like ssh, it joins COMMAND's words with spaces and hands them to a shell (OpenMPI quotes the
# orted arguments for that shell), inside the namespace and in a UTS namespace of its own whose
# host name is lamina-h<i>, so that OpenMPI sees N nodes, not one node N times.
set -euo pipefail

net=${LAMINA_NETNS_NET:-10.77.0}
die() { echo "netns-agent.sh: $*" >&2; exit 255; }  # 255, as ssh exits when it cannot connect

# ssh-style options before the host (OpenMPI adds none for an agent not named ssh; skip any).
while [[ $# -gt 0 && "$1" == -* ]]; do shift; done
[[ $# -ge 2 ]] || die "usage: netns-agent.sh HOST COMMAND..."
host=$1
shift
case "$host" in
  lamina-h[0-9]*) ns=$host ;;
  "$net".*) last=${host##*.}; [[ "$last" =~ ^[0-9]+$ ]] || die "bad address '$host'"; ns=lamina-h$((last - 1)) ;;
  *) die "host '$host' is neither lamina-h<i> nor an address in $net.0/24 (scripts/netns-hosts.sh hosts)" ;;
esac
[[ -e "/var/run/netns/$ns" ]] || die "no namespace $ns for host '$host': scripts/netns-hosts.sh up N first"
exec ip netns exec "$ns" unshare --uts /bin/sh -c 'hostname "$1" && shift && exec /bin/sh -c "$*"' sh "$ns" "$@"

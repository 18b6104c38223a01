#!/usr/bin/env bash
# mpirun across the namespaced hosts of scripts/netns-hosts.sh: one rank per host by default,
# OpenMPI's TCP transport and its out-of-band channel kept to their subnet, launched through
# scripts/netns-agent.sh instead of ssh. mpirun itself stays in the root namespace (10.77.0.254).
#   scripts/netns-hosts.sh up 4 && scripts/netns-mpirun.sh [-np N] [MPIRUN OPTIONS] PROGRAM [ARGS]
# Allreduce is pinned to the ring (coll_tuned algorithm 4), so each rank sends and receives
# 2(N-1)/N x G bytes per allreduce of G bytes, which tests/multihost checks on the veths.
# --bind-to none: every namespace looks like a whole node to its orted, which would pin each
# host's first rank to core 0; the hosts share this machine's cores.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
net=${LAMINA_NETNS_NET:-10.77.0}
mapfile -t hosts < <("$here/netns-hosts.sh" hosts)
[[ ${#hosts[@]} -gt 0 ]] || { echo "netns-mpirun.sh: no hosts: scripts/netns-hosts.sh up N first" >&2; exit 1; }

np=${#hosts[@]}
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -np | -n | --np) np=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
[[ ${#args[@]} -gt 0 ]] || { echo "usage: netns-mpirun.sh [-np N] [MPIRUN OPTIONS] PROGRAM [ARGS]" >&2; exit 2; }

# We are root in a container; more ranks than a host's cores is the normal case here.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

# The environment the ranks need, passed as ssh would not (the agent keeps it anyway).
pass=(-x PATH)
for v in LD_LIBRARY_PATH OMP_NUM_THREADS DNNL_VERBOSE $(compgen -e | grep -E '^LAMINA_' || true); do
  [[ -n "${!v:-}" ]] && pass+=(-x "$v")
done

exec mpirun -np "$np" --host "$(IFS=,; echo "${hosts[*]}")" --map-by node --bind-to none \
  --mca plm_rsh_agent "$here/netns-agent.sh" --mca plm_rsh_no_tree_spawn 1 \
  --mca btl tcp,self --mca btl_tcp_if_include "$net.0/24" --mca oob_tcp_if_include "$net.0/24" \
  --mca coll_tuned_use_dynamic_rules 1 --mca coll_tuned_allreduce_algorithm 4 \
  --mca mpi_yield_when_idle 1 \
  "${pass[@]}" "${args[@]}"

# source me: helpers for the kx1 spike
P=kx1; D=/run/$P/ovs
n() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }
ovs() { n mn env OVS_RUNDIR=$D OVS_DBDIR=$D OVS_LOGDIR=$D OVS_SYSCONFDIR=$D "$@"; }
of() { local c=$1; shift; ovs ovs-ofctl -O OpenFlow13 "$c" br0 "$@"; }
mac() { n mn cat /sys/class/net/$1/address; }
# start a capture in the background; prints its real pid (exec, not a function subshell)
cap() { local ns=$1 dev=$2 file=$3; shift 3; ip netns exec "$P-$ns" tcpdump -i "$dev" -B 8192 -w "$file" "$@" >/dev/null 2>"$file.err" & echo $!; }
stopcap() { local p; kill "$@" 2>/dev/null; for p in "$@"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done; }

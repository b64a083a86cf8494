#!/bin/bash
# Spike: bind HoA1 (flow to CN:5201) to wlan and HoA2 (flow to CN:5202) to lte, by hand.
# usage: kx1_flows.sh setup | move <1|2> <wlan|lte>
. "$(dirname "$0")/kx1_env.sh"
PHOA=2001:db8:100::1000; CN=2001:db8:c1::10
declare -A COA=([wlan]=2001:db8:1::100 [lte]=2001:db8:2::100)
hoa() { echo 2001:db8:100::200$1; }
bind() { # bind <k> <uplink>: HA binding route + OVS uplink rule for HoA k (flow to port 520k)
    local k=$1 up=$2 h; h=$(hoa "$1")
    n ha ip -6 route replace "$h/128" encap seg6 mode encap.red segs "${COA[$up]}" dev home0
    of add-flow "cookie=0x5d1f00000000000$k,priority=300,in_port=hoa0,tcp6,ipv6_src=$PHOA,ipv6_dst=$CN,tp_dst=520$k,actions=set_field:$h->ipv6_src,set_field:$(mac i$up)->eth_dst,output:i$up"
}
case "$1" in
setup)
    for k in 1 2; do
        h=$(hoa $k)
        n ha ip -6 neigh add proxy "$h" dev home0
        of add-flow "cookie=0x5d1f00000000000$k,priority=300,ipv6,ipv6_dst=$h,actions=set_field:$PHOA->ipv6_dst,set_field:$(mac hoa0)->eth_dst,output:hoa0"
    done
    bind 1 wlan; bind 2 lte ;;
move) bind "$2" "$3" ;;
esac

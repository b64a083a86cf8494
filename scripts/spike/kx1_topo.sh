#!/bin/bash
# Spike (throwaway): the full MN data path with OVS, by hand. See docs/datapath.md.
#   scripts/spike/kx1_topo.sh up     build namespaces kx1-{mn,ar1,ar2,core,ha,cn}, OVS, routes
#   scripts/spike/kx1_topo.sh down   remove everything this script made (kills OVS by pid file)
# Addresses follow docs/architecture.md (reference testbed), CoAs are static here.
set -u
P=kx1
D=/run/$P/ovs
NS="mn ar1 ar2 core ha cn"
HA=2001:db8:100::1
HOME=2001:db8:100::/64
PHOA=2001:db8:100::1000
COA1=2001:db8:1::100
COA2=2001:db8:2::100
GWMAC=02:5d:1f:00:00:01     # fixed MAC of the fake gateway fe80::5d1f (hoa0 default, decap out i<uplink>)
GWLL=fe80::5d1f

n() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }
ovs() { n mn env OVS_RUNDIR=$D OVS_DBDIR=$D OVS_LOGDIR=$D OVS_SYSCONFDIR=$D "$@"; }

down() {
    for f in $D/ovs-vswitchd.pid $D/ovsdb-server.pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
    done
    sleep 0.5
    for ns in $NS; do ip netns pids "$P-$ns" 2>/dev/null | xargs -r kill 2>/dev/null; done
    for ns in $NS; do ip netns del "$P-$ns" 2>/dev/null; done
    rm -rf /run/$P
    return 0
}

veth() { # veth <nsA> <ifA> <nsB> <ifB> <mtu>
    ip link add "$P-tmpa" mtu "$5" netns "$P-$1" type veth peer name "$P-tmpb" mtu "$5" netns "$P-$3"
    n "$1" ip link set "$P-tmpa" name "$2"
    n "$3" ip link set "$P-tmpb" name "$4"
    n "$1" ip link set "$2" up
    n "$3" ip link set "$4" up
}

up() {
    set -e
    for ns in $NS; do
        ip netns add "$P-$ns"
        n "$ns" ip link set lo up
        n "$ns" sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
            net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    done
    for ns in ar1 ar2 core ha mn; do n "$ns" sysctl -qw net.ipv6.conf.all.forwarding=1; done
    veth mn wlan ar1 mn 1600
    veth mn lte ar2 mn 1600
    veth ar1 core core ar1 1600
    veth ar2 core core ar2 1600
    veth core home ha home0 1600
    veth core cn1 cn eth0 1500
    # userspace datapath on veth: no tx checksum offload on either end (ENVIRONMENT.md)
    n mn ethtool -K wlan tx off >/dev/null; n ar1 ethtool -K mn tx off >/dev/null
    n mn ethtool -K lte tx off >/dev/null; n ar2 ethtool -K mn tx off >/dev/null

    n ar1 ip -6 addr add 2001:db8:1::1/64 dev mn
    n ar1 ip -6 addr add 2001:db8:f1::2/64 dev core
    n ar1 ip -6 route add default via 2001:db8:f1::1
    n ar2 ip -6 addr add 2001:db8:2::1/64 dev mn
    n ar2 ip -6 addr add 2001:db8:f2::2/64 dev core
    n ar2 ip -6 route add default via 2001:db8:f2::1
    n core ip -6 addr add 2001:db8:f1::1/64 dev ar1
    n core ip -6 addr add 2001:db8:f2::1/64 dev ar2
    n core ip -6 addr add 2001:db8:100::fffe/64 dev home
    n core ip -6 addr add 2001:db8:c1::1/64 dev cn1
    n core ip -6 route add 2001:db8:1::/64 via 2001:db8:f1::2
    n core ip -6 route add 2001:db8:2::/64 via 2001:db8:f2::2
    n cn ip -6 addr add 2001:db8:c1::10/64 dev eth0
    n cn ip -6 route add default via 2001:db8:c1::1

    # --- HA: proxy NDP, reverse-tunnel decap (End.DT6 into main), binding routes added later
    n ha ip -6 addr add $HA/64 dev home0
    n ha ip -6 route add default via 2001:db8:100::fffe
    n ha sysctl -qw net.ipv6.conf.home0.proxy_ndp=1 net.ipv6.neigh.home0.proxy_delay=0
    n ha ip -6 rule add pref 10 to $HA ipproto 41 lookup 250
    n ha ip -6 rule add pref 1000 lookup local
    n ha ip -6 rule del pref 0
    n ha ip -6 route add $HA/128 encap seg6local action End.DT6 table 254 dev home0 table 250

    # --- MN: private OVS (userspace datapath)
    mkdir -p $D
    ovsdb-tool create $D/conf.db /usr/share/openvswitch/vswitch.ovsschema
    ovs ovsdb-server $D/conf.db --remote=punix:$D/db.sock --pidfile=$D/ovsdb-server.pid \
        --detach --log-file=$D/ovsdb-server.log
    ovs ovs-vsctl --db=unix:$D/db.sock --no-wait init
    ovs ovs-vswitchd unix:$D/db.sock --pidfile=$D/ovs-vswitchd.pid --detach \
        --log-file=$D/ovs-vswitchd.log
    ovs ovs-vsctl --db=unix:$D/db.sock -- add-br br0 \
        -- set bridge br0 datapath_type=netdev fail_mode=secure protocols=OpenFlow13 \
        -- add-port br0 wlan -- set interface wlan ofport_request=1 \
        -- add-port br0 lte -- set interface lte ofport_request=2 \
        -- add-port br0 iwlan -- set interface iwlan type=internal ofport_request=11 mtu_request=1600 \
        -- add-port br0 ilte -- set interface ilte type=internal ofport_request=12 mtu_request=1600 \
        -- add-port br0 hoa0 -- set interface hoa0 type=internal ofport_request=20 mtu_request=1500
    for i in 1 2 3 4 5 6 7 8 9 10; do
        n mn ip link show hoa0 >/dev/null 2>&1 && n mn ip link show ilte >/dev/null 2>&1 && break
        sleep 0.3
    done
    for d in iwlan ilte hoa0; do n mn ip link set $d up; done
    n mn sysctl -qw net.ipv6.conf.all.forwarding=1
    n mn ip -6 addr add $COA1/64 dev iwlan
    n mn ip -6 addr add $COA2/64 dev ilte
    n mn ip -6 addr add $PHOA/128 dev hoa0
    # app traffic: default via a fake gateway on hoa0 with a permanent MAC (OVS rewrites eth_dst)
    n mn ip -6 neigh add $GWLL lladdr $GWMAC dev hoa0 nud permanent
    n mn ip -6 route add default via $GWLL dev hoa0
    # per uplink k (1=wlan/iwlan, 2=lte/ilte):
    #   table 10k: CoA-sourced traffic (outer packets, signalling) -> that uplink's router
    #   table 11k: inner packets from the home prefix arriving from OVS on i<uplink> -> encap to HA
    #   table 20k: decapsulated downlink -> home prefix back out i<uplink> to OVS
    local k dev coa ar
    for k in 1 2; do
        if [ $k = 1 ]; then dev=iwlan; coa=$COA1; ar=2001:db8:1::1; else dev=ilte; coa=$COA2; ar=2001:db8:2::1; fi
        n mn ip -6 route add default via $ar dev $dev table 10$k
        n mn ip -6 route add default encap seg6 mode encap.red segs $HA dev $dev table 11$k
        n mn ip -6 neigh add $GWLL lladdr $GWMAC dev $dev nud permanent
        n mn ip -6 route add $HOME via $GWLL dev $dev table 20$k
        n mn ip -6 rule add pref 100$k iif $dev from $HOME lookup 11$k
        n mn ip -6 rule add pref 200$k from $coa lookup 10$k
        n mn ip -6 rule add pref 10 to $coa ipproto 41 lookup 250
        n mn ip -6 route add $coa/128 encap seg6local action End.DT6 table 20$k dev $dev table 250
    done
    n mn ip -6 rule add pref 1000 lookup local
    n mn ip -6 rule del pref 0
    # plumbing flows: uplink <-> i<uplink>
    ovs ovs-ofctl -O OpenFlow13 add-flow br0 "cookie=0x7e57000000000001,priority=100,in_port=wlan,actions=output:iwlan"
    ovs ovs-ofctl -O OpenFlow13 add-flow br0 "cookie=0x7e57000000000001,priority=100,in_port=iwlan,actions=output:wlan"
    ovs ovs-ofctl -O OpenFlow13 add-flow br0 "cookie=0x7e57000000000001,priority=100,in_port=lte,actions=output:ilte"
    ovs ovs-ofctl -O OpenFlow13 add-flow br0 "cookie=0x7e57000000000001,priority=100,in_port=ilte,actions=output:lte"
    set +e
    echo "up"
}

case "${1:-}" in
    up) down; up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac

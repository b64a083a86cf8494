"""sdnmip: per-flow handover for multi-interface Mobile IPv6 nodes.

Packages (see docs/architecture.md):
  core/        pure MN logic: Home Address and Flow Mapping tables, Figure 6, policy, binding
               update list state machine. No I/O, no clock reads.
  mipv6/       the only place Mobile IPv6 messages become bytes and back.
  mn_agent/    MN shell: Mobile IPv6 signalling, netlink, kernel tunnel data path.
  controller/  MN shell: os-ken OpenFlow 1.3 app and OVSDB bridge setup.
  northbound/  MN shell: REST API, policy files, metrics.
  home_agent/  a standards-only RFC 6275 Home Agent; imports nothing from the MN side.
  kernel/      netlink helpers (pyroute2) shared by the Home Agent and the MN agent.
  ovsdb/       OVSDB (python-ovs IDL) helpers shared by the testbed and the controller.
  testbed/     the emulated reference topology in network namespaces.
"""

__version__ = "0.1.0"

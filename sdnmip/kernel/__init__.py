"""Kernel helpers (netlink, nftables, raw sockets). See docs/architecture.md for what this
package owns and docs/datapath.md for the verified recipe it implements."""

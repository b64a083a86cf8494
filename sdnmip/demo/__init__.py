"""`sdnmip demo`: the end-to-end per-flow handover demonstration."""

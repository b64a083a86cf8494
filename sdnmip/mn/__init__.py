"""`sdnmip mn`: supervises the MN agent and controller processes."""

"""HTTP plumbing shared by the routers: problem responses and dependencies."""

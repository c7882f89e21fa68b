"""Reports: the three rates and the on-time figures per department, category, chain, grid or urgency."""

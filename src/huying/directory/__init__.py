"""The directory: departments, the call list (categories), chains, enterprises, routing rules."""

"""The pure workflow core: definitions as data, validated, and the engine that fires them.

Imports no FastAPI, SQLAlchemy or httpx. Time comes in as `now`; I/O goes out as
the effects of an `Outcome` for the caller to apply.
"""

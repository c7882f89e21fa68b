"""Huying (呼应): enterprises order, departments serve; every call answered."""

__version__ = "0.1.0"

"""Attachments (佐证材料): files uploaded once, content-addressed, bound to a request."""

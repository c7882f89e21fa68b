"""Authentication (API keys, staff users and their sessions) and the roles."""

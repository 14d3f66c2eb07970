"""Tools for running the project on a developer's machine (bin/services)."""

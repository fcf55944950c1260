"""Talking HTTP to a Jobmon server: the gateway, the runner that drives a run, and ``serve``."""

"""Routers: how traffic is split between pools."""

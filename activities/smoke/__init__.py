"""Smoke checks: do fresh instances answer before they take traffic?"""

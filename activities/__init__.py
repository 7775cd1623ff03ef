"""Activities: how one provider does one thing.

``definitions`` holds the Temporal activities (thin, provider-agnostic);
``interfaces`` the small typed protocols each provider implements;
``registry`` maps the provider names of deploy-code.yaml to their classes.
A new router, platform or metrics source is one new file plus one registry line.
"""

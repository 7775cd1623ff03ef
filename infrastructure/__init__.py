"""Infrastructure the deployment engine runs against (see ``infrastructure.local``)."""

"""Clients shared by the cloud providers: AWS sessions (credentials, region, retries), Kubernetes."""

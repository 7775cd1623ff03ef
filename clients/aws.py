"""AWS sessions for the providers: credential chain, region, assumed role, retries, errors.

* Credentials: boto3's standard chain (environment, shared profile, IRSA web identity,
  instance role). With ``aws.role_arn`` the role is assumed on top of them, refreshed
  before it expires (botocore's own assume-role fetcher), so a long-lived worker keeps
  working.
* Retries: botocore's ``adaptive`` mode (the ``standard`` retry rules plus client-side
  rate limiting): throttling errors, 5xx answers and connection errors are retried with
  exponential backoff and jitter, up to ``aws.max_attempts``. Access denied, validation
  errors and missing resources are never retried by botocore.
* Errors: :func:`refusals` turns answers that no retry can fix (access denied, a resource
  that does not exist, a request AWS calls invalid) into :class:`BadRequest`, which the
  activity makes non-retryable; everything else stays retryable.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials
from botocore.exceptions import ClientError

from engine import tracing
from engine.contracts import AwsSettings, EnvironmentSpec
from engine.contracts.aws_dr import AwsDrRegion, AwsDrSettings
from engine.contracts.dr import DrSpec
from engine.errors import BadRequest

ACCESS_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "AuthorizationError",
    }
)
"""Error codes that mean "not allowed": retrying cannot help, the role or policy must change."""


def retry_config(settings: AwsSettings) -> Config:
    return Config(
        region_name=settings.region,
        retries={"mode": "adaptive", "max_attempts": settings.max_attempts},
        connect_timeout=5,
        read_timeout=30,
    )


@cache
def _session(settings_json: str) -> boto3.Session:
    settings = AwsSettings.model_validate_json(settings_json)
    base = boto3.Session(region_name=settings.region)
    if settings.role_arn is None:
        return base
    source = base.get_credentials()
    if source is None:
        msg = "no AWS credentials found (environment, profile or instance role) to assume a role with"
        raise BadRequest(msg)

    def sts(service: str, **kwargs: Any) -> Any:
        return base.client(
            service, endpoint_url=settings.endpoint_url, config=retry_config(settings), **kwargs
        )

    fetcher = AssumeRoleCredentialFetcher(
        client_creator=sts,
        source_credentials=source,
        role_arn=settings.role_arn,
        extra_args={"RoleSessionName": settings.role_session_name},
    )
    core = botocore.session.Session()
    core._credentials = DeferredRefreshableCredentials(
        method="assume-role", refresh_using=fetcher.fetch_credentials
    )
    return boto3.Session(botocore_session=core, region_name=settings.region)


def session(settings: AwsSettings) -> boto3.Session:
    """The environment's session (cached per settings: credentials refresh themselves)."""
    return _session(settings.model_dump_json())


def client(settings: AwsSettings, service: str) -> Any:
    made = session(settings).client(
        service, endpoint_url=settings.endpoint_url, config=retry_config(settings)
    )
    traced(made, settings.region)
    return made


_SPAN = "deploy_code_span"
"""Where a call's span waits in botocore's request context, from before-call to after-call."""


def traced(aws_client: Any, region: str | None) -> None:
    """One span per AWS API call of ``aws_client`` (service, operation, region, HTTP status,
    error code; botocore's retries inside it), through botocore's call events."""
    service = aws_client.meta.service_model.service_name

    def before(model: Any, context: dict[str, Any], **_: Any) -> None:
        attrs = {"rpc.system": "aws-api", "rpc.service": service, "rpc.method": model.name}
        context[_SPAN] = tracing.start(f"aws {service}.{model.name}", **attrs, **{"cloud.region": region})

    def after(http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        status = http_response.status_code
        code = parsed.get("Error", {}).get("Code") if status >= 300 else None
        tracing.end(context.pop(_SPAN, None), code, **{"http.response.status_code": status})

    def failed(exception: BaseException, context: dict[str, Any], **_: Any) -> None:
        tracing.end(context.pop(_SPAN, None), exception)

    aws_client.meta.events.register("before-call", before)
    aws_client.meta.events.register("after-call", after)
    aws_client.meta.events.register("after-call-error", failed)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def refusals(*codes: str, what: str = "") -> Iterator[None]:
    """Turn access denied and the given error ``codes`` into :class:`BadRequest`.

    Anything else (throttling or 5xx left after botocore's retries, timeouts) propagates
    unchanged and the activity retries it.
    """
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "")
        if code in ACCESS_DENIED:
            msg = f"access denied{f' ({what})' if what else ''}: {message or code}; check the role's policy"
            raise BadRequest(msg) from exc
        if code in codes:
            msg = f"{what + ': ' if what else ''}{code}: {message}"
            raise BadRequest(msg) from exc
        raise


def settings_for(env: EnvironmentSpec) -> AwsSettings:
    """The environment's ``aws`` settings (the ALB router and CloudWatch analysis read them)."""
    if env.aws is None:
        msg = f"environment {env.name!r} has no aws settings (environments.{env.name}.aws)"
        raise BadRequest(msg)
    return env.aws


def dr_settings_for(spec: DrSpec) -> AwsDrSettings:
    """The DR ``aws`` settings (RDS, Route53, and the RDS endpoints the regions provider reads)."""
    if spec.aws is None:
        env = spec.environment
        msg = f"environment {env!r} has no AWS DR settings (environments.{env}.dr.aws)"
        raise BadRequest(msg)
    return spec.aws


class DrRegionClients:
    """One boto3 client per DR region and service (thread-safe to use; not cheap to create)."""

    def __init__(self, settings: AwsDrSettings) -> None:
        self.settings = settings
        self._clients: dict[tuple[str, str], Any] = {}

    def region(self, region: str) -> AwsDrRegion:
        conf = self.settings.regions.get(region)
        if conf is None:
            msg = f"unknown region {region!r} (regions: {', '.join(self.settings.regions)})"
            raise BadRequest(msg)
        return conf

    def client(self, region: str, service: str) -> Any:
        key = (region, service)
        if key not in self._clients:
            self._clients[key] = client(self.region(region).aws, service)
        return self._clients[key]

    def describe_db(self, region: str) -> dict[str, Any]:
        """``describe_db_instances`` of the region's database instance (refused if it does not exist)."""
        conf = self.region(region)
        with refusals("DBInstanceNotFound", "DBInstanceNotFoundFault", what=f"db {conf.db_instance_id}"):
            found: dict[str, Any] = self.client(region, "rds").describe_db_instances(
                DBInstanceIdentifier=conf.db_instance_id
            )["DBInstances"][0]
            return found

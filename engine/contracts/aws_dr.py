"""Typed AWS settings of a two-region DR environment (RDS replica + Route53 failover records).

``environments.NAME.dr.aws`` in deploy-code.yaml; carried by
:class:`engine.contracts.dr.DrSpec` as ``aws`` and read by the ``rds`` database and the
``route53`` global-entry providers. The names are the Terraform outputs of
``infrastructure/terraform`` (primary) and ``infrastructure/terraform-secondary`` (replica).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from engine.contracts.environment import AwsSettings
from engine.contracts.scalars import Strict


class AwsDrRegion(Strict):
    """One DR region: its AWS region, database instance and DNS record."""

    aws: AwsSettings
    """Region, role and endpoint used for this region's resources."""
    db_instance_id: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z][a-zA-Z0-9-]{0,62}$")]
    """primary_db_instance_id / replica_db_instance_id."""
    record_value: Annotated[str, StringConstraints(min_length=1)]
    """What the failover record of this region points to (the region's ALB DNS name)."""
    alias_zone_id: str | None = None
    """The ALB's canonical hosted zone id: the record is an A alias to ``record_value`` (as
    Terraform creates it); None: a CNAME to ``record_value``."""
    set_identifier: str | None = None
    """The record's SetIdentifier (Terraform: ``primary`` / ``secondary``); default the region name."""
    health_check_id: str | None = None
    """Route53 health check of the region's record (secondary_health_check_id); none: not checked."""


class AwsDrSettings(Strict):
    regions: Annotated[dict[str, AwsDrRegion], Field(min_length=2, max_length=2)]
    """Keyed by DR region name (the names of ``dr.regions``)."""
    route53_zone_id: Annotated[str, StringConstraints(min_length=1)]
    api_record_name: Annotated[str, StringConstraints(min_length=1)]
    routing: Literal["failover", "weighted"] = "failover"
    """Route53 routing policy of the record pair: failover (PRIMARY/SECONDARY, as Terraform
    creates them) or weighted (the active region ``active_weight``, the other 0)."""
    active_weight: Annotated[int, Field(ge=1, le=255)] = 100
    """With ``routing: weighted``: the active region's weight (Route53 allows 0-255)."""
    ttl: Annotated[int, Field(ge=1, le=86400)] = 30
    change_timeout: Annotated[float, Field(gt=0)] = 300.0
    """Seconds to wait for a Route53 change to be INSYNC, and for a promotion to finish."""
    entry_scheme: Literal["http", "https"] = "https"
    """Scheme of :meth:`Route53GlobalEntry.url`: ``{entry_scheme}://{value of the record in force}``."""

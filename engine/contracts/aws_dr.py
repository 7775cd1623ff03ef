"""Typed AWS settings of a two-region DR environment (RDS replica + Route53 failover records).

Not yet a field of ``engine.contracts.dr.DrSpec``: the RDS and Route53 providers take an
:class:`AwsDrSettings` beside the DrSpec (see docs/providers.md).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from engine.contracts import AwsSettings, Strict


class AwsDrRegion(Strict):
    """One DR region: its AWS region, database instance and DNS record."""

    aws: AwsSettings
    """Region, role and endpoint used for this region's resources."""
    db_instance_id: str
    """primary_db_instance_id / replica_db_instance_id."""
    record_value: str
    """What the failover record of this region points to (the region's ALB DNS name)."""
    health_check_id: str | None = None


class AwsDrSettings(Strict):
    regions: Annotated[dict[str, AwsDrRegion], Field(min_length=2, max_length=2)]
    route53_zone_id: str
    api_record_name: Annotated[str, StringConstraints(min_length=1)]
    ttl: Annotated[int, Field(ge=1, le=86400)] = 30
    change_timeout: Annotated[float, Field(gt=0)] = 300.0
    """Seconds to wait for a Route53 change to be INSYNC, and for a promotion to finish."""

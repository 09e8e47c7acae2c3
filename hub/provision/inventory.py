"""An Ansible inventory of gateways from the registry: one host per gateway, named by its id
(the Pi's hostname, docs/provisioning.md), grouped by workstation and subdistrict so that a
rollout can go one neighbourhood at a time (``--limit ws_0001``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.provision.models import ProvisionedGateway
from hub.registry.models import Gateway, Home, Workstation


def group_name(kind: str, id_: str) -> str:
    """Ansible group names are Python identifiers: ``ws-0001`` → ``ws_0001``."""
    return f"{kind}_{id_}".replace("-", "_") if not id_.startswith(kind) else id_.replace("-", "_")


def inventory(
    session: Session,
    *,
    domain: str = "",
    workstation: str | None = None,
    subdistrict: str | None = None,
    provisioned_only: bool = False,
) -> dict[str, Any]:
    """The inventory as a dict ready for YAML: ``all.children.gateways.hosts`` and one group
    per workstation and subdistrict under ``gateways``."""
    q = (
        select(Gateway.id, Home.id, Workstation.id, Workstation.subdistrict_id, ProvisionedGateway.revision)
        .join(Home, Gateway.home_id == Home.id)
        .join(Workstation, Home.workstation_id == Workstation.id)
        .outerjoin(ProvisionedGateway, ProvisionedGateway.gateway_id == Gateway.id)
        .order_by(Gateway.id)
    )
    if workstation:
        q = q.where(Workstation.id == workstation)
    if subdistrict:
        q = q.where(Workstation.subdistrict_id == subdistrict)
    if provisioned_only:
        q = q.where(ProvisionedGateway.gateway_id.is_not(None))
    hosts: dict[str, Any] = {}
    groups: dict[str, dict[str, Any]] = {}
    for gw, home, ws, sd, revision in session.execute(q):
        host: dict[str, Any] = {"safehome_gateway_id": gw, "safehome_home_id": home}
        if domain:
            host["ansible_host"] = f"{gw}.{domain.lstrip('.')}"
        if revision is None:
            host["safehome_provisioned"] = False
        hosts[gw] = host
        for name in (group_name("ws", ws), group_name("sd", sd)):
            groups.setdefault(name, {"hosts": {}})["hosts"][gw] = {}
    return {"all": {"children": {"gateways": {"hosts": hosts, "children": dict(sorted(groups.items()))}}}}

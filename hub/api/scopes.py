"""What a credential may do: scopes, and the scopes each role carries (pure data).

A route names the one scope it needs (``Depends(require("residents:read"))``,
:mod:`hub.api.auth`); a credential carries a set of scopes: an API key the ones it was
made with, a console user or a role token the ones of its role. The region is the other
half of every check: it limits *which* objects a scope reaches (404 outside it).
"""

from __future__ import annotations

ALARMS_READ = "alarms:read"
ALARMS_WRITE = "alarms:write"
ALARMS_REVIEW = "alarms:review"
REGISTRY_READ = "registry:read"
REGISTRY_WRITE = "registry:write"
RESIDENTS_READ = "residents:read"
READINGS_READ = "readings:read"
WEBHOOKS_MANAGE = "webhooks:manage"
GATEWAYS_COMMAND = "gateways:command"
PROVISION = "provision"
AUDIT_READ = "audit:read"
KEYS_MANAGE = "keys:manage"
USERS_MANAGE = "users:manage"

#: Every scope, with what it allows (docs/api.md shows this table).
SCOPES: dict[str, str] = {
    ALARMS_READ: "list and read alarms and incidents, the event stream, CAP alerts, KPIs",
    ALARMS_WRITE: "lifecycle steps: acknowledge, dispatch, arrive, resolve",
    ALARMS_REVIEW: "review a resolved case",
    REGISTRY_READ: "homes (without personal data), gateways, sensors, workstations, centers, duty",
    REGISTRY_WRITE: "change registry data through the API: a workstation's duty hours",
    RESIDENTS_READ: "residents' personal data (name, phone, contacts, care notes); every read audited",
    READINGS_READ: "sensor readings (time series)",
    WEBHOOKS_MANAGE: "webhook subscriptions, their deliveries and replays",
    GATEWAYS_COMMAND: "send commands to gateways (selftest, silence_siren, report_status, reload_config)",
    PROVISION: "walk tests and install sign-off",
    AUDIT_READ: "read and export the audit log",
    KEYS_MANAGE: "create, list and revoke API keys (within the creator's own scopes and region)",
    USERS_MANAGE: "create, list and disable console users (within the creator's region)",
}

#: What an API key may carry: never the power to make more credentials or to change how
#: alarms are routed.
KEY_SCOPES = frozenset(SCOPES) - {KEYS_MANAGE, USERS_MANAGE, REGISTRY_WRITE}

_READ = frozenset({ALARMS_READ, REGISTRY_READ, READINGS_READ})
_OPERATE = _READ | {ALARMS_WRITE, RESIDENTS_READ, GATEWAYS_COMMAND}
_SUPERVISE = _OPERATE | {ALARMS_REVIEW, PROVISION, WEBHOOKS_MANAGE}
_INSTALL = frozenset({PROVISION, REGISTRY_READ, READINGS_READ, GATEWAYS_COMMAND})

#: The roles of console users, each bound to a region of one of the listed kinds.
USER_ROLES: dict[str, frozenset[str]] = {
    "district_admin": frozenset(SCOPES) - {AUDIT_READ},
    "subdistrict_supervisor": _SUPERVISE | {KEYS_MANAGE},
    "subdistrict_operator": _OPERATE,
    "workstation_operator": _OPERATE,
    "installer": _INSTALL,
    # reads the record of what everyone did; changes nothing
    "auditor": frozenset({AUDIT_READ, ALARMS_READ, REGISTRY_READ}),
}
USER_REGION_KINDS: dict[str, tuple[str, ...]] = {
    "district_admin": ("district",),
    "subdistrict_supervisor": ("subdistrict",),
    "subdistrict_operator": ("subdistrict",),
    "workstation_operator": ("workstation",),
    "installer": ("workstation", "subdistrict", "district"),
    "auditor": ("district", "subdistrict"),
}

#: The roles of command-line tokens (``safehome hub token create --role``), kept for the
#: deployments, scripts and docs that use them: each is a fixed set of scopes.
TOKEN_ROLES: dict[str, frozenset[str]] = {
    "viewer": _READ,
    "operator": _OPERATE,
    "supervisor": _SUPERVISE,
    "installer": _INSTALL,
}
#: The role recorded for an API key made with explicit scopes.
KEY_ROLE = "key"

#: The scope each lifecycle step needs.
STEP_SCOPE: dict[str, str] = {
    "acknowledge": ALARMS_WRITE,
    "dispatch": ALARMS_WRITE,
    "arrive": ALARMS_WRITE,
    "resolve": ALARMS_WRITE,
    "review": ALARMS_REVIEW,
}


def parse_scopes(text: str | list[str] | tuple[str, ...] | frozenset[str], allowed: frozenset[str] = KEY_SCOPES) -> frozenset[str]:
    """``"alarms:read readings:read"`` (or a list) → a set; unknown or not-allowed scopes raise
    ValueError naming them."""
    items = text.replace(",", " ").split() if isinstance(text, str) else list(text)
    unknown = sorted(set(items) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(sorted(SCOPES))}")
    refused = sorted(set(items) - allowed)
    if refused:
        raise ValueError(f"scope(s) {', '.join(refused)} cannot be given here")
    if not items:
        raise ValueError("at least one scope is needed")
    return frozenset(items)


def scope_text(scopes: frozenset[str] | set[str]) -> str:
    return " ".join(sorted(scopes))

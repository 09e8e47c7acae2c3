"""The fault matrix (docs/reliability.md): real processes killed, cut and restored, and
what the gateways raised counted against what the hub stored, alarmed and delivered."""

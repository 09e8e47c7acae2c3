"""`safehome provision inventory`: the register's gateways as an Ansible inventory."""

from __future__ import annotations

import yaml

from tests.hub.provision.conftest import Site


def test_inventory_groups_gateways_by_workstation_and_subdistrict(site: Site) -> None:
    r = site.run("inventory", "--domain", "local")
    assert r.exit_code == 0, r.output
    inv = yaml.safe_load(r.output)["all"]["children"]["gateways"]
    assert list(inv["hosts"]) == ["gw-1", "gw-2", "gw-3"]
    assert inv["hosts"]["gw-1"] == {"safehome_gateway_id": "gw-1", "safehome_home_id": "home-1",
                                    "ansible_host": "gw-1.local", "safehome_provisioned": False}
    assert set(inv["children"]) == {"ws_0001", "ws_0002", "ws_0003", "sd_01", "sd_02"}
    assert list(inv["children"]["sd_01"]["hosts"]) == ["gw-1", "gw-2"]


def test_filters_and_provisioned_only(site: Site) -> None:
    assert site.run("gateway", "--home", "home-3", "--hub-host", "h", "--no-tls", "--no-push",
                    "-o", str(site.tmp / "b")).exit_code == 0
    out = site.tmp / "inv.yml"
    r = site.run("inventory", "--provisioned-only", "-o", str(out))
    assert r.exit_code == 0 and "1 gateway(s)" in r.output
    inv = yaml.safe_load(out.read_text())["all"]["children"]["gateways"]
    assert inv["hosts"] == {"gw-3": {"safehome_gateway_id": "gw-3", "safehome_home_id": "home-3"}}
    r = site.run("inventory", "--subdistrict", "sd-01")
    assert list(yaml.safe_load(r.output)["all"]["children"]["gateways"]["hosts"]) == ["gw-1", "gw-2"]

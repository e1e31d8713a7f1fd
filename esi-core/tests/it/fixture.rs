//! A small world of our own: routers in a redundant pair, an uplink, a network with subnets and
//! ports. Every mapping form of the spec appears in one of its templates.

use esi_core::World;
use serde_json::{json, Value};

pub const R1: &str = "11111111-0000-0000-0000-000000000001";
pub const R2: &str = "11111111-0000-0000-0000-000000000002";
pub const PAIR: &str = "22222222-0000-0000-0000-000000000001";
pub const UPLINK: &str = "33333333-0000-0000-0000-000000000001";
pub const NET: &str = "44444444-0000-0000-0000-000000000001";
pub const SUB1: &str = "55555555-0000-0000-0000-000000000001";
pub const SUB2: &str = "55555555-0000-0000-0000-000000000002";
pub const VPORT: &str = "66666666-0000-0000-0000-000000000001";
pub const DHCP: &str = "66666666-0000-0000-0000-000000000002";
pub const SITE: &str = "77777777-0000-0000-0000-000000000001";

pub fn document() -> Value {
    json!({
        "name": "fixture",
        "handlers": ["heat_worker"],
        "schemas": {
            "site": {"id": "site", "plural": "sites", "prefix": "/v2.0/sites", "template_paths": {}, "relations": {}},
            "router": {"id": "router", "plural": "routers", "prefix": "/v2.0/routers",
                       "template_paths": {"heat_worker": "Crouter"}, "relations": {"site_id": "site"}},
            "pair": {"id": "pair", "plural": "pairs", "prefix": "/v2.0/pairs",
                     "template_paths": {"heat_worker": "Cpair"},
                     "relations": {"primary_id": "router", "backup_id": "router"}},
            "uplink": {"id": "uplink", "plural": "uplinks", "prefix": "/v2.0/uplinks",
                       "template_paths": {"heat_worker": "ACuplink_&Pkind"}, "relations": {"pair_id": "pair"}},
            "net": {"id": "net", "plural": "nets", "prefix": "/v2.0/nets",
                    "template_paths": {"heat_worker": "Cnet"}, "relations": {}},
            "subnet": {"id": "subnet", "plural": "subnets", "prefix": "/v2.0/subnets",
                       "template_paths": {"heat_worker": "Csubnet"}, "relations": {"net_id": "net"}},
            "vport": {"id": "vport", "plural": "vports", "prefix": "/v2.0/vports",
                      "template_paths": {"heat_worker": {
                          "if_mapping": {"regexp": [{"field": "device_owner"}, {"constant": "network:dhcp|network:empty"}]},
                          "then_mapping": {"constant": null},
                          "else_mapping": {"constant": "vport"}}},
                      "relations": {"net_id": "net"}}
        },
        "heat_templates": {
            "router": {"handler": "heat_worker", "watch": [], "template_file": "heat_template_version: 2013-05-23\n",
                "parameter_mappings": {
                    "hostname": "Phostname",
                    "port": "Pssh_port",
                    "enabled": "Penabled",
                    "timeout": "C5",
                    "colon_text": "Ca:b:c",
                    "retries": {"constant": 3},
                    "nothing": {"constant": null},
                    "version": "Vauto_filled",
                    "version2": {"version": "auto_filled"},
                    "region": "Otags:region",
                    "row": {"nested": ["tags", "rack", "row"]},
                    "deep_missing": {"nested": ["tags", "region", "x"]},
                    "label": "ACrt-&Phostname",
                    "site": {"field": "site_id"},
                    "self_id": {"output_key": "id"},
                    "absent": "Pno_such_field",
                    "joined": {"concatenate": [{"field": "hostname"}, "-", {"constant": "x"}]}
                }},
            "pair": {"handler": "heat_worker", "watch": [], "template_file": "",
                "parameter_mappings": {
                    "primary_ip": "Frouter+primary_id:mgmt_ip",
                    "backup": {"field": "backup_id"},
                    "backup_ip": {"field": "mgmt_ip", "path": ["backup_id"]},
                    "backup_port": {"field": "ssh_port", "path": [{"type": "router", "id": "backup_id"}]},
                    "name_of_both": "AFrouter+primary_id:hostname&C/&Frouter+backup_id:hostname"
                }},
            "uplink_l3": {"handler": "heat_worker", "watch": [], "template_file": "",
                "parameter_mappings": {
                    "primary_host": {"field": "hostname", "path": ["pair_id", "primary_id"]},
                    "backup_port": "Fpair+pair_id:router+backup_id:ssh_port",
                    "role_ip": {"field": "mgmt_ip", "path": ["pair_id", {"concatenate": [{"field": "role"}, "_id"]}]},
                    "maybe_net": {"field": "id", "path": [{"type": "net", "id": "net_hint"}], "ignore_missing": true},
                    "pair_out": {"output_key": "id", "path": ["pair_id"]},
                    "pair_router_out": {"output_key": "fq_name", "path": ["pair_id", "primary_id"]}
                }},
            "net": {"handler": "heat_worker", "watch": [], "template_file": "",
                "parameter_mappings": {"name": "Pname", "pools": "Ppools"}},
            "subnet": {"handler": "heat_worker", "watch": [], "template_file": "",
                "parameter_mappings": {"cidr": "Pcidr", "network": "Mnet:net_id:id"}},
            "vport": {"handler": "heat_worker", "watch": [], "template_file": "",
                "parameter_mappings": {
                    "network": "Mnet:net_id:id",
                    "jinja_subnets": {"for_field": "fixed_ips",
                                      "for_mapping": {"output_key": "id", "path": [{"type": "subnet", "id": "subnet_id"}]}},
                    "jinja_ips": {"for_field": "fixed_ips", "for_mapping": {"field": "ip_address"}},
                    "jinja_cidrs": {"for_field": "subnet_ids",
                                    "for_mapping": {"field": "cidr", "path": [{"type": "subnet", "id": ""}]}},
                    "jinja_pools": {"for_field": {"field": "pools", "path": ["net_id"]}, "for_mapping": {"field": ""}},
                    "jinja_none": {"for_field": "no_list", "for_mapping": {"field": "x"}},
                    "owner_name": {"if_mapping": {"equal": [{"field": "device_owner"}, {"constant": "compute"}]},
                                   "then_mapping": "Pname", "else_mapping": {"constant": null}}
                }}
        },
        "resources": {
            "site": {SITE: {"body": {"id": SITE, "name": "lab"}, "version": 1}},
            "router": {
                R1: {"body": {"id": R1, "hostname": "er-1", "mgmt_ip": "192.0.2.1", "ssh_port": 830, "enabled": true,
                              "tags": {"region": "eu", "rack": {"row": 3}}, "site_id": SITE}, "version": 1},
                R2: {"body": {"id": R2, "hostname": "er-2", "mgmt_ip": "192.0.2.2", "ssh_port": 22, "enabled": false,
                              "tags": {}, "site_id": ""}, "version": 2}
            },
            "pair": {PAIR: {"body": {"id": PAIR, "primary_id": R1, "backup_id": R2, "role": "backup"}, "version": 1}},
            "uplink": {UPLINK: {"body": {"id": UPLINK, "kind": "l3", "pair_id": PAIR, "net_hint": "gone"}, "version": 1}},
            "net": {NET: {"body": {"id": NET, "name": "blue", "pools": ["p1", "p2"]}, "version": 1}},
            "subnet": {
                SUB1: {"body": {"id": SUB1, "cidr": "198.51.100.0/25", "net_id": NET}, "version": 1},
                SUB2: {"body": {"id": SUB2, "cidr": "198.51.100.128/25", "net_id": NET}, "version": 1}
            },
            "vport": {
                VPORT: {"body": {"id": VPORT, "name": "vm-a", "device_owner": "compute", "net_id": NET,
                                 "fixed_ips": [{"subnet_id": SUB1, "ip_address": "198.51.100.5"},
                                               {"subnet_id": SUB2, "ip_address": "198.51.100.130"}],
                                 "subnet_ids": [SUB2, SUB1]}, "version": 1},
                DHCP: {"body": {"id": DHCP, "name": "dhcp", "device_owner": "network:dhcp", "net_id": NET,
                                "fixed_ips": [], "subnet_ids": []}, "version": 1}
            }
        }
    })
}

pub fn world() -> World {
    World::from_json(&document()).expect("fixture world loads")
}

/// The fixture with one template's mappings replaced.
pub fn world_with_mappings(template: &str, mappings: Value) -> World {
    let mut doc = document();
    doc["heat_templates"][template]["parameter_mappings"] = mappings;
    World::from_json(&doc).expect("fixture world loads")
}

pub fn rref(t: &str, id: &str) -> Value {
    json!({"resource_type": t, "resource_id": id})
}

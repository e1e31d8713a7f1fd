#!/usr/bin/env python3
"""ncclient's Junos device handler drives one `esi netsim` router: open, lock, load text
(merge), commit, confirmed commit + confirmation, read back, unlock, close.
Usage: ncclient_check.py HOST PORT USER PASSWORD."""
import sys
from ncclient import manager

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("OK:", what)


m = manager.connect(host=host, port=port, username=user, password=password, hostkey_verify=False,
                    allow_agent=False, look_for_keys=False, timeout=30, device_params={"name": "junos"})
check("http://xml.juniper.net/netconf/junos/1.0" in m.server_capabilities, "Junos capability announced")
m.lock(target="candidate")
check(True, "lock candidate")
r = m.load_configuration(action="merge", format="text",
                         config="interfaces { ae0 { unit 1025 { vlan-id 1025; description ncclient; } } }")
check(len(r.xpath("//ok")) > 0, "load-configuration merge text")
m.commit()
check(True, "commit")
text = m.get_configuration(format="text").xpath("//configuration-text")[0].text
check("vlan-id 1025;" in text, "read back after commit")
m.load_configuration(action="merge", format="text", config="interfaces { ae0 { unit 1026 { vlan-id 1026; } } }")
m.commit(confirmed=True, timeout="60")
check(True, "confirmed commit")
m.commit()
check(True, "confirming commit")
text = m.get_configuration(format="text").xpath("//configuration-text")[0].text
check("vlan-id 1026;" in text, "read back after confirmed commit")
m.unlock(target="candidate")
check(True, "unlock candidate")
m.close_session()
print("NCCLIENT OK")

#!/usr/bin/env python3
"""PyEZ (junos-eznc) drives one `esi netsim` router: open, lock, load text (merge), diff,
commit check, commit, confirmed commit + confirmation, read back, rollback 1 + commit,
unlock, close. Usage: pyez_check.py HOST PORT USER PASSWORD. Exit 0 and prints OK lines."""
import sys
from jnpr.junos import Device
from jnpr.junos.utils.config import Config
from jnpr.junos.exception import ConfigLoadError

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("OK:", what)


dev = Device(host=host, port=port, user=user, passwd=password, gather_facts=False,
             hostkey_verify=False, look_for_keys=False, allow_agent=False)
dev.open()
check(dev.connected, "PyEZ session open")
cu = Config(dev)
cu.lock()
check(True, "lock-configuration")
cu.load("interfaces { xe-0/0/1 { unit 122 { vlan-id 122; description pyez; } } }", format="text", merge=True)
diff = cu.diff()
check(diff is not None and "vlan-id 122" in diff, "diff shows the loaded statements")
check(cu.commit_check() is True, "commit check")
check(cu.commit(comment="pyez") is True, "commit")
text = dev.rpc.get_config(options={"format": "text"}).text
check("vlan-id 122;" in text and "description pyez;" in text, "read back after commit")
check(cu.diff() is None, "no diff after commit")
cu.load("interfaces { xe-0/0/1 { unit 123 { vlan-id 123; } } }", format="text", merge=True)
check(cu.commit(confirm=1) is True, "commit confirmed 1 (minute)")
check(cu.commit() is True, "confirming commit")
text = dev.rpc.get_config(options={"format": "text"}).text
check("vlan-id 123;" in text, "read back after confirmed commit")
try:
    cu.load("interfaces { xe-0/0/1 {", format="text", merge=True)
    check(False, "syntax error rejected")
except ConfigLoadError as e:
    check("syntax error" in str(e), "syntax error rejected as ConfigLoadError")
cu.rollback(0)
cu.rollback(1)
check(cu.commit() is True, "rollback 1 + commit")
text = dev.rpc.get_config(options={"format": "text"}).text
check("vlan-id 123;" not in text and "vlan-id 122;" in text, "rollback 1 restored the previous configuration")
cu.unlock()
check(True, "unlock-configuration")
dev.close()
print("PYEZ OK")

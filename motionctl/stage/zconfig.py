"""The Zenoh configuration of one node of the stage network (pure: a dict, JSON for ``zenoh.Config``).

What every configuration this project makes says, and why:

- ``mode: peer``; a rig daemon listens on its own endpoint and connects to the other rigs', a station
  listens nowhere and connects to every rig: the stage network file is the whole truth of who talks to
  whom (no router to keep running).  Zenoh's peers otherwise listen on every interface by default.
- Multicast scouting **off** (Zenoh turns it on by default) and gossip off: a node finds exactly the
  endpoints it was given, nothing on the stage's network finds it, and nothing goes to a multicast group.
- A short lease (1 s, keep-alive 4 per lease): a station that vanishes without closing its connection (a
  pulled cable, a frozen machine) is declared gone within about a second, and the rigs it was moving stop.
  Zenoh's default is 10 s.
- Under ``[security]``: every endpoint ``tls/``, mutual authentication against the stage's CA (each node
  shows its own certificate, named after the node), and on a rig daemon access control by certificate
  name (:func:`access_control`).  The lease matters on the side that holds a liveliness token (measured:
  a frozen peer's token is gone after exactly the holder's lease), so every node gets the same.
"""

from __future__ import annotations

import json

from motionctl.stage.messages import ROOT
from motionctl.stage.netfile import Node, StageNet

LEASE_MS = 1000
KEEP_ALIVE = 4


def node_config(net: StageNet, me: Node, *, enforce: bool) -> dict:
    """The configuration of ``me``; ``enforce`` adds the access control a rig daemon applies."""
    others = [net.endpoint(n) for n in net.rigs if n.name != me.name]
    config: dict = {
        "mode": "peer",
        "listen": {"endpoints": [net.endpoint(me)] if me.endpoint else []},
        "connect": {"endpoints": others},
        "scouting": {"multicast": {"enabled": False}, "gossip": {"enabled": False}},
        "transport": {"link": {"tx": {"lease": LEASE_MS, "keep_alive": KEEP_ALIVE}}},
    }
    security = net.security
    if security is not None:
        config["transport"]["link"]["tls"] = {
            "root_ca_certificate": str(security.ca),
            "connect_certificate": str(security.cert(me.name)),
            "connect_private_key": str(security.key(me.name)),
            "enable_mtls": True,
            "verify_name_on_connect": False,     # peers are named by their certificates' CN, not by address
        }
        if me.endpoint:
            config["transport"]["link"]["tls"].update({"listen_certificate": str(security.cert(me.name)),
                                                       "listen_private_key": str(security.key(me.name))})
        if enforce:
            config["access_control"] = access_control(net)
    return config


def access_control(net: StageNet) -> dict:
    """A rig daemon's rules.  Zenoh checks each message against the *other* end's certificate name, and a
    declared or queried key must lie inside a rule's key: every node of the file may look (subscribe,
    query tokens, receive the rigs' statuses, events and tokens) and stop (``cmd/safe``); operator X alone
    may query ``cmd/motion/X/**`` and hold the token ``station/X/**``, so a motion command's key names a
    sender that the network has authenticated, and nobody can stand in for a station that has left."""
    assert net.security is not None
    stage = f"{ROOT}/{net.stage}"
    both = ["ingress", "egress"]
    ask = ["query", "reply", "declare_queryable"]
    rules = [
        {"id": "look", "permission": "allow", "flows": both, "key_exprs": [f"{stage}/**"],
         "messages": ["declare_subscriber", "liveliness_query", "declare_liveliness_subscriber"]},
        {"id": "rigs", "permission": "allow", "flows": both, "key_exprs": [f"{stage}/rig/*/state",
                                                                          f"{stage}/rig/*/event",
                                                                          f"{stage}/rig/*/alive"],
         "messages": ["put", "delete", "liveliness_token"]},
        {"id": "stop", "permission": "allow", "flows": both, "messages": ask,
         "key_exprs": [f"{stage}/rig/*/cmd/safe/**", f"{stage}/rig/*/plan"]},
    ]
    subjects = [{"id": "stage-nodes", "cert_common_names": [n.name for n in net.nodes]}]
    policies = [{"id": "everyone", "rules": ["look", "rigs", "stop"], "subjects": ["stage-nodes"]}]
    for operator in net.security.operators:
        rules.append({"id": f"move-{operator}", "permission": "allow", "flows": both, "messages": ask,
                      "key_exprs": [f"{stage}/rig/*/cmd/motion/{operator}/**"]})
        rules.append({"id": f"watched-{operator}", "permission": "allow", "flows": both,
                      "messages": ["liveliness_token"], "key_exprs": [f"{stage}/station/{operator}/**"]})
        subjects.append({"id": f"operator-{operator}", "cert_common_names": [operator]})
        policies.append({"id": f"operator-{operator}", "rules": [f"move-{operator}", f"watched-{operator}",
                                                                 "timecode"],
                         "subjects": [f"operator-{operator}"]})
    # The stage's timecode starts armed rigs: only an operator may be its master.
    rules.append({"id": "timecode", "permission": "allow", "flows": ["ingress"], "messages": ["put"],
                  "key_exprs": [f"{stage}/timecode"]})
    return {"enabled": True, "default_permission": "deny", "rules": rules, "subjects": subjects,
            "policies": policies}


def to_json5(config: dict) -> str:
    return json.dumps(config)

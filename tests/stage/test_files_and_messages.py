"""The stage network's pure parts: its file, its key space and messages, the Zenoh configurations it makes
(never multicast, every endpoint named, access control by certificate name), and the certificates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from motionctl.errors import InputError, SpecError
from motionctl.stage.certs import issue, make_ca, stage_certs
from motionctl.stage.messages import Command, Event, Keys, MessageError, Reply, RigStatus, TimecodeFrame, Verb
from motionctl.stage.netfile import load_stage_net
from motionctl.stage.zconfig import access_control, node_config
from tests.stage import netfiles


def net_text(security: bool = True, **over: str) -> str:
    text = netfiles.net_text(stage=over.get("stage", "demo"), certs="certs" if security else None)
    return text.replace("tcp/127.0.0.1:17448", over.get("listen", "tcp/127.0.0.1:17448"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "net.toml"
    path.write_text(text)
    return path


def test_the_file_reads_into_nodes_and_tls_endpoints(tmp_path):
    net = load_stage_net(write(tmp_path, net_text()))
    assert [n.name for n in net.stations] == ["operator-1", "viewer-1"]
    assert [n.name for n in net.rigs] == ["arm-a", "crane"]
    assert net.endpoint(net.rig("arm-a")) == "tls/127.0.0.1:17448"
    assert net.security.operators == ("operator-1",)
    assert net.security.cert("crane") == tmp_path / "certs" / "crane.pem"
    plain = load_stage_net(write(tmp_path, net_text(security=False)))
    assert plain.endpoint(plain.rig("arm-a")) == "tcp/127.0.0.1:17448" and plain.security is None


@pytest.mark.parametrize(("change", "key", "words"), [
    (lambda t: t.replace('name = "crane"', 'name = "arm-a"'), "rig[1].name", "two nodes are named"),
    (lambda t: t.replace("tcp/127.0.0.1:17449", "tcp/127.0.0.1:17448"), "rig[1].listen", "already another node"),
    (lambda t: t.replace("tcp/127.0.0.1:17448", "udp/224.0.0.224:7446"), "rig[0].listen", "not an endpoint"),
    (lambda t: t.replace("tcp/127.0.0.1:17448", "tls/127.0.0.1:17448"), "rig[0].listen", "[security] makes"),
    (lambda t: t.replace('stage = "demo"', 'stage = "a/b"'), "stage", "is not a name"),
    (lambda t: t.replace('operators = ["operator-1"]', 'operators = ["nobody"]'), "security.operators",
     "not a [[station]]"),
    (lambda t: t.replace("moco_crane.toml", "nothing.toml"), "rig[1].rig", "not found"),
    (lambda t: t.replace('listen = "tcp/127.0.0.1:17449"', 'listen = "tcp/127.0.0.1:17449"\nlisen = 1'),
     "rig[1].lisen", "unknown key"),
])
def test_a_bad_file_is_one_line_naming_the_key_and_its_line(tmp_path, change, key, words):
    path = write(tmp_path, change(net_text()))
    with pytest.raises(SpecError) as caught:
        load_stage_net(path)
    message = str(caught.value)
    assert words in message and key in message and "\n" not in message
    assert caught.value.line is not None


def test_every_configuration_names_its_endpoints_and_never_scouts(tmp_path):
    for security in (True, False):
        net = load_stage_net(write(tmp_path, net_text(security)))
        for node in net.nodes:
            config = node_config(net, node, enforce=node in net.rigs)
            assert config["mode"] == "peer"
            assert config["scouting"] == {"multicast": {"enabled": False}, "gossip": {"enabled": False}}
            endpoints = config["listen"]["endpoints"] + config["connect"]["endpoints"]
            assert all(e.split("/", 1)[1].startswith("127.0.0.1:") for e in endpoints)
            # Stations connect to every rig and listen nowhere; a rig listens on its own endpoint only.
            if node in net.stations:
                assert config["listen"]["endpoints"] == []
                assert sorted(config["connect"]["endpoints"]) == sorted(net.endpoint(r) for r in net.rigs)
            else:
                assert config["listen"]["endpoints"] == [net.endpoint(node)]
                assert net.endpoint(node) not in config["connect"]["endpoints"]
            assert ("tls" in config["transport"]["link"]) == security
            assert ("access_control" in config) == (security and node in net.rigs)


def test_access_control_gives_motion_keys_and_station_tokens_to_each_operator_alone(tmp_path):
    net = load_stage_net(write(tmp_path, net_text()))
    acl = access_control(net)
    assert acl["default_permission"] == "deny"
    rules = {r["id"]: r for r in acl["rules"]}
    policies = {p["id"]: p for p in acl["policies"]}
    subjects = {s["id"]: s["cert_common_names"] for s in acl["subjects"]}
    assert policies["operator-operator-1"]["rules"] == ["move-operator-1", "watched-operator-1", "timecode"]
    assert rules["timecode"]["key_exprs"] == ["motionctl/v1/demo/timecode"] and rules["timecode"]["messages"] == ["put"]
    assert "timecode" not in policies["everyone"]["rules"]          # only an operator can start armed rigs
    assert subjects["operator-operator-1"] == ["operator-1"]
    assert rules["move-operator-1"]["key_exprs"] == ["motionctl/v1/demo/rig/*/cmd/motion/operator-1/**"]
    assert rules["watched-operator-1"]["key_exprs"] == ["motionctl/v1/demo/station/operator-1/**"]
    everyone = [r for rid in policies["everyone"]["rules"] for r in [rules[rid]]]
    assert not any("/cmd/motion/" in k or "/station/" in k for r in everyone for k in r["key_exprs"]
                   if "liveliness_token" in r["messages"] or "query" in r["messages"])
    assert set(subjects["stage-nodes"]) == {"operator-1", "viewer-1", "arm-a", "crane"}
    import zenoh
    zenoh.Config.from_json5(json.dumps(node_config(net, net.rig("arm-a"), enforce=True)))   # Zenoh takes it


def test_keys_put_the_sender_of_a_motion_command_in_the_key():
    keys = Keys("demo")
    assert keys.command("arm-a", Verb.RUN, "operator-1") == "motionctl/v1/demo/rig/arm-a/cmd/motion/operator-1/run"
    assert keys.command("arm-a", Verb.ESTOP, "operator-1") == "motionctl/v1/demo/rig/arm-a/cmd/safe/estop"
    key = keys.command("crane", Verb.GO, "operator-2")
    assert keys.verb_of(key) is Verb.GO and keys.sender_of(key) == "operator-2" and keys.rig_of(key) == "crane"
    assert keys.station_of(keys.station_alive("operator-1", "a1b2")) == ("operator-1", "a1b2")
    assert keys.timecode == "motionctl/v1/demo/timecode"
    assert {v for v in Verb if not v.moves} == {Verb.STATUS, Verb.STOP, Verb.ESTOP}


names = st.text(st.characters(codec="utf-8"), max_size=40)


@settings(max_examples=60, derandomize=True)
@given(names, names, st.integers(-10, 300), st.floats(allow_nan=False, allow_infinity=False))
def test_messages_round_trip(operator, text, pct, tau):
    command = Command(operator or "x", text, pct, f"{abs(pct):x}", bool(pct % 2), (text,))
    assert Command.decode(command.encode()) == command
    status = RigStatus("arm-a", "running", move=text, tau_s=tau, fault=text, owner=operator, seq=pct)
    assert RigStatus.decode(status.encode()) == status
    assert Event.decode(Event("crane", "fault", text).encode()) == Event("crane", "fault", text)
    frame = TimecodeFrame(abs(pct), text)
    assert TimecodeFrame.decode(frame.encode()) == frame
    reply = Reply("arm-a", "run", False, text, {"state": "idle"})
    assert Reply.decode(reply.encode()) == reply


@pytest.mark.parametrize("payload", [b"", b"not json", b"[]", b'{"v": 2, "operator": "x"}',
                                     b'{"operator": "x"}', b'{"v": 1}', b'{"v": 1, "operator": 3}',
                                     b'{"v": 1, "operator": "x", "session": "*"}',
                                     b'{"v": 1, "operator": "x", "session": "a/b"}'])
def test_a_bad_command_is_refused_in_words(payload):
    with pytest.raises(MessageError):
        Command.decode(payload)


def test_certificates_are_made_once_and_name_their_node(tmp_path):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    net = load_stage_net(write(tmp_path, net_text()))
    written = stage_certs(net)
    assert len(written) == 5                             # the CA and four nodes
    assert stage_certs(net) == []                        # kept
    assert (tmp_path / "certs" / "arm-a.key").stat().st_mode & 0o077 == 0
    cert = x509.load_pem_x509_certificate((tmp_path / "certs" / "viewer-1.pem").read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "viewer-1"
    ca = x509.load_pem_x509_certificate((tmp_path / "certs" / "ca.pem").read_bytes())
    cert.verify_directly_issued_by(ca)
    assert len(stage_certs(net, renew=True)) == 4        # the same CA, new node certificates
    with pytest.raises(InputError, match="no \\[security\\]"):
        stage_certs(load_stage_net(write(tmp_path, net_text(security=False))))
    other_key, other_ca = make_ca("someone else")
    _, stranger = issue("operator-1", other_key, other_ca)
    with pytest.raises(Exception):
        stranger.verify_directly_issued_by(ca)

"""Golden tests of the device's CiA 301 reading (:mod:`simulator.canopen.cia301_device`), from the documents
(CiA 301 v4.2 and PROTOCOLS.md §5), and the rule that the device side imports nothing of the host's."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.canopen.cia301_device import (DEFAULT_SYNC_COB_ID, NMT_COB_ID, EmcyCode, HeartbeatConsumer,
                                     MappingEntry, NmtCommand, NmtState, PdoCobId, Service, allows,
                                     decode_nmt, default_rpdo_cob_id, default_tpdo_cob_id, emcy_cob_id,
                                     emcy_frame, error_register_for, heartbeat_cob_id, heartbeat_frame,
                                     heartbeat_node, is_restricted_can_id, nmt_next, rpdo_synchronous,
                                     rpdo_type_allowed, sdo_rx_cob_id, sdo_tx_cob_id, tpdo_due,
                                     tpdo_type_allowed)

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("node", [1, 10, 127])
def test_pre_defined_connection_set(node):
    assert (NMT_COB_ID, DEFAULT_SYNC_COB_ID) == (0x000, 0x080)
    assert emcy_cob_id(node) == 0x080 + node
    assert [default_tpdo_cob_id(n, node) for n in (1, 2, 3, 4)] == [0x180 + node, 0x280 + node, 0x380 + node,
                                                                    0x480 + node]
    assert [default_rpdo_cob_id(n, node) for n in (1, 2, 3, 4)] == [0x200 + node, 0x300 + node, 0x400 + node,
                                                                    0x500 + node]
    assert (sdo_tx_cob_id(node), sdo_rx_cob_id(node)) == (0x580 + node, 0x600 + node)
    assert heartbeat_cob_id(node) == 0x700 + node and heartbeat_node(0x700 + node) == node


def test_restricted_can_ids():
    for can_id in (0x000, 0x001, 0x07F, 0x101, 0x180, 0x581, 0x5FF, 0x601, 0x67F, 0x6E0, 0x701,
                   0x77F, 0x780, 0x7FF):
        assert is_restricted_can_id(can_id), hex(can_id)
    for can_id in (0x181, 0x201, 0x281, 0x4FF, 0x500, 0x57F, 0x680, 0x6DF):
        assert not is_restricted_can_id(can_id), hex(can_id)


def test_nmt_commands_and_their_addressing():
    assert [int(c) for c in NmtCommand] == [0x01, 0x02, 0x80, 0x81, 0x82]
    assert decode_nmt(bytes([0x01, 0x05]), 5) is NmtCommand.START
    assert decode_nmt(bytes([0x82, 0x00]), 5) is NmtCommand.RESET_COMMUNICATION   # node 0: every node
    assert decode_nmt(bytes([0x01, 0x06]), 5) is None                             # another node's
    assert decode_nmt(bytes([0x03, 0x05]), 5) is None                             # no such command
    assert decode_nmt(bytes([0x01]), 5) is None


def test_nmt_state_machine():
    P, O, St = NmtState.PRE_OPERATIONAL, NmtState.OPERATIONAL, NmtState.STOPPED
    assert nmt_next(P, NmtCommand.START) is O and nmt_next(St, NmtCommand.START) is O
    assert nmt_next(O, NmtCommand.STOP) is St and nmt_next(P, NmtCommand.STOP) is St
    assert nmt_next(O, NmtCommand.ENTER_PRE_OPERATIONAL) is P
    assert nmt_next(St, NmtCommand.ENTER_PRE_OPERATIONAL) is P
    assert nmt_next(O, NmtCommand.START) is O


def test_heartbeat_frames_show_the_state():
    assert [heartbeat_frame(s) for s in (NmtState.BOOT_UP, NmtState.STOPPED, NmtState.OPERATIONAL,
                                         NmtState.PRE_OPERATIONAL)] == [b"\x00", b"\x04", b"\x05", b"\x7F"]


def test_which_objects_each_state_allows():
    assert all(allows(NmtState.OPERATIONAL, s) for s in Service)
    assert not allows(NmtState.PRE_OPERATIONAL, Service.PDO)
    assert all(allows(NmtState.PRE_OPERATIONAL, s) for s in (Service.SDO, Service.SYNC, Service.EMCY))
    assert {s for s in Service if allows(NmtState.STOPPED, s)} == {Service.NMT, Service.ERROR_CONTROL}


@pytest.mark.parametrize("code, register, wire", [
    (0x2310, 0x03, "10 23 03 00 00 00 00 00"),       # over-current: generic + current
    (0x8611, 0x21, "11 86 21 00 00 00 00 00"),       # following error: generic + device profile
    (0x8130, 0x11, "30 81 11 00 00 00 00 00"),       # heartbeat: generic + communication
    (0x8140, 0x11, "40 81 11 00 00 00 00 00"),       # recovered from bus-off
    (0x0000, 0x00, "00 00 00 00 00 00 00 00"),       # error reset
])
def test_emcy_frames_and_error_register(code, register, wire):
    assert error_register_for(code) == register
    assert emcy_frame(code, register).hex(" ") == wire


def test_emcy_carries_five_manufacturer_bytes():
    assert emcy_frame(0xFF10, 0x81, b"\x01\x02\x03\x04\x05").hex(" ") == "10 ff 81 01 02 03 04 05"
    with pytest.raises(ValueError):
        emcy_frame(0x1000, 0x01, b"\x00")


def test_error_register_bits_by_code_group():
    assert error_register_for(0x1000) == 0x01
    assert error_register_for(0x3210) == 0x05
    assert error_register_for(0x4310) == 0x09
    assert error_register_for(EmcyCode.PDO_LENGTH) == 0x11
    assert error_register_for(0xFF00) == 0x81


def test_pdo_cob_id_bits():
    assert PdoCobId.decode(0x80000201) == PdoCobId(0x201, valid=False, rtr_allowed=True, extended=False)
    assert PdoCobId.decode(0x40000181) == PdoCobId(0x181, valid=True, rtr_allowed=False, extended=False)
    assert PdoCobId.decode(0x00000281).valid


def test_transmission_types():
    assert rpdo_synchronous(0) and rpdo_synchronous(1) and rpdo_synchronous(240)
    assert not rpdo_synchronous(254) and not rpdo_synchronous(255)
    assert not any(rpdo_type_allowed(t) for t in range(241, 254))
    assert not any(tpdo_type_allowed(t) for t in range(241, 252))
    assert all(tpdo_type_allowed(t) for t in (0, 1, 240, 252, 253, 254, 255))
    assert [n for n in range(1, 31) if tpdo_due(10, n)] == [10, 20, 30]
    assert all(tpdo_due(1, n) for n in range(1, 5))
    assert not any(tpdo_due(t, 10) for t in (0, 254, 255))


def test_mapping_and_heartbeat_consumer_entries():
    assert MappingEntry.decode(0x60400010) == MappingEntry(0x6040, 0, 16)
    assert MappingEntry.decode(0x607A0020) == MappingEntry(0x607A, 0, 32)
    entry = HeartbeatConsumer.decode(0x007F00FA)
    assert (entry.node, entry.time_ms, entry.used) == (0x7F, 250, True)
    assert not HeartbeatConsumer.decode(0x007F0000).used          # time 0
    assert not HeartbeatConsumer.decode(0x000000FA).used          # node 0
    assert not HeartbeatConsumer.decode(0x008000FA).used          # node 128


# -- the house rule: the device side shares no protocol code with the host --------------------------------
def _modules(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_nothing_under_simulator_imports_motionctl_hal():
    files = sorted((ROOT / "simulator").rglob("*.py"))
    assert files
    offenders = [f"{path.relative_to(ROOT)}: {name}" for path in files
                 for name in _modules(ast.parse(path.read_text(), str(path)))
                 if name == "motionctl.hal" or name.startswith("motionctl.hal.")]
    assert offenders == []


def test_importing_the_drives_loads_no_host_protocol_module():
    code = ("import sys, simulator, simulator.canopen.device, simulator.serial.device; "
            "print(any(m == 'motionctl.hal' or m.startswith('motionctl.hal.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

"""CiA 301 plumbing: communication-area object indices, COB-IDs, NMT, heartbeat and PDO parameters."""

from __future__ import annotations

import pytest

from motionctl.errors import InputError, ProtocolError
from motionctl.hal.canopen import cia301
from motionctl.hal.canopen.cia301 import NmtCommand, NmtState


def test_communication_area_indices() -> None:
    assert (cia301.COB_ID_SYNC, cia301.COMMUNICATION_CYCLE_PERIOD) == (0x1005, 0x1006)
    assert (cia301.CONSUMER_HEARTBEAT, cia301.PRODUCER_HEARTBEAT) == (0x1016, 0x1017)
    assert (cia301.RPDO_COMMUNICATION, cia301.RPDO_MAPPING) == (0x1400, 0x1600)
    assert (cia301.TPDO_COMMUNICATION, cia301.TPDO_MAPPING) == (0x1800, 0x1A00)
    assert cia301.ERROR_REGISTER == 0x1001


def test_cob_ids() -> None:
    assert (cia301.NMT_COB_ID, cia301.SYNC_COB_ID) == (0x000, 0x080)
    assert cia301.emcy_cob_id(5) == 0x085
    assert [cia301.tpdo_cob_id(n, 5) for n in range(1, 5)] == [0x185, 0x285, 0x385, 0x485]
    assert [cia301.rpdo_cob_id(n, 5) for n in range(1, 5)] == [0x205, 0x305, 0x405, 0x505]
    assert (cia301.sdo_tx_cob_id(5), cia301.sdo_rx_cob_id(5)) == (0x585, 0x605)
    assert cia301.heartbeat_cob_id(127) == 0x77F
    for bad in (0, 128, -1):
        with pytest.raises(InputError, match="node-ID"):
            cia301.emcy_cob_id(bad)
    with pytest.raises(InputError, match="PDO number"):
        cia301.tpdo_cob_id(5, 1)


@pytest.mark.parametrize("node", [1, 42, 127])
def test_decode_cob_id_round_trips(node: int) -> None:
    assert cia301.decode_cob_id(cia301.emcy_cob_id(node)) == ("EMCY", node)
    assert cia301.decode_cob_id(cia301.sdo_tx_cob_id(node)) == ("SDO tx", node)
    assert cia301.decode_cob_id(cia301.sdo_rx_cob_id(node)) == ("SDO rx", node)
    assert cia301.decode_cob_id(cia301.heartbeat_cob_id(node)) == ("heartbeat", node)
    for n in range(1, 5):
        assert cia301.decode_cob_id(cia301.tpdo_cob_id(n, node)) == (f"TPDO{n}", node)
        assert cia301.decode_cob_id(cia301.rpdo_cob_id(n, node)) == (f"RPDO{n}", node)
    assert cia301.decode_cob_id(0x080) == ("SYNC", None)
    assert cia301.decode_cob_id(0x000) == ("NMT", None)


def test_nmt_and_heartbeat() -> None:
    assert [int(c) for c in NmtCommand] == [0x01, 0x02, 0x80, 0x81, 0x82]
    assert cia301.nmt_frame(NmtCommand.START, 3) == b"\x01\x03"
    assert cia301.nmt_frame(NmtCommand.ENTER_PRE_OPERATIONAL) == b"\x80\x00"
    assert cia301.heartbeat_state(b"\x05") is NmtState.OPERATIONAL
    assert cia301.heartbeat_state(b"\x85") is NmtState.OPERATIONAL      # node-guarding toggle bit
    assert cia301.heartbeat_state(b"\x7f") is NmtState.PRE_OPERATIONAL
    assert cia301.heartbeat_state(b"\x00") is NmtState.BOOT_UP
    assert cia301.heartbeat_state(b"\x04") is NmtState.STOPPED
    with pytest.raises(ProtocolError):
        cia301.heartbeat_state(b"\x06")


def test_object_dictionary_helpers() -> None:
    assert cia301.rpdo_communication_index(1) == 0x1400
    assert cia301.rpdo_mapping_index(4) == 0x1603
    assert cia301.tpdo_communication_index(2) == 0x1801
    assert cia301.tpdo_mapping_index(1) == 0x1A00
    assert cia301.pdo_mapping_entry(0x607A, 0, 32) == 0x607A0020
    assert cia301.consumer_heartbeat_entry(1, 300) == 0x0001012C
    assert cia301.cob_id_sync_entry(producer=True) == 0x40000080
    assert cia301.cob_id_sync_entry(producer=False) == 0x080

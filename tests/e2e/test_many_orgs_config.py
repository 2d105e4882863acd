"""The many-org consortium the ten-org live test and benchmark bring up: a valid consortium file whose
ports stay clear of the default consortium's at the same offset (a session's 3-org network)."""
import pytest

from fedfabric.network.config import ConfigError, parse_config

from ..conftest import default_raw, shift_ports
from ..ports import listen_ports
from .many_orgs import MAX_ORGS, many_orgs_config, many_orgs_raw


@pytest.mark.parametrize("n", [1, 10, MAX_ORGS])
def test_many_orgs_parse_and_keep_clear_of_the_default_network(n):
    cfg = many_orgs_config(n, 21000)
    assert [o.msp_id for o in cfg.orgs] == [f"Org{i}MSP" for i in range(1, n + 1)]
    assert len(cfg.orderer_org.orderers) == 1 and all(o.stake == 100 for o in cfg.orgs)
    ours = listen_ports(many_orgs_raw(n, 21000)) - {p + 21000 for p in (7050, 7053, 8443)}   # the one orderer
    default = listen_ports(shift_ports(default_raw(), 21000))
    assert not ours & default and max(ours) < 65536
    assert len(ours) == 7 * n


def test_stakes_and_bounds():
    assert [o.stake for o in many_orgs_config(3, 0, stakes=[1, 2, 3]).orgs] == [1, 2, 3]
    with pytest.raises(ValueError, match="stakes for"):
        many_orgs_raw(3, 0, stakes=[1])
    with pytest.raises(ValueError, match=f"1..{MAX_ORGS} orgs"):
        many_orgs_raw(MAX_ORGS + 1, 0)
    raw = many_orgs_raw(2, 0)
    raw["orgs"][1]["peer"]["port"] = raw["orgs"][0]["peer"]["port"]
    with pytest.raises(ConfigError, match="already used"):
        parse_config(raw)

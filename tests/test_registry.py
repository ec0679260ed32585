import pytest

from pyro_minvae.registry import Registry, deserialize, serialize


def test_register_build_serialize_round_trip():
    reg = Registry("widget")

    @reg.register("box")
    class Box:
        def __init__(self, size=1):
            self.size = size

    b = reg.build("box", size=3)
    spec = serialize(b)
    assert spec == {"kind": "widget", "name": "box", "kwargs": {"size": 3}}
    assert "box" in reg and reg.names() == ["box"]


def test_unknown_name_lists_valid_ones():
    reg = Registry("widget")
    reg.register("a", dict)
    reg.register("b", dict)
    with pytest.raises(ValueError, match="unknown widget 'c'; valid widgets: a, b"):
        reg.get("c")


def test_duplicate_registration_rejected():
    reg = Registry("widget")
    reg.register("a", dict)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", list)


def test_deserialize_rebuilds_registered_encoder():
    from pyro_minvae.registry import ENCODERS
    import pyro_minvae.models  # noqa: F401  (registers components)

    enc = ENCODERS.build("audio", in_dim=513, latent_dim=8)
    again = deserialize(serialize(enc))
    assert again.latent_dim == 8 and again.modality == "audio"
    with pytest.raises(ValueError, match="unknown component kind"):
        deserialize({"kind": "nope", "name": "x", "kwargs": {}})

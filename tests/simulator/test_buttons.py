"""The customId grammar of SPEC §3.2, both ways."""

from __future__ import annotations

import pytest

from mjgate.simulator.buttons import change_custom_id, grid_buttons, parse_custom_id, upscale_buttons

H = "0f6b1b3e-5c1a-4c4e-9a55-3f1d2c8b7a90"


@pytest.mark.parametrize(
    ("custom_id", "action", "index", "modal"),
    [
        (f"MJ::JOB::upsample::3::{H}", "UPSCALE", 3, False),
        (f"MJ::JOB::variation::2::{H}", "VARIATION", 2, False),
        (f"MJ::JOB::reroll::0::{H}::SOLO", "REROLL", 1, False),
        (f"MJ::JOB::low_variation::1::{H}::SOLO", "LOW_VARIATION", 1, False),
        (f"MJ::JOB::high_variation::1::{H}::SOLO", "HIGH_VARIATION", 1, False),
        (f"MJ::JOB::upsample_v6_2x_subtle::1::{H}::SOLO", "UPSCALE", 1, False),
        (f"MJ::JOB::upsample_v6_2x_creative::1::{H}::SOLO", "UPSCALE", 1, False),
        (f"MJ::JOB::upsample_v5_4x::1::{H}::SOLO", "UPSCALE", 1, False),
        (f"MJ::Outpaint::50::1::{H}::SOLO", "ZOOM", 1, False),
        (f"MJ::Outpaint::75::1::{H}::SOLO", "ZOOM", 1, False),
        (f"MJ::CustomZoom::{H}", "CUSTOM_ZOOM", 1, True),
        (f"MJ::JOB::pan_left::1::{H}::SOLO", "PAN", 1, False),
        (f"MJ::JOB::pan_down::1::{H}::SOLO", "PAN", 1, False),
        (f"MJ::Inpaint::1::{H}::SOLO", "INPAINT", 1, True),
        (f"MJ::JOB::animate_high::1::{H}::SOLO", "VIDEO", 1, False),
        (f"MJ::JOB::animate_low::1::{H}::SOLO", "VIDEO", 1, False),
    ],
)
def test_grammar(custom_id, action, index, modal):
    parsed = parse_custom_id(custom_id)
    assert parsed is not None
    assert (parsed.action, parsed.index, parsed.hash, parsed.needs_modal) == (action, index, H, modal)


@pytest.mark.parametrize(
    "custom_id",
    ["", "MJ::JOB::upsample::5::h", "MJ::JOB::upsample::1::", "MJ::Outpaint::60::1::h::SOLO", "hello", "MJ::JOB::pan_diag::1::h::SOLO"],
)
def test_outside_the_grammar(custom_id):
    assert parse_custom_id(custom_id) is None


def test_every_button_the_simulator_offers_parses_back_to_its_hash():
    for button in grid_buttons(H) + upscale_buttons(H):
        parsed = parse_custom_id(button["customId"])
        assert parsed is not None and parsed.hash == H, button


def test_change_maps_onto_buttons():
    assert change_custom_id("UPSCALE", 2, H) == f"MJ::JOB::upsample::2::{H}"
    assert change_custom_id("VARIATION", 4, H) == f"MJ::JOB::variation::4::{H}"
    assert change_custom_id("REROLL", 0, H) == f"MJ::JOB::reroll::0::{H}::SOLO"
    assert change_custom_id("UPSCALE", 5, H) is None

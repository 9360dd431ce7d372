"""Short action names against the buttons midjourney-proxy servers (here: the simulator) hand out."""

from __future__ import annotations

import pytest

from mjgate.client.actions import action_name, normalize
from mjgate.client.models import Task
from mjgate.simulator.buttons import grid_buttons, upscale_buttons
from mjgate.tasks.actions import parse_custom_id

UPSCALE_NAMES = ["upscale-subtle", "upscale-creative", "vary-subtle", "vary-strong", "vary-region", "zoom-out-2x",
                 "zoom-out-1.5x", "custom-zoom", "pan-left", "pan-right", "pan-up", "pan-down", "animate-high",
                 "animate-low"]


def test_every_button_of_a_grid_and_an_upscale_has_a_name():
    assert [action_name(b["customId"]) for b in grid_buttons("abc-123")] == [
        "U1", "U2", "U3", "U4", "reroll", "V1", "V2", "V3", "V4"]
    assert [action_name(b["customId"]) for b in upscale_buttons("abc-123")] == UPSCALE_NAMES
    assert action_name("MJ::JOB::upsample_v5_2x::1::h::SOLO") == "upscale-2x"
    assert action_name("MJ::Something::else") is None


@pytest.mark.parametrize(("typed", "name"), [
    ("u1", "U1"), ("V4", "V4"), ("upscale2", "U2"), ("variation3", "V3"), ("R", "reroll"),
    ("zoom_out_1_5x", "zoom-out-1.5x"), ("Zoom Out 2x", "zoom-out-2x"), ("variation_strong", "vary-strong"),
    ("pan_left", "pan-left"), ("upscale-subtle", "upscale-subtle"),
])
def test_spellings(typed, name):
    assert normalize(typed) == name


def test_a_name_picks_the_parents_own_button_which_the_gateway_accepts():
    task = Task.model_validate({"id": "1", "status": "SUCCESS", "buttons": upscale_buttons("h1")})
    for name in UPSCALE_NAMES:
        button = task.button(name)
        assert button is not None and button.name == name
        parse_custom_id(button.custom_id)  # the gateway's own grammar takes every one of them
    assert task.button("U1") is None and not task.is_grid

"""Mode fallback: a channel out of fast hours (the simulator's --no-fast-hours) runs fast tasks as
relax, priced as relax, when its operator opted in; without the option the task fails and is refunded."""

from __future__ import annotations

from sqlalchemy import select

from mjgate.billing.pricing import QUOTA_PER_USD
from mjgate.models import Channel
from tests.fixtures.relay import add_simulator_channel, make_relay
from tests.scheduler.test_queue import dispatcher, ledger_of

IMAGINE_FAST = int(0.1 * QUOTA_PER_USD)


def imagine_modes(sim) -> list[str | None]:
    return [r["mode"] for r in sim.requests() if r["path"].endswith("/submit/imagine")]


async def test_out_of_fast_hours_runs_as_relax_and_costs_relax(app, client, db, simulator):
    simulator.configure(no_fast_hours=True)
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator, mode_fallback=True)
    first = (await relay.post("/mj/submit/imagine", {"prompt": "fast please"}))["result"]
    task = await relay.wait(first, statuses=("NOT_START", "FAILURE", "SUCCESS"))
    # The upstream failed it for want of fast hours: it waits again, as relax, repriced.
    assert task["status"] == "NOT_START" and task["properties"]["modeFallback"] == "fast->relax", task
    hands = dispatcher(app)
    assert await hands.cycle() == 1
    await hands.settle()
    done = await relay.wait(first)
    assert done["status"] == "SUCCESS"
    assert imagine_modes(simulator) == [None, "relax"]  # the default (fast) route, then /mj-relax
    assert await ledger_of(db, first) == [("charge", -IMAGINE_FAST), ("reprice", IMAGINE_FAST // 2)]
    async with db.read() as session:
        channel = (await session.scalars(select(Channel))).one()
        assert channel.fast_exhausted_until
    # While the account is out of fast hours, a new fast task goes out as relax from the start.
    second = await relay.post("/mj/submit/imagine", {"prompt": "fast again"})
    assert second["code"] == 1
    assert (await relay.wait(second["result"]))["status"] == "SUCCESS"
    assert imagine_modes(simulator)[-1] == "relax"
    assert await ledger_of(db, second["result"]) == [("charge", -(IMAGINE_FAST // 2))]
    money = await relay.balances()
    assert money["quota"] == money["ledger"] and money["used"] == IMAGINE_FAST


async def test_without_the_option_the_task_fails_and_is_refunded(app, client, db, simulator):
    simulator.configure(no_fast_hours=True)
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator)
    mj_id = (await relay.post("/mj/submit/imagine", {"prompt": "fast please"}))["result"]
    task = await relay.wait(mj_id)
    assert task["status"] == "FAILURE" and "fast" in task["failReason"].lower()
    assert [k for k, _ in await ledger_of(db, mj_id)] == ["charge", "refund"]

"""Prices: a per-action table in USD (new-api's defaults), times group and mode ratios, in quota units;
per-parameter price rules (billing/price_rules.py) replace an action's base price where they match.

Admins override any of the three tables through the options table (keys below); a missing
entry falls back to the default, so a partial override never prices something at zero by accident.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mjgate.billing import repository
from mjgate.billing.price_rules import OPTION_PRICE_RULES, MAX_RULES, best_rule, parameters_of, validate_rule
from mjgate.errors import BadRequest, NotFound
from mjgate.invalidation import stale_after_commit

QUOTA_PER_USD = 500_000

DEFAULT_ACTION_PRICES_USD = {
    "mj_imagine": 0.1, "mj_variation": 0.1, "mj_reroll": 0.1, "mj_blend": 0.1, "mj_modal": 0.1,
    "mj_zoom": 0.1, "mj_shorten": 0.1, "mj_high_variation": 0.1, "mj_low_variation": 0.1, "mj_pan": 0.1,
    "mj_edits": 0.1, "mj_inpaint": 0, "mj_custom_zoom": 0, "mj_describe": 0.05, "mj_upscale": 0.05,
    "swap_face": 0.05, "mj_upload": 0.05, "mj_video": 0.8, "mj_retexture": 0.1, "swap_video_face": 0.05,
}
DEFAULT_GROUP_RATIOS = {"default": 1, "vip": 1, "svip": 1}
# Midjourney's relax mode is slower and cheaper, turbo faster and dearer; operators can change these.
DEFAULT_MODE_RATIOS = {"fast": 1, "relax": 0.5, "turbo": 2}

OPTION_ACTION_PRICES = "mj_action_prices"
OPTION_GROUP_RATIOS = "group_ratios"
OPTION_MODE_RATIOS = "mode_ratios"
DEFAULTS = {
    OPTION_ACTION_PRICES: DEFAULT_ACTION_PRICES_USD,
    OPTION_GROUP_RATIOS: DEFAULT_GROUP_RATIOS,
    OPTION_MODE_RATIOS: DEFAULT_MODE_RATIOS,
    OPTION_PRICE_RULES: {},  # name -> rule; none by default
}
# The tables PUT /api/admin/prices replaces (rules have routes of their own).
PRICE_TABLES = (OPTION_ACTION_PRICES, OPTION_GROUP_RATIOS, OPTION_MODE_RATIOS)


def price_key(action: str) -> str:
    return action.lower() if action in ("SWAP_FACE", "SWAP_VIDEO_FACE") else "mj_" + action.lower()


async def load_tables(session: AsyncSession) -> dict[str, dict]:
    stored = {k: v for k, v in (await repository.options(session, list(DEFAULTS))).items() if isinstance(v, dict)}
    return {key: {**default, **stored.get(key, {})} for key, default in DEFAULTS.items()}


def _units(tables: dict[str, dict], usd: Decimal, group: str, mode: str) -> int:
    group_ratio = Decimal(str(tables[OPTION_GROUP_RATIOS].get(group, 1)))
    mode_ratio = Decimal(str(tables[OPTION_MODE_RATIOS].get(mode, 1)))
    units = usd * QUOTA_PER_USD * group_ratio * mode_ratio
    return int(units.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _base_usd(tables: dict[str, dict], action: str) -> Decimal:
    return Decimal(str(tables[OPTION_ACTION_PRICES].get(price_key(action), 0)))


def quote(tables: dict[str, dict], action: str, group: str, mode: str) -> int:
    """The price of one task in quota units (integer, rounded half up)."""
    return _units(tables, _base_usd(tables, action), group, mode)


def quote_task(tables: dict[str, dict], action: str, group: str, mode: str, *, params: dict,
               prompt: str | None = None, custom_id: str | None = None,
               bot_type: str | None = None) -> tuple[int, dict | None]:
    """The price of one task with the price rule that matches it, and the snapshot the task keeps
    of that rule (None when the action's table price applies)."""
    parameters = parameters_of(action, params, prompt, custom_id, bot_type)
    found = best_rule(tables.get(OPTION_PRICE_RULES) or {}, action, mode, parameters)
    if found is None:
        return quote(tables, action, group, mode), None
    name, rule = found
    base = _base_usd(tables, action)
    usd = Decimal(str(rule["price_usd"])) if "price_usd" in rule else base * Decimal(str(rule["ratio"]))
    price = _units(tables, usd, group, mode)
    return price, {"name": name, "rule": rule, "parameters": parameters, "usd": float(usd), "quota": price}


async def _edit_rules(db, change) -> dict:
    """`change(rules)` applied to the price rules under a lock on their row, so two admins adding a
    rule each at once keep both (the rules are one option). The row is made first, in a transaction
    of its own: a lock on a row that does not exist would let both writers through, and two
    inserts of it inside the editing transactions deadlock on MariaDB."""
    try:
        await db.run_transaction(lambda conn: repository.ensure_option(conn, OPTION_PRICE_RULES))
    except IntegrityError:
        pass  # another writer made it just now
    async with db.write() as session:
        stored = await repository.locked_option(session, OPTION_PRICE_RULES)
        rules = {**DEFAULTS[OPTION_PRICE_RULES], **(stored if isinstance(stored, dict) else {})}
        change(rules)
        await repository.save_option(session, OPTION_PRICE_RULES, rules)
        stale_after_commit(session)
    return rules


async def set_rule(db, name: str, rule: object) -> dict:
    """Add or replace one price rule; the rules after the change."""
    clean = validate_rule(name, rule)

    def change(rules: dict) -> None:
        if name not in rules and len(rules) >= MAX_RULES:
            raise BadRequest(f"at most {MAX_RULES} price rules")
        rules[name] = clean

    return await _edit_rules(db, change)


async def remove_rule(db, name: str) -> dict:
    def change(rules: dict) -> None:
        if rules.pop(name, None) is None:
            raise NotFound(f"no price rule {name!r}")

    return await _edit_rules(db, change)


async def price_of(session: AsyncSession, action: str, group: str, mode: str) -> int:
    return quote(await load_tables(session), action, group, mode)


async def set_table(session: AsyncSession, key: str, values: dict) -> dict:
    if key not in PRICE_TABLES:
        raise BadRequest(f"unknown price table {key!r}")
    if not isinstance(values, dict):
        raise BadRequest("a price table is an object of name -> number")
    clean = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise BadRequest(f"{name}: must be a number >= 0")
        clean[str(name)] = value
    await repository.save_option(session, key, clean)
    stale_after_commit(session)
    return {**DEFAULTS[key], **clean}

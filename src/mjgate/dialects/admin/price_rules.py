"""Admin API for per-parameter price rules (billing/price_rules.py):
GET /api/admin/price-rules, PUT /api/admin/price-rules/{name}, POST /api/admin/price-rules/{name}/remove
(POST: the console's CSRF guard wants a JSON body on every change)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from mjgate.api.payloads import json_object
from mjgate.api.routing import dialect_route, documented_body
from mjgate.billing import pricing
from mjgate.billing.price_rules import OPTION_PRICE_RULES, PARAMETERS, PriceRule
from mjgate.dialects.admin.routes import Admin
from mjgate.dialects.console.csrf import csrf_guard, ok
from mjgate.dialects.newapi.render import error_reply

router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[Depends(csrf_guard)],
                   route_class=dialect_route(error_reply))

RuleName = Annotated[str, Path(min_length=1, max_length=64)]


def _answer(rules: dict):
    return ok({"rules": rules, "parameters": list(PARAMETERS)})


@router.get("/price-rules", summary="Per-parameter price rules, by name")
async def list_price_rules(request: Request, admin: Admin):
    async with request.app.state.db.read() as session:
        return _answer((await pricing.load_tables(session))[OPTION_PRICE_RULES])


@router.put("/price-rules/{name}", summary="Add or replace a price rule (tasks already charged keep theirs)",
            openapi_extra=documented_body(PriceRule))
async def put_price_rule(request: Request, admin: Admin, name: RuleName):
    return _answer(await pricing.set_rule(request.app.state.db, name, await json_object(request)))


@router.post("/price-rules/{name}/remove", summary="Remove a price rule")
async def remove_price_rule(request: Request, admin: Admin, name: RuleName):
    return _answer(await pricing.remove_rule(request.app.state.db, name))

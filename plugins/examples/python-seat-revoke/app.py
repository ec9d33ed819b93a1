"""`python-seat-revoke`: a Reclaim plugin in Python (componentize-py).

Frees a seat through a small REST API (described in plugins/README.md, "Example vendor API"):

    GET    {base}/seats/{sku}/users/{user}   200 = the user holds a seat, 404 = not
    DELETE {base}/seats/{sku}/users/{user}   2xx = removed, 404 = already gone

`sku` is the candidate's `software.sku` (else its product name) and `user` its UPN (else
email, else directory id), each percent-encoded as one path segment. Every request carries
`Authorization: Bearer <api-token>`; the DELETE carries `Idempotency-Key`.
"""

from typing import Optional
from urllib.parse import quote

import wit_world
from componentize_py_types import Err
from wit_world.imports import config, log
from wit_world.imports.reclaim_plugin_types import (
    AppliesTo,
    Justification,
    Outcome,
    Outcome_AlreadyAbsent,
    Outcome_Removed,
    PluginInfo,
    Presence,
    Request,
    Requirement,
)

from reclaim_http import misconfigured, send

PLUGIN_ID = "python-seat-revoke"  # must equal the manifest's id


class WitWorld(wit_world.WitWorld):
    def describe(self) -> PluginInfo:
        return PluginInfo(
            id=PLUGIN_ID,
            name="Seat removal over REST (Python example)",
            version="0.1.0",
            vendor="Example REST vendor",
            applies_to=[AppliesTo.SUBSCRIPTION],
            justifications=list(Justification),
            config_keys=[Requirement("base", "API root, e.g. https://seats.example.com/api/v1", True)],
            secrets=[Requirement("api-token", "bearer token of an account that may remove seats", True)],
        )

    def reclaim(self, req: Request) -> Outcome:
        url, token = _seat_url(req), _token()
        if req.dry_run:
            # Read, never write: say exactly what a real run would do.
            found = send("GET", url, _headers(token))
            if found.status == 404:
                return Outcome_AlreadyAbsent()
            if found.status != 200:
                raise found.error("looking up the seat")
            return Outcome_Removed(f"dry run: would DELETE {url}")
        log.log(log.Level.INFO, f"removing seat: DELETE {url}")
        answer = send("DELETE", url, _headers(token) + [("idempotency-key", req.idempotency_key)])
        if 200 <= answer.status <= 299:
            return Outcome_Removed(f"DELETE {url}: HTTP {answer.status}")
        if answer.status == 404:
            return Outcome_AlreadyAbsent()
        raise answer.error("removing the seat")

    def verify(self, req: Request) -> Presence:
        found = send("GET", _seat_url(req), _headers(_token()))
        if found.status == 200:
            return Presence.PRESENT
        if found.status == 404:
            return Presence.ABSENT
        raise found.error("looking up the seat")


def _seat_url(req: Request) -> str:
    base = (config.get("base") or "").strip().rstrip("/")
    if not base.startswith(("https://", "http://")):
        raise misconfigured("config key `base` must be set to the API root (https://...)")
    sku = _first(req.software.sku, req.software.product)
    user = _first(req.user.upn, req.user.email, req.user.id)
    # quote(..., safe="") encodes "/" too: a user name can never change the path.
    return f"{base}/seats/{quote(sku, safe='')}/users/{quote(user, safe='')}"


def _token() -> str:
    try:
        return config.secret("api-token")
    except Err as e:
        # The host's message names the secret and where its value was expected, never a value.
        raise misconfigured(str(e.value))


def _headers(token: str) -> list:
    return [("authorization", f"Bearer {token}"), ("accept", "application/json")]


def _first(*values: Optional[str]) -> str:
    return next((v for v in values if v), "")

"""Date filters of the ticket queue at the edges of the calendar (issue 6, found while fuzzing): a moment UTC
cannot express is a 422, never a 500 from the store's encoder."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from helpgate.api.schemas.ticket_changes import TicketQuery

OUT_OF_RANGE = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]


@pytest.mark.parametrize("moment", OUT_OF_RANGE)
def test_a_moment_outside_utc_is_refused(moment: str) -> None:
    with pytest.raises(ValidationError, match="out of the range of dates"):
        TicketQuery.model_validate({"created_after": moment})


def test_moments_are_kept_in_utc() -> None:
    query = TicketQuery.model_validate({"created_after": "2026-11-27T10:00:00+01:00", "created_before": "2026-11-28"})
    assert query.created_after is not None and query.created_after.isoformat() == "2026-11-27T09:00:00+00:00"
    assert query.created_before is not None and query.created_before.isoformat() == "2026-11-28T00:00:00+00:00"


async def test_the_queue_answers_422_for_an_out_of_range_moment(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for moment in OUT_OF_RANGE:
        for name in ("created_after", "created_before"):
            response = await api.get("/api/tickets", params={name: moment}, headers=admin)
            assert response.status_code == 422, (name, moment, response.text)
            assert response.json()["detail"][0]["loc"] == ["query", name]
    edges = {"created_after": "0001-01-01T00:00:00", "created_before": "9999-12-31T23:59:59.999999"}
    assert (await api.get("/api/tickets", params=edges, headers=admin)).status_code == 200

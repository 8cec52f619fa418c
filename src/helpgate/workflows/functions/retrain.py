"""retrain-triage: train the learned triage from the reviewed tickets, sleep, and send the event of the next run.

One chain per installation: `learning.start_chain` (at gateway start) starts one when none is on schedule, and a run
of a chain a later start replaced stops without training (`learning.is_current`), so a chain that was late when an
instance started does not go on beside the new one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from helpgate.core.clock import utcnow
from helpgate.outbox import events
from helpgate.workflows.ai import learning
from helpgate.workflows.functions.deps import log_failure
from helpgate.workflows.step import Context, Step, Workflow

DEFAULT_EVERY = timedelta(days=1)


def retrain_triage(every: timedelta = DEFAULT_EVERY) -> Workflow:
    """Trains every `every` (HELPGATE_TRIAGE_RETRAIN_HOURS); registered always, its chain started only when on."""

    async def train_step(chain: str) -> dict[str, Any]:
        if not await learning.is_current(chain):
            return {"superseded": True}
        now = utcnow()
        trained = await learning.retrain(now=now)
        await learning.schedule(chain, at=now + every)
        return trained

    async def handler(ctx: Context, step: Step) -> Any:
        chain = str(ctx.event.data["chain"])
        trained = await step.run("train", lambda: train_step(chain))
        if trained.get("superseded"):
            return trained
        await step.sleep("until-the-next-training", every)
        await step.send_event("next-training", events.TRIAGE_RETRAIN, {"chain": chain})
        return trained

    return Workflow(
        id="retrain-triage",
        name="Train the learned triage, then schedule the next training",
        trigger=events.TRIAGE_RETRAIN,
        handler=handler,
        retries=2,
        on_failure=log_failure,
        concurrency=1,
    )

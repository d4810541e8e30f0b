"""The closed loop of a job-centre integration, driven by the Python client
that openapi-python-client generates from openapi/openapi.json (run by
tests/contract/run.sh against a freshly served instance).

A job centre pushes a client and a referral (each with an Idempotency-Key,
the referral pushed twice to see the replay), the provider accepts and
starts it, the job centre polls it, and the provider reads the demand
statistics. Every answer must parse into the generated model of its status;
anything else — an unexpected status, a problem, a model that does not fit —
fails the run.

Environment: CONTRACT_URL (the served instance), CONTRACT_BIN (the binary, to
mint tokens with `ostwerk token`; needs OSTWERK_JWT_SECRET), and the
generated package `ostwerk_client` on PYTHONPATH.
"""

import os
import subprocess
import sys
import uuid
from http import HTTPStatus
from typing import TypeVar

from ostwerk_client import AuthenticatedClient
from ostwerk_client.api.clients import create_client
from ostwerk_client.api.measures import create_measure, update_measure
from ostwerk_client.api.providers import create_provider
from ostwerk_client.api.referrals import create_referral, get_referral, list_referral_events, transition_referral
from ostwerk_client.api.statistics import get_demand_statistics
from ostwerk_client.models import (
    ClientDto,
    ClientInput,
    DemandReport,
    ListOfReferralEventDto,
    MeasureDto,
    MeasureInput,
    MeasurePatch,
    ProviderDto,
    ProviderInput,
    ReferralAction,
    ReferralDto,
    ReferralInput,
    ReferralStatus,
    TransitionInput,
)
from ostwerk_client.types import Response

BASE = os.environ["CONTRACT_URL"]
BIN = os.environ["CONTRACT_BIN"]
JOBCENTRE = "jc-leipzig"

T = TypeVar("T")


def token(role: str, org: str | None = None) -> str:
    args = [BIN, "token", "--role", role, "--sub", f"closed-loop-{role}", "--ttl", "900"]
    if org:
        args += ["--org", org]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


def client_for(role: str, org: str | None = None) -> AuthenticatedClient:
    return AuthenticatedClient(base_url=BASE, token=token(role, org), raise_on_unexpected_status=True)


def expect(step: str, response: Response[object], status: HTTPStatus, model: type[T]) -> T:
    """The parsed answer of `step`, which must be `status` with a `model`."""
    parsed = response.parsed
    if response.status_code != status or not isinstance(parsed, model):
        sys.exit(f"{step}: expected {int(status)} {model.__name__}, got {int(response.status_code)}: {response.content!r}")
    print(f"ok  {step}: {int(response.status_code)} {model.__name__}")
    return parsed


def main() -> None:
    admin = client_for("admin")
    jobcentre = client_for("jobcenter", JOBCENTRE)

    # The office registers a provider and its measure (set-up, not the loop).
    provider = expect(
        "admin creates a provider",
        create_provider.sync_detailed(
            client=admin,
            body=ProviderInput.from_dict({"name": "Bildungswerk Leipzig-Ost gGmbH", "kind": "training_provider", "district": "21"}),
        ),
        HTTPStatus.CREATED,
        ProviderDto,
    )
    measure = expect(
        "admin creates a measure",
        create_measure.sync_detailed(
            client=admin,
            body=MeasureInput.from_dict(
                {
                    "provider_id": str(provider.id),
                    "title": "Bewerbungswerkstatt Leipzig-Ost",
                    "kind": "application_training",
                    "funding": "sgb3_45",
                    "capacity": 12,
                    "district": "21",
                }
            ),
        ),
        HTTPStatus.CREATED,
        MeasureDto,
    )
    provider_api = client_for("provider", str(provider.id))

    # The provider changes one member of its measure: a partial merge patch.
    patched = expect(
        "provider patches its measure's capacity",
        update_measure.sync_detailed(id=measure.id, client=provider_api, body=MeasurePatch.from_dict({"capacity": 9})),
        HTTPStatus.OK,
        MeasureDto,
    )
    if patched.capacity != 9 or patched.title != measure.title:
        sys.exit(f"the partial patch changed more or less than capacity: {patched.to_dict()!r}")

    # 1. The job centre pushes a client.
    person = expect(
        "job centre pushes a client",
        create_client.sync_detailed(
            client=jobcentre,
            idempotency_key=f"client-{uuid.uuid4()}",
            body=ClientInput.from_dict(
                {
                    "first_name": "Mara",
                    "last_name": "Beispiel",
                    "external_id": f"JC-{uuid.uuid4().hex[:8]}",
                    "district": "21",
                    "consent": {"data_processing": True, "share_with_providers": True, "given_at": "2026-11-02T10:00:00Z"},
                }
            ),
        ),
        HTTPStatus.CREATED,
        ClientDto,
    )

    # 2. ... and a referral into the measure; a retry with the same key replays it.
    key = f"referral-{uuid.uuid4()}"
    body = ReferralInput.from_dict({"client_id": str(person.id), "measure_id": str(measure.id), "external_id": "JC-REF-1"})
    first = create_referral.sync_detailed(client=jobcentre, body=body, idempotency_key=key)
    referral = expect("job centre pushes a referral", first, HTTPStatus.CREATED, ReferralDto)
    retry = create_referral.sync_detailed(client=jobcentre, body=body, idempotency_key=key)
    replayed = expect("job centre retries the referral", retry, HTTPStatus.CREATED, ReferralDto)
    if replayed.id != referral.id or retry.headers.get("Idempotent-Replayed") != "true":
        sys.exit("the retried referral was not replayed")

    # 3. The provider accepts and starts it.
    for action in (ReferralAction.ACCEPT, ReferralAction.START):
        expect(
            f"provider: {action.value}",
            transition_referral.sync_detailed(referral.id, client=provider_api, body=TransitionInput(action=action)),
            HTTPStatus.OK,
            ReferralDto,
        )

    # 4. The job centre polls the referral and its history.
    polled = expect("job centre polls", get_referral.sync_detailed(referral.id, client=jobcentre), HTTPStatus.OK, ReferralDto)
    if polled.status != ReferralStatus.IN_PROGRESS:
        sys.exit(f"the polled referral is {polled.status}, not in_progress")
    events = expect(
        "job centre reads the history",
        list_referral_events.sync_detailed(referral.id, client=jobcentre),
        HTTPStatus.OK,
        ListOfReferralEventDto,
    )
    if len(events.items) < 3:
        sys.exit(f"expected created, accepted and started events, got {len(events.items)}")

    # 5. The provider reads the demand statistics.
    expect(
        "provider reads demand statistics",
        get_demand_statistics.sync_detailed(client=provider_api, group_by="district"),
        HTTPStatus.OK,
        DemandReport,
    )
    print("closed loop complete")


if __name__ == "__main__":
    main()

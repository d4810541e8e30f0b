"""Listing employers and polling referrals with the Python client that
openapi-generator (`-g python`, its defaults) makes from openapi/openapi.json
(run by tests/contract/run.sh against a freshly served instance).

The office creates an employer; a caseworker (full view) and a job centre
(public view) list employers, so `EmployerRecord` must resolve to exactly one
of its `oneOf` members by its `view` discriminator ("Multiple matches found"
before it had one); a job centre polls referrals with `updated_after`, which
the generator serialises in its default format `%Y-%m-%dT%H:%M:%S.%f%z`
(`+0000`, no colon). Anything but a parsed answer fails the run.

Environment: CONTRACT_URL, CONTRACT_BIN (to mint tokens), and the generated
package `ostwerk_gen` on PYTHONPATH.
"""

import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

import ostwerk_gen
from ostwerk_gen.api.employers_api import EmployersApi
from ostwerk_gen.api.referrals_api import ReferralsApi
from ostwerk_gen.models import EmployerDto, EmployerInput, EmployerPublicDto

BASE = os.environ["CONTRACT_URL"]
BIN = os.environ["CONTRACT_BIN"]


def token(role: str, org: str | None = None) -> str:
    args = [BIN, "token", "--role", role, "--sub", f"generator-loop-{role}", "--ttl", "900"]
    if org:
        args += ["--org", org]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


def api(role: str, org: str | None = None) -> ostwerk_gen.ApiClient:
    config = ostwerk_gen.Configuration(host=BASE, access_token=token(role, org))
    return ostwerk_gen.ApiClient(config)


def check(condition: bool, what: str) -> None:
    if not condition:
        print(f"generator loop: {what}", file=sys.stderr)
        sys.exit(1)


def main() -> None:
    office = EmployersApi(api("caseworker"))
    name = f"Generator Loop GmbH {uuid.uuid4().hex[:8]}"
    created = office.create_employer(
        EmployerInput(name=name, district="21", needs=["recruiting"]),
        idempotency_key=str(uuid.uuid4()),
    )
    check(created.name == name, f"created employer answered {created!r}")

    full = office.list_employers(q=name)
    check(len(full.items) == 1, f"caseworker list: {full.items!r}")
    check(isinstance(full.items[0].actual_instance, EmployerDto), f"caseworker sees {full.items[0]!r}")

    jobcentre = EmployersApi(api("jobcenter", "jc-leipzig"))
    public = jobcentre.list_employers(q=name)
    check(len(public.items) == 1, f"job-centre list: {public.items!r}")
    record = public.items[0].actual_instance
    check(isinstance(record, EmployerPublicDto), f"job centre sees {record!r}")
    check(record.name == name, f"public view names {record.name!r}")

    # Polling with the generator's default datetime format (`+0000`).
    referrals = ReferralsApi(api("jobcenter", "jc-leipzig"))
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    page = referrals.list_referrals(sort="updated_at", updated_after=since, limit=10)
    check(page.items is not None, "referral poll did not parse")
    print(f"generator loop: ok ({len(full.items)} full, {len(public.items)} public, {len(page.items)} referrals polled)")


if __name__ == "__main__":
    main()

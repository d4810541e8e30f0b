// The closed loop of a job-centre integration, typed by the types that
// openapi-typescript generates from openapi/openapi.json and driven with
// openapi-fetch. tests/contract/run.sh type-checks it (`tsc --noEmit`,
// strict; an untyped escape hatch or a suppressed error fails the script)
// and then runs it against a freshly served instance.
//
// A job centre pushes a client and a referral (with Idempotency-Keys; the
// referral twice, to see the replay), the provider accepts and starts it,
// the job centre polls it, and the provider reads the demand statistics.
// On the way the provider changes its measure's capacity with a partial
// merge patch (`MeasurePatch`: every member optional).
//
// Environment: CONTRACT_URL (the instance), CONTRACT_BIN (the binary, to mint
// tokens with `ostwerk token`; needs OSTWERK_JWT_SECRET).
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./generated/ostwerk.js";

type Schemas = components["schemas"];

const BASE = required("CONTRACT_URL");
const BIN = required("CONTRACT_BIN");

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function token(role: string, org?: string): string {
  const args = ["token", "--role", role, "--sub", `closed-loop-ts-${role}`, "--ttl", "900"];
  if (org) args.push("--org", org);
  return execFileSync(BIN, args, { encoding: "utf8" }).trim();
}

function clientFor(role: string, org?: string): Client<paths> {
  return createClient<paths>({ baseUrl: BASE, headers: { Authorization: `Bearer ${token(role, org)}` } });
}

/** The answer of `step`, which must have succeeded with `status`. */
function expect<T>(step: string, result: { data?: T; error?: unknown; response: Response }, status: number): T {
  if (result.response.status !== status || result.data === undefined) {
    throw new Error(`${step}: expected ${status}, got ${result.response.status}: ${JSON.stringify(result.error)}`);
  }
  console.log(`ok  ${step}: ${result.response.status}`);
  return result.data;
}

async function main(): Promise<void> {
  const admin = clientFor("admin");
  const jobcentre = clientFor("jobcenter", "jc-leipzig");

  // The office registers a provider and its measure (set-up, not the loop).
  const providerInput: Schemas["ProviderInput"] = {
    name: "Bildungswerk Leipzig-Ost gGmbH",
    kind: "training_provider",
    district: "21",
  };
  const provider = expect("admin creates a provider", await admin.POST("/api/v1/providers", { body: providerInput }), 201);
  const measureInput: Schemas["MeasureInput"] = {
    provider_id: provider.id,
    title: "Bewerbungswerkstatt Leipzig-Ost",
    kind: "application_training",
    funding: "sgb3_45",
    capacity: 12,
    district: "21",
  };
  const measure = expect("admin creates a measure", await admin.POST("/api/v1/measures", { body: measureInput }), 201);
  const providerApi = clientFor("provider", provider.id);

  // The provider changes one member of its measure: a partial merge patch.
  const patch: Schemas["MeasurePatch"] = { capacity: 9 };
  const patched = expect(
    "provider patches its measure's capacity",
    await providerApi.PATCH("/api/v1/measures/{id}", {
      params: { path: { id: measure.id } },
      body: patch,
      headers: { "Content-Type": "application/merge-patch+json" },
    }),
    200,
  );
  if (patched.capacity !== 9 || patched.title !== measureInput.title) {
    throw new Error(`the partial patch changed more or less than capacity: ${JSON.stringify(patched)}`);
  }

  // 1. The job centre pushes a client ...
  const clientInput: Schemas["ClientInput"] = {
    first_name: "Mara",
    last_name: "Beispiel",
    external_id: `JC-${randomUUID().slice(0, 8)}`,
    district: "21",
    consent: { data_processing: true, share_with_providers: true, given_at: "2026-11-02T10:00:00Z" },
  };
  const person = expect(
    "job centre pushes a client",
    await jobcentre.POST("/api/v1/clients", {
      body: clientInput,
      params: { header: { "Idempotency-Key": `client-${randomUUID()}` } },
    }),
    201,
  );

  // 2. ... and a referral; a retry with the same key replays the first answer.
  const referralInput: Schemas["ReferralInput"] = { client_id: person.id, measure_id: measure.id, external_id: "JC-REF-1" };
  const key = `referral-${randomUUID()}`;
  const push = () => jobcentre.POST("/api/v1/referrals", { body: referralInput, params: { header: { "Idempotency-Key": key } } });
  const referral: Schemas["ReferralDto"] = expect("job centre pushes a referral", await push(), 201);
  const retry = await push();
  const replayed = expect("job centre retries the referral", retry, 201);
  if (replayed.id !== referral.id || retry.response.headers.get("Idempotent-Replayed") !== "true") {
    throw new Error("the retried referral was not replayed");
  }

  // 3. The provider accepts and starts it.
  for (const action of ["accept", "start"] as const satisfies readonly Schemas["ReferralAction"][]) {
    expect(
      `provider: ${action}`,
      await providerApi.POST("/api/v1/referrals/{id}/transitions", {
        params: { path: { id: referral.id } },
        body: { action },
      }),
      200,
    );
  }

  // 4. The job centre polls the referral and its history.
  const polled = expect(
    "job centre polls",
    await jobcentre.GET("/api/v1/referrals/{id}", { params: { path: { id: referral.id } } }),
    200,
  );
  const status: Schemas["ReferralStatus"] = polled.status;
  if (status !== "in_progress") throw new Error(`the polled referral is ${status}, not in_progress`);
  const events = expect(
    "job centre reads the history",
    await jobcentre.GET("/api/v1/referrals/{id}/events", { params: { path: { id: referral.id } } }),
    200,
  );
  if (events.items.length < 3) throw new Error(`expected 3 events, got ${events.items.length}`);

  // 5. The provider reads the demand statistics.
  const answer = expect(
    "provider reads demand statistics",
    await providerApi.GET("/api/v1/statistics/demand", { params: { query: { group_by: "district" } } }),
    200,
  );
  // The operation also answers text/csv (Accept: text/csv); JSON was asked for.
  if (typeof answer === "string") throw new Error("expected JSON demand statistics, got CSV");
  const report: Schemas["DemandReport"] = answer;
  console.log(`closed loop complete (${report.rows.length} demand rows)`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});

// Calls every operation of the document with the generated client
// (openapi-typescript types + openapi-fetch) and the signing helper of
// docs/openapi.md (perks.ts, extracted from the doc by the Go test). Run by
// internal/openapi's TestGeneratedClientCallsEveryOperation against a test
// server: it prints one line per call ("METHOD /path/template status") and
// exits non-zero on the first unexpected answer. The Go test checks that
// the calls cover every documented operation.
import createClient, { type Middleware } from "openapi-fetch";
import { writeFileSync } from "node:fs";
import { createHmac, createHash, createPrivateKey, sign as edSign } from "node:crypto";
import type { paths } from "./schema.js";
import { perksClient } from "./perks.js";

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const baseUrl = env("PERKS_URL");
const perks = perksClient(baseUrl, env("PERKS_PARTNER_SLUG"), env("PERKS_HMAC_SECRET"));

// recorder keeps the first exchange of each operation and status: with
// PERKS_UPDATE_EXAMPLES=1 the Go test stores them as the document's
// examples (internal/openapi/examples.json).
type Exchange = { method: string; path: string; status: number; contentType: string; request: string; response: string };
const exchanges: Exchange[] = [];
const sent = new WeakMap<Request, string>();
const recorder: Middleware = {
  async onRequest({ request }) {
    sent.set(request, request.body ? await request.clone().text() : "");
    return undefined;
  },
  async onResponse({ request, response, schemaPath }) {
    exchanges.push({
      method: request.method, path: schemaPath, status: response.status,
      contentType: (response.headers.get("Content-Type") ?? "").split(";")[0] ?? "",
      request: sent.get(request) ?? "", response: await response.clone().text(),
    });
    return undefined;
  },
};
perks.use(recorder);

// check records a call and fails the run on an unexpected status.
function check(method: string, path: string, res: { response: Response; error?: unknown }, ...want: number[]): void {
  const status = res.response.status;
  console.log(`${method} ${path} ${status}`);
  if (!(want.length ? want.includes(status) : status >= 200 && status < 300)) {
    throw new Error(`${method} ${path}: ${status} ${JSON.stringify(res.error)}`);
  }
}
function must<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`no ${what}`);
  return v;
}

const user = "ts-client-user";
const gift = env("PERKS_GIFT_SKU");

// Users.
check("POST", "/integrations/users", await perks.POST("/integrations/users", {
  body: { externalUserId: user, email: "ts@acme.example.test", displayName: "TS Client", countryCode: "SG", attributes: { plan: "gold" } },
}), 201);
check("POST", "/integrations/users", await perks.POST("/integrations/users", {
  body: { externalUserId: user, displayName: "TS Client", locale: "en-SG" },
}), 200);
check("GET", "/integrations/users", await perks.GET("/integrations/users", { params: { query: { limit: 10, country: "SG" } } }));
const info = await perks.GET("/integrations/users/{externalUserId}", { params: { path: { externalUserId: user } } });
check("GET", "/integrations/users/{externalUserId}", info);
check("GET", "/integrations/users/{externalUserId}/ranking", await perks.GET("/integrations/users/{externalUserId}/ranking", { params: { path: { externalUserId: user }, query: { n: 2 } } }));

// Program, rules, tiers, campaigns.
check("PUT", "/integrations/program", await perks.PUT("/integrations/program", { body: { expiryMode: "rolling", expiryDays: 365, pendingDays: 0, currency: "SGD", defaultLocale: "en" } }));
check("GET", "/integrations/program", await perks.GET("/integrations/program"));
check("PUT", "/integrations/earning-rules/{code}", await perks.PUT("/integrations/earning-rules/{code}", {
  params: { path: { code: "ts_purchase" } }, body: { name: "Purchase", points: 1, pointsPerAmount: 100 },
}), 201);
check("PUT", "/integrations/earning-rules/{code}", await perks.PUT("/integrations/earning-rules/{code}", {
  params: { path: { code: "ts_purchase" } }, body: { name: "Purchase", description: "One point per 1.00 spent", points: 1, pointsPerAmount: 100, maxPoints: 5000 },
}), 200);
check("GET", "/integrations/earning-rules", await perks.GET("/integrations/earning-rules", { params: { query: { includeDisabled: true } } }));
check("PUT", "/integrations/referral-policy", await perks.PUT("/integrations/referral-policy", {
  body: { qualifyAction: "ts_purchase", qualifyMinAmount: 2000, referrerPoints: 500, refereePoints: 100, holdDays: 14, monthlyCap: 10, linkTemplate: "https://shop.example/join?ref={code}", velocityLimit: 20, velocityWindowMinutes: 60 },
}));
check("GET", "/integrations/referral-policy", await perks.GET("/integrations/referral-policy"));
check("PUT", "/integrations/tiers", await perks.PUT("/integrations/tiers", {
  body: { tiers: [{ code: "member", name: "Member" }, { code: "gold", name: "Gold", threshold: 5000, multiplier: 1.5 }] },
}));
check("GET", "/integrations/tiers", await perks.GET("/integrations/tiers"));
check("PUT", "/integrations/campaigns/{code}", await perks.PUT("/integrations/campaigns/{code}", {
  params: { path: { code: "ts_bonus" } }, body: { name: "Big basket", bonus: 5, condition: "has(earn.amount) && earn.amount >= 10000" },
}), 201);
check("PUT", "/integrations/campaigns/{code}", await perks.PUT("/integrations/campaigns/{code}", {
  params: { path: { code: "ts_bonus" } }, body: { name: "Big basket", bonus: 5, condition: "has(earn.amount) && earn.amount >= 10000", budget: 100000, perUserCap: 50 },
}), 200);
check("GET", "/integrations/campaigns", await perks.GET("/integrations/campaigns"));
check("GET", "/integrations/campaigns/{code}", await perks.GET("/integrations/campaigns/{code}", { params: { path: { code: "ts_bonus" } } }));

// Webhook endpoint first, so the earns below have deliveries.
const endpoint = await perks.POST("/integrations/webhook-endpoints", { body: { url: "http://127.0.0.1:9/ts-client", description: "TS client", eventTypes: ["points.earned", "points.pending"] } });
check("POST", "/integrations/webhook-endpoints", endpoint, 201);
const endpointId = must(endpoint.data?.id, "endpoint id");

// Points.
check("POST", "/integrations/actions", await perks.POST("/integrations/actions", {
  params: { query: { dryRun: true } }, body: { externalUserId: user, action: "ts_purchase", amount: 12550 },
}), 200);
const earn = await perks.POST("/integrations/actions", { body: { externalUserId: user, action: "ts_purchase", amount: 12550, reference: "ts-order-1" } });
check("POST", "/integrations/actions", earn, 201);
if (earn.data && "entryId" in earn.data && earn.data.breakdown === undefined) throw new Error("no breakdown");
check("POST", "/integrations/actions/{reference}/reverse", await perks.POST("/integrations/actions/{reference}/reverse", {
  params: { path: { reference: "ts-order-1" } }, body: { points: 10, reason: "Partial refund" },
}), 201);
for (const ref of ["ts-held-1", "ts-held-2"]) {
  check("POST", "/integrations/actions", await perks.POST("/integrations/actions", { body: { externalUserId: user, action: "ts_purchase", amount: 1000, reference: ref, pending: true } }), 201);
}
check("POST", "/integrations/actions/{reference}/confirm", await perks.POST("/integrations/actions/{reference}/confirm", { params: { path: { reference: "ts-held-1" } }, body: {} }));
check("POST", "/integrations/actions/{reference}/cancel", await perks.POST("/integrations/actions/{reference}/cancel", { params: { path: { reference: "ts-held-2" } }, body: { reason: "Order cancelled" } }));
check("POST", "/integrations/users/{externalUserId}/adjustments", await perks.POST("/integrations/users/{externalUserId}/adjustments", {
  params: { path: { externalUserId: user } }, body: { points: 25, reason: "Goodwill" },
}), 201);
// The multistore items form, typed by the generated client.
check("POST", "/integrations/actions/multistore", await perks.POST("/integrations/actions/multistore", {
  body: { items: [{ externalUserId: user, action: "ts_purchase", amount: 300, reference: "ts-multi-1" }, { externalUserId: user, action: "ts_purchase", amount: 400, reference: "ts-multi-2", occurredAt: new Date().toISOString() }] },
}));
const job = await perks.POST("/integrations/actions/multistore", {
  params: { query: { async: true } }, body: { items: [{ externalUserId: user, action: "ts_purchase", amount: 500, reference: "ts-multi-3" }] },
});
check("POST", "/integrations/actions/multistore", job, 202);
const jobId = must(job.data && "jobId" in job.data ? job.data.jobId : undefined, "job id");
check("GET", "/integrations/jobs/{id}", await perks.GET("/integrations/jobs/{id}", { params: { path: { id: jobId }, query: { limit: 10 } } }));
check("GET", "/integrations/jobs", await perks.GET("/integrations/jobs", { params: { query: { limit: 5 } } }));
check("GET", "/integrations/users/{externalUserId}/entries", await perks.GET("/integrations/users/{externalUserId}/entries", { params: { path: { externalUserId: user }, query: { limit: 2 } } }));
check("GET", "/integrations/users/{externalUserId}/vouchers", await perks.GET("/integrations/users/{externalUserId}/vouchers", { params: { path: { externalUserId: user }, query: { limit: 2 } } }));
check("GET", "/integrations/exports/users", await perks.GET("/integrations/exports/users", { params: { query: { limit: 10 } }, parseAs: "text" }));
check("GET", "/integrations/exports/users", await perks.GET("/integrations/exports/users", { params: { query: { limit: 2 } }, headers: { Accept: "text/csv" }, parseAs: "text" }));
// Reports: yesterday and today (UTC, the test partner's time zone), so today's earns show.
const today = new Date().toISOString().slice(0, 10);
const yesterday = new Date(Date.now() - 86400000).toISOString().slice(0, 10);
check("GET", "/integrations/reports/{name}", await perks.GET("/integrations/reports/{name}", { params: { path: { name: "points" }, query: { from: yesterday, to: today } } }));
// The sandbox: created (201, its first HMAC secret shown once), then shown, then reset.
const sandbox = await perks.POST("/integrations/sandbox", {});
check("POST", "/integrations/sandbox", sandbox, 201);
if (sandbox.data?.environment !== "sandbox") throw new Error("no sandbox");
// The same empty signed POST again: a new second, or it would be a replay.
await new Promise((resolve) => setTimeout(resolve, 1100));
check("POST", "/integrations/sandbox", await perks.POST("/integrations/sandbox", {}), 200);
check("GET", "/integrations/sandbox", await perks.GET("/integrations/sandbox"));
check("POST", "/integrations/sandbox/reset", await perks.POST("/integrations/sandbox/reset", {}));
check("GET", "/integrations/reports/{name}", await perks.GET("/integrations/reports/{name}", { params: { path: { name: "active-users" }, query: { from: yesterday, to: today, format: "csv" } }, parseAs: "text" }));

// Webhooks.
check("GET", "/integrations/webhook-endpoints", await perks.GET("/integrations/webhook-endpoints"));
check("GET", "/integrations/webhook-endpoints/{id}", await perks.GET("/integrations/webhook-endpoints/{id}", { params: { path: { id: endpointId } } }));
check("PUT", "/integrations/webhook-endpoints/{id}", await perks.PUT("/integrations/webhook-endpoints/{id}", {
  params: { path: { id: endpointId } }, body: { url: "http://127.0.0.1:9/ts-client", eventTypes: ["points.earned", "points.pending", "points.adjusted"], enabled: true },
}));
check("PUT", "/integrations/webhook-endpoints/{id}", await perks.PUT("/integrations/webhook-endpoints/{id}", {
  params: { path: { id: "5b0c8f8e-2d1a-4c3b-9e7f-60a1b2c3d4e5" } }, body: { url: "http://127.0.0.1:9/ts-client-2", description: "Created under our id" },
}), 201);
check("POST", "/integrations/webhook-endpoints/{id}/rotate-secret", await perks.POST("/integrations/webhook-endpoints/{id}/rotate-secret", {
  params: { path: { id: endpointId } }, body: { gracePeriodSeconds: 3600 },
}));
const deliveries = await perks.GET("/integrations/webhook-deliveries", { params: { query: { endpointId, limit: 5 } } });
check("GET", "/integrations/webhook-deliveries", deliveries);
const delivery = must(deliveries.data?.data[0], "delivery");
check("GET", "/integrations/webhook-deliveries/{id}", await perks.GET("/integrations/webhook-deliveries/{id}", { params: { path: { id: delivery.id } } }));
check("POST", "/integrations/events/{id}/replay", await perks.POST("/integrations/events/{id}/replay", { params: { path: { id: delivery.eventId } }, body: { endpointId } }), 202);
const hourAgo = new Date(Date.now() - 3600_000).toISOString();
check("POST", "/integrations/events/replay", await perks.POST("/integrations/events/replay", {
  body: { from: hourAgo, to: new Date(Date.now() + 60_000).toISOString(), endpointId },
}), 202);

// Content.
check("PUT", "/integrations/ads/{id}", await perks.PUT("/integrations/ads/{id}", {
  params: { path: { id: "ts-ad" } }, body: { kind: "news", title: "Double points weekend", body: "On every purchase.", priority: 10, countries: ["SG"] },
}), 201);
check("PUT", "/integrations/ads/{id}", await perks.PUT("/integrations/ads/{id}", {
  params: { path: { id: "ts-ad" } }, body: { kind: "news", title: "Double points weekend", body: "On every purchase, Saturday and Sunday.", priority: 10, countries: ["SG", "MY"],
    translations: { fr: { title: "Points doublés ce week-end", body: "Sur chaque achat, samedi et dimanche." } } },
}));
check("GET", "/integrations/ads", await perks.GET("/integrations/ads"));
check("GET", "/integrations/ads/{id}", await perks.GET("/integrations/ads/{id}", { params: { path: { id: "ts-ad" } } }));

// Catalog.
check("PUT", "/integrations/gifts/{sku}", await perks.PUT("/integrations/gifts/{sku}", {
  params: { path: { sku: "ts-gift" } }, body: { title: "Coffee", costPoints: 50, codeSource: "pool", stock: 100 },
}), 201);
check("PUT", "/integrations/gifts/{sku}", await perks.PUT("/integrations/gifts/{sku}", {
  params: { path: { sku: "ts-gift" } }, body: { title: "Coffee", description: "Any size, any shop", costPoints: 50, codeSource: "pool", stock: 200,
    translations: { fr: { title: "Café", description: "Toutes tailles, toutes boutiques" } } },
}));
check("GET", "/integrations/gifts", await perks.GET("/integrations/gifts"));
check("GET", "/integrations/gifts/{sku}", await perks.GET("/integrations/gifts/{sku}", { params: { path: { sku: "ts-gift" } } }));
check("POST", "/integrations/gifts/{sku}/codes", await perks.POST("/integrations/gifts/{sku}/codes", { params: { path: { sku: "ts-gift" } }, body: { codes: ["TS-0001", "TS-0002"] } }));
check("POST", "/integrations/gifts/{sku}/codes", await perks.POST("/integrations/gifts/{sku}/codes", { params: { path: { sku: "ts-gift" }, query: { async: true } }, body: { codes: ["TS-0003", "TS-0004"] } }), 202);
const voucherId = env("PERKS_VOUCHER_ID");
check("GET", "/integrations/vouchers/{id}", await perks.GET("/integrations/vouchers/{id}", { params: { path: { id: voucherId } } }));
check("POST", "/integrations/vouchers/{id}/cancel", await perks.POST("/integrations/vouchers/{id}/cancel", { params: { path: { id: voucherId } }, body: { reason: "Customer request" } }));

// Merchant: Ed25519 over timestamp, method, path and query, body hash, key.
const merchantKey = createPrivateKey({ key: { kty: "OKP", crv: "Ed25519", d: env("PERKS_MERCHANT_SEED"), x: env("PERKS_MERCHANT_PUBLIC") }, format: "jwk" });
const merchant = createClient<paths>({ baseUrl });
merchant.use(recorder);
merchant.use({
  async onRequest({ request }) {
    const body = request.body ? await request.clone().text() : "";
    const url = new URL(request.url);
    const t = Math.floor(Date.now() / 1000).toString();
    const key = request.headers.get("Idempotency-Key") ?? "";
    const canonical = [t, request.method, url.pathname + url.search, createHash("sha256").update(body).digest("hex"), key].join("\n");
    request.headers.set("X-API-Key", env("PERKS_MERCHANT_API_KEY"));
    request.headers.set("X-Timestamp", t);
    request.headers.set("X-Signature", edSign(null, Buffer.from(canonical), merchantKey).toString("base64"));
    return request;
  },
});
const code = env("PERKS_VOUCHER_CODE");
check("GET", "/merchant/vouchers/{code}", await merchant.GET("/merchant/vouchers/{code}", { params: { path: { code } } }));
check("POST", "/merchant/redemptions", await merchant.POST("/merchant/redemptions", {
  params: { header: { "Idempotency-Key": "ts-redeem-1" } }, body: { code, otp: env("PERKS_VOUCHER_OTP") },
}), 201);
check("GET", "/merchant/redemptions", await merchant.GET("/merchant/redemptions", { params: { query: { limit: 10 } } }));

// Consumer: the partner-minted token the app holds.
const consumer = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${env("PERKS_CONSUMER_TOKEN")}` } });
consumer.use(recorder);
const me = await consumer.GET("/me");
check("GET", "/me", me);
if (!me.data?.partner.slug) throw new Error("no partner in /me");

// Seed 001 request JWT exchange: HS256 over iss, sub, iat, data_body, htm, htu.
const b64url = (b: Buffer | string): string => Buffer.from(b).toString("base64url");
const claims = { iss: env("PERKS_PARTNER_ID"), sub: "", iat: Math.floor(Date.now() / 1000), data_body: "", htm: "POST", htu: `${baseUrl}/auth/token` };
const input = `${b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64url(JSON.stringify(claims))}`;
const jwt = `${input}.${b64url(createHmac("sha256", env("PERKS_REQUEST_JWT_SECRET")).update(input).digest())}`;
const exchange = createClient<paths>({ baseUrl });
exchange.use(recorder);
const token = await exchange.POST("/auth/token", { headers: { Authorization: `Bearer ${jwt}` } });
check("POST", "/auth/token", token);
if (!token.data?.token) throw new Error("no back-end token");

// Credentials and consumer keys (docs/auth.md): what the portal's API
// access and Consumer authentication pages do.
const cred = await perks.POST("/integrations/credentials", { body: { kind: "hmac", description: "TS client rotation" } });
check("POST", "/integrations/credentials", cred, 201);
const credId = must(cred.data, "credential").id;
check("GET", "/integrations/credentials", await perks.GET("/integrations/credentials"));
check("POST", "/integrations/credentials/{id}/disable", await perks.POST("/integrations/credentials/{id}/disable", { params: { path: { id: credId } } }));
check("POST", "/integrations/credentials/{id}/enable", await perks.POST("/integrations/credentials/{id}/enable", { params: { path: { id: credId } } }));
check("POST", "/integrations/credentials/{id}/rotate", await perks.POST("/integrations/credentials/{id}/rotate", { params: { path: { id: credId } }, body: { keepOld: false } }), 201);
check("POST", "/integrations/consumer-keys", await perks.POST("/integrations/consumer-keys", { body: { kid: "ts-client-key", description: "TS client", generateSecret: true } }), 201);
check("GET", "/integrations/consumer-keys", await perks.GET("/integrations/consumer-keys"));
check("POST", "/integrations/consumer-keys/{kid}/disable", await perks.POST("/integrations/consumer-keys/{kid}/disable", { params: { path: { kid: "ts-client-key" } } }));
check("POST", "/integrations/consumer-keys/{kid}/enable", await perks.POST("/integrations/consumer-keys/{kid}/enable", { params: { path: { kid: "ts-client-key" } } }));
check("POST", "/integrations/consumer-keys/{kid}/rotate", await perks.POST("/integrations/consumer-keys/{kid}/rotate", { params: { path: { kid: "ts-client-key" } }, body: { kid: "ts-client-key-2", generateSecret: true } }), 201);
check("PUT", "/integrations/consumer-jwks", await perks.PUT("/integrations/consumer-jwks", { body: { url: "https://keys.acme.example/.well-known/jwks.json", description: "TS client IdP", enabled: false } }));
check("PUT", "/integrations/allowed-origins", await perks.PUT("/integrations/allowed-origins", { body: { allowedOrigins: ["127.0.0.1", "::1", "192.0.2.0/24"] } }));
check("GET", "/integrations/allowed-origins", await perks.GET("/integrations/allowed-origins"));
check("PUT", "/integrations/allowed-origins", await perks.PUT("/integrations/allowed-origins", { body: { allowedOrigins: [] } }));
check("POST", "/integrations/consumer-tokens/verify", await perks.POST("/integrations/consumer-tokens/verify", { body: { token: env("PERKS_CONSUMER_TOKEN") } }));

// Deletions last.
check("POST", "/integrations/users/{externalUserId}/logout", await perks.POST("/integrations/users/{externalUserId}/logout", { params: { path: { externalUserId: user } } }), 204);
check("DELETE", "/integrations/ads/{id}", await perks.DELETE("/integrations/ads/{id}", { params: { path: { id: "ts-ad" } } }), 204);
check("DELETE", "/integrations/gifts/{sku}", await perks.DELETE("/integrations/gifts/{sku}", { params: { path: { sku: gift } } }), 204);
check("DELETE", "/integrations/campaigns/{code}", await perks.DELETE("/integrations/campaigns/{code}", { params: { path: { code: "ts_bonus" } } }), 204);
check("DELETE", "/integrations/earning-rules/{code}", await perks.DELETE("/integrations/earning-rules/{code}", { params: { path: { code: "ts_purchase" } } }), 204);
check("DELETE", "/integrations/webhook-endpoints/{id}", await perks.DELETE("/integrations/webhook-endpoints/{id}", { params: { path: { id: endpointId } } }), 204);
check("DELETE", "/integrations/consumer-jwks", await perks.DELETE("/integrations/consumer-jwks"), 204);
check("POST", "/integrations/users/multidelete", await perks.POST("/integrations/users/multidelete", { body: { externalUserIds: ["ts-nobody"], mode: "anonymise" } }), 202);
check("DELETE", "/integrations/users/{externalUserId}", await perks.DELETE("/integrations/users/{externalUserId}", { params: { path: { externalUserId: user }, query: { mode: "anonymise" } } }), 204);

// A typed error: the problem's code is a union of the operation's codes.
const missing = await perks.GET("/integrations/users/{externalUserId}", { params: { path: { externalUserId: "ts-nobody" } } });
const notFound: "USER_NOT_FOUND" | undefined = missing.response.status === 404 && missing.error?.code === "USER_NOT_FOUND" ? missing.error.code : undefined;
if (notFound !== "USER_NOT_FOUND") throw new Error(`want USER_NOT_FOUND, got ${missing.response.status} ${JSON.stringify(missing.error)}`);
const out = process.env.PERKS_EXAMPLES_OUT;
if (out) writeFileSync(out, JSON.stringify(exchanges));
console.log("done");

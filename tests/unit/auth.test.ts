import { Code, ConnectError } from "@connectrpc/connect";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { Grant } from "../../src/auth/access-list.js";
import { accessRules } from "../../src/auth/access-rules.js";
import { Gate, unadmitted } from "../../src/auth/gate.js";
import { checkPublishTopics, checkReadAll, checkReadTopic, requireRole } from "../../src/auth/policy.js";
import { TokenFileError, parseTokenFile } from "../../src/auth/token-file.js";

const ingestToken = "ingest-0123456789abcdef";
const readerToken = "reader-0123456789abcdef";

const tokenFile = JSON.stringify([
  { name: "ingest", token: ingestToken, roles: ["publish"], topics: ["orders.", "billing."] },
  { name: "reader", token: readerToken, roles: ["read"] },
]);

function refusal(run: () => unknown): ConnectError {
  try {
    run();
  } catch (err) {
    if (err instanceof ConnectError) return err;
    throw err;
  }
  throw new Error("expected a refusal");
}

function fileError(entries: unknown): string {
  try {
    parseTokenFile(typeof entries === "string" ? entries : JSON.stringify(entries));
  } catch (err) {
    if (err instanceof TokenFileError) return err.message;
    throw err;
  }
  throw new Error("expected the file to be refused");
}

const grant = (roles: Grant["roles"], topics: string[] | null = null): Grant => ({ name: "t", roles, topics });

describe("token file", () => {
  it("reads names, roles and topic prefixes, and finds each token's grant", () => {
    const access = parseTokenFile(tokenFile);
    expect(access.size).toBe(2);
    const ingest = access.authenticate(`Bearer ${ingestToken}`);
    expect(ingest.name).toBe("ingest");
    expect([...ingest.roles]).toEqual(["publish"]);
    expect(ingest.topics).toEqual(["orders.", "billing."]);
    expect(access.authenticate(`bearer ${readerToken}`)).toMatchObject({ name: "reader", topics: null });
  });

  it("refuses a missing, malformed or unknown token as unauthenticated", () => {
    const access = parseTokenFile(tokenFile);
    for (const header of [undefined, null, "", `Basic ${ingestToken}`, "Bearer", `Bearer ${ingestToken} extra`, `Bearer ${ingestToken}x`, `Bearer ${ingestToken.slice(1)}`]) {
      expect(refusal(() => access.authenticate(header)).code, String(header)).toBe(Code.Unauthenticated);
    }
  });

  it("names the entry and field of each mistake, and never quotes a token", () => {
    const valid = { name: "a", token: "a".repeat(16), roles: ["read"] };
    expect(fileError("")).toBe("not valid JSON: it ends too early");
    expect(fileError('[\n  {"name": "a"} {}]')).toBe("not valid JSON: Expected ',' or ']' after array element (line 2, column 17)");
    expect(fileError(`[{"name": "x", "token": "${ingestToken}",]`)).toBe("not valid JSON: Expected double-quoted property name (line 1, column 51)");
    expect(fileError({ tokens: [] })).toMatch(/JSON array/);
    expect(fileError([])).toMatch(/no tokens/);
    expect(fileError([valid, "x"])).toMatch(/^entries\[1\]: must be an object/);
    expect(fileError([{ ...valid, topic: ["orders."] }])).toBe('entries[0].topic: unknown field (allowed: name, token, roles, topics)');
    expect(fileError([{ ...valid, name: "has space" }])).toMatch(/^entries\[0\]\.name:/);
    expect(fileError([valid, { ...valid, token: "b".repeat(16) }])).toMatch(/^entries\[1\] \("a"\)\.name: "a" is used by an earlier entry/);
    expect(fileError([{ ...valid, token: "short" }])).toMatch(/^entries\[0\] \("a"\)\.token: must be at least 16 characters/);
    expect(fileError([{ ...valid, token: `${"x".repeat(16)} y` }])).toMatch(/token: may contain only/);
    expect(fileError([{ ...valid, token: 12345678901234567 }])).toMatch(/token: must be a string/);
    expect(fileError([valid, { ...valid, name: "b" }])).toBe('entries[1] ("b").token: is the same as the token of "a"; each token must be unique');
    expect(fileError([{ ...valid, roles: [] }])).toMatch(/roles: must be a non-empty array of "publish", "read"/);
    expect(fileError([{ ...valid, roles: ["write"] }])).toMatch(/roles: "write" is not a role/);
    expect(fileError([{ ...valid, topics: [] }])).toMatch(/topics: must be a non-empty array/);
    expect(fileError([{ ...valid, topics: [""] }])).toMatch(/topics: "" is not a topic prefix/);
    const secret = "s3cret-s3cret-s3cret";
    for (const entries of [[{ name: "a", token: secret, roles: ["nope"] }], `[{"name":"a","token":"${secret}" "roles":[]}]`, `[{"token": ${secret}}]`]) {
      expect(fileError(entries)).not.toContain(secret);
    }
  });
});

describe("access rules", () => {
  const publishOrders = grant(new Set(["publish"]), ["orders."]);
  const readOrders = grant(new Set(["read"]), ["orders."]);
  const readAll = grant(new Set(["read"]));

  it("a token without the role an operation needs is refused with permission_denied", () => {
    expect(refusal(() => requireRole(readAll, "publish", "Publish"))).toMatchObject({ code: Code.PermissionDenied, rawMessage: 'token "t" lacks the "publish" role that Publish needs' });
    expect(() => requireRole(publishOrders, "publish", "Publish")).not.toThrow();
  });

  it("a batch with any topic outside the prefixes is refused whole, naming each index and topic", () => {
    expect(() => checkPublishTopics(publishOrders, [{ topic: "orders.eu" }, { topic: "orders.us" }])).not.toThrow();
    const err = refusal(() => checkPublishTopics(publishOrders, [{ topic: "orders.eu" }, { topic: "billing" }, { topic: "orders" }]));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toBe(
      'token "t" is limited to topics starting with "orders."; request refused, none of its events stored (2 events outside): events[1].topic "billing"; events[2].topic "orders"',
    );
    const stream = refusal(() => checkPublishTopics(publishOrders, [{ topic: "billing" }], "stream message 3", "messages[3]."));
    expect(stream.rawMessage).toContain('stream message 3 refused, none of its events stored (1 event outside): messages[3].events[0].topic "billing"');
    const many = refusal(() => checkPublishTopics(publishOrders, Array.from({ length: 30 }, () => ({ topic: "x" }))));
    expect(many.rawMessage).toMatch(/\(30 events outside\).*events\[19\]\.topic "x"; and 10 more$/);
  });

  it("a topic-limited read token must name an allowed topic, and cannot read Stats", () => {
    expect(() => checkReadTopic(readOrders, "orders.eu", "Events")).not.toThrow();
    expect(refusal(() => checkReadTopic(readOrders, "", "Events")).rawMessage).toMatch(/Events must name one of those topics in its topic filter/);
    expect(refusal(() => checkReadTopic(readOrders, "billing", "Events")).rawMessage).toMatch(/asked for topic "billing"/);
    expect(refusal(() => checkReadTopic(publishOrders, "orders.eu", "Events")).rawMessage).toMatch(/lacks the "read" role/);
    expect(() => checkReadTopic(readAll, "", "Events")).not.toThrow();
    expect(() => checkReadAll(readAll, "Stats")).not.toThrow();
    expect(refusal(() => checkReadAll(readOrders, "Stats"))).toMatchObject({ code: Code.PermissionDenied });
  });
});

describe("the gate", () => {
  const silent = pino({ level: "silent" });
  const on = new Gate(parseTokenFile(tokenFile), silent);
  const off = new Gate(null, silent);
  const admit = (gate: Gate, operation: string, token?: string, topicFilter = "") =>
    gate.admit({ operation, label: operation, authorization: token === undefined ? undefined : `Bearer ${token}`, topicFilter });

  it("refuses an operation without an access rule, with authentication on or off", () => {
    for (const gate of [on, off]) {
      const err = refusal(() => admit(gate, "GET /not-in-the-table", ingestToken));
      expect(err.code).toBe(Code.PermissionDenied);
      expect(err.rawMessage).toBe("GET /not-in-the-table has no access rule");
    }
  });

  it("lets anyone through to open operations, and everyone when authentication is off", () => {
    expect(admit(on, "GET /health").name).toBeUndefined();
    expect(admit(on, "grpc.health.v1.Health/Watch").name).toBeUndefined();
    expect(admit(off, "POST /publish").name).toBeUndefined();
    expect(() => admit(off, "POST /publish").authorizePublish([{ topic: "anything" }])).not.toThrow();
  });

  it("asks for a token, the rule's role, and for reads a topic filter within the token's topics", () => {
    expect(refusal(() => admit(on, "POST /publish")).code).toBe(Code.Unauthenticated);
    expect(refusal(() => admit(on, "POST /publish", readerToken)).code).toBe(Code.PermissionDenied);
    expect(admit(on, "aggregator.v1.AggregatorService/Stats", readerToken).name).toBe("reader");
    expect(refusal(() => admit(on, "GET /events", ingestToken, "orders.eu")).rawMessage).toMatch(/lacks the "read" role/);
  });

  it("hands the pipeline a caller that checks each decoded topic of a topic-limited token", () => {
    const caller = admit(on, "aggregator.v1.AggregatorService/Publish", ingestToken);
    expect(caller.name).toBe("ingest");
    expect(() => caller.authorizePublish([{ topic: "orders.eu" }, undefined, { topic: "billing.us" }])).not.toThrow();
    expect(refusal(() => caller.authorizePublish([{ topic: "orders.eu" }, { topic: "audit" }])).rawMessage).toContain('events[1].topic "audit"');
  });

  it("refuses every publish of a call that never passed the gate", () => {
    expect(refusal(() => unadmitted.authorizePublish([])).code).toBe(Code.PermissionDenied);
  });

  it("has a rule for every RPC of every service the server registers", async () => {
    const { AggregatorService } = await import("../../gen/aggregator/v1/aggregator_pb.js");
    const { Health } = await import("../../gen/grpc/health/v1/health_pb.js");
    for (const service of [AggregatorService, Health]) {
      for (const method of service.methods) expect(accessRules.has(`${service.typeName}/${method.name}`), method.name).toBe(true);
    }
  });

  it("has a rule for every REST route", async () => {
    const { restRoutes } = await import("../../src/rest/routes.js");
    for (const route of restRoutes({} as never)) expect(accessRules.has(`${route.method} ${route.path}`), route.path).toBe(true);
  });
});

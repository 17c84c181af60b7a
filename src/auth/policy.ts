import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { quoted } from "../answers/quote.js";
import type { Grant, Role } from "./access-list.js";

/** At most this many refused topics are spelled out, so a 10,000-event mistake stays readable. */
const maxListedTopics = 20;

/** Whether a grant covers one topic: every topic, or one that starts with an allowed prefix. */
function allowsTopic(grant: Grant, topic: string): boolean {
  return grant.topics === null || grant.topics.some((prefix) => topic.startsWith(prefix));
}

function limitation(grant: Grant): string {
  return `token "${grant.name}" is limited to topics starting with ${grant.topics!.map((p) => JSON.stringify(p)).join(", ")}`;
}

/** Refuses with `permission_denied` unless the grant has the role `operation` needs. */
export function requireRole(grant: Grant, role: Role, operation: string): void {
  if (!grant.roles.has(role)) {
    throw new ConnectError(`token "${grant.name}" lacks the "${role}" role that ${operation} needs`, Code.PermissionDenied);
  }
}

/**
 * Refuses a whole batch with `permission_denied` when any event's topic is
 * outside the grant, naming each such index and topic. `unit` says what is
 * refused ("request", or "stream message 3" with `indexPrefix` "messages[3].").
 */
export function checkPublishTopics(grant: Grant, events: readonly ({ topic: string } | undefined)[], unit = "request", indexPrefix = ""): void {
  if (grant.topics === null) return;
  const refused: string[] = [];
  let count = 0;
  for (let i = 0; i < events.length; i++) {
    const event = events[i];
    if (event === undefined || allowsTopic(grant, event.topic)) continue;
    if (++count <= maxListedTopics) refused.push(`${indexPrefix}events[${i}].topic ${quoted(event.topic)}`);
  }
  if (count === 0) return;
  const more = count > maxListedTopics ? `; and ${count - maxListedTopics} more` : "";
  throw new ConnectError(
    `${limitation(grant)}; ${unit} refused, none of its events stored (${count} event${count === 1 ? "" : "s"} outside): ${refused.join("; ")}${more}`,
    Code.PermissionDenied,
  );
}

/**
 * Reading events: a topic-limited grant must name an allowed topic in the
 * query, since a query without one would return other topics' events.
 */
export function checkReadTopic(grant: Grant, topic: string, operation: string): void {
  requireRole(grant, "read", operation);
  if (grant.topics === null) return;
  if (topic === "") {
    throw new ConnectError(`${limitation(grant)}; ${operation} must name one of those topics in its topic filter`, Code.PermissionDenied);
  }
  if (!allowsTopic(grant, topic)) throw new ConnectError(`${limitation(grant)}; ${operation} asked for topic ${quoted(topic)}`, Code.PermissionDenied);
}

/**
 * Whether a grant may read what a filter selects: an exact topic within its
 * topics, or a topic prefix that itself starts with one of its prefixes (so
 * every topic it selects does too). No topic filter selects every topic.
 */
export function allowsFilter(grant: Grant, filter: { topic?: string; topicPrefix?: string }): boolean {
  if (grant.topics === null) return true;
  if (filter.topic !== undefined) return allowsTopic(grant, filter.topic);
  if (filter.topicPrefix !== undefined) return allowsTopic(grant, filter.topicPrefix);
  return false;
}

/** Refuses with `permission_denied` unless allowsFilter; the read role is checked at the gate. */
export function checkReadFilter(grant: Grant, filter: { topic?: string; topicPrefix?: string }, operation: string): void {
  if (allowsFilter(grant, filter)) return;
  const asked =
    filter.topic !== undefined ? `topic ${quoted(filter.topic)}` : filter.topicPrefix !== undefined ? `topic_prefix ${quoted(filter.topicPrefix)}` : "every topic (no topic filter)";
  throw new ConnectError(`${limitation(grant)}; ${operation} asked for ${asked}`, Code.PermissionDenied);
}

/**
 * A durable consumer's stored filter against the grant: refused without
 * naming that filter, since it may name another team's topics.
 */
export function checkConsumerFilter(grant: Grant, name: string, filter: { topic?: string; topicPrefix?: string }, operation: string): void {
  if (allowsFilter(grant, filter)) return;
  throw new ConnectError(`${limitation(grant)}; consumer ${quoted(name)} follows topics outside them, so ${operation} may not use it`, Code.PermissionDenied);
}

/** Statistics cover every topic (names and counts), so they need a read grant that is not topic-limited. */
export function checkReadAll(grant: Grant, operation: string): void {
  requireRole(grant, "read", operation);
  if (grant.topics !== null) throw new ConnectError(`${limitation(grant)}; ${operation} covers every topic and needs a token without a topic limit`, Code.PermissionDenied);
}

/**
 * One log line per refused request, naming the token (never the token
 * itself) so operators can see who was refused and why; answers the refusal
 * as the ConnectError to send.
 */
export function logRefusal(log: Logger, err: unknown, grant: Grant | undefined, operation: string): ConnectError {
  const refusal = ConnectError.from(err);
  log.info({ operation, token: grant?.name, code: codeToString(refusal.code), reason: refusal.rawMessage }, "request refused");
  return refusal;
}

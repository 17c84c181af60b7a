import type { EventFilter, StoredEventRow } from "../store/types.js";

/** What a subscription follows: the filters of SubscribeRequest, in store form (since as stored timestamp text). */
export type SubscriptionFilter = Pick<EventFilter, "topic" | "topicPrefix" | "source" | "since">;

/**
 * Whether a committed event matches, for events served from memory
 * (commit-feed.ts). The database applies the same rules in SQL
 * (store/sqlite/reader.ts): exact topic, topic prefix by String.startsWith,
 * exact source, timestamp text at or after since (the stored form is
 * fixed-width, so text order is time order).
 */
export function matches(filter: SubscriptionFilter, row: StoredEventRow): boolean {
  return (
    (filter.topic === undefined || row.topic === filter.topic) &&
    (filter.topicPrefix === undefined || row.topic.startsWith(filter.topicPrefix)) &&
    (filter.source === undefined || row.source === filter.source) &&
    (filter.since === undefined || row.ts >= filter.since)
  );
}

/** Whether two filters select the same events, for a consumer subscribed again. */
export function sameFilter(a: SubscriptionFilter, b: SubscriptionFilter): boolean {
  return a.topic === b.topic && a.topicPrefix === b.topicPrefix && a.source === b.source && a.since === b.since;
}

/** The filter as a person reads it, for messages. */
export function describeFilter(filter: SubscriptionFilter): string {
  const parts: string[] = [];
  if (filter.topic !== undefined) parts.push(`topic ${JSON.stringify(filter.topic)}`);
  if (filter.topicPrefix !== undefined) parts.push(`topic_prefix ${JSON.stringify(filter.topicPrefix)}`);
  if (filter.source !== undefined) parts.push(`source ${JSON.stringify(filter.source)}`);
  if (filter.since !== undefined) parts.push(`since ${filter.since}`);
  return parts.length === 0 ? "every event" : parts.join(", ");
}

/**
 * Who a request comes from, as the gate admitted it (gate.ts): handed by the
 * front door to the publish pipeline, which asks it about each decoded batch.
 */
export interface Caller {
  /** The token's name for logs and messages; undefined when authentication is off or the operation is open. */
  readonly name: string | undefined;
  /**
   * Refuses the whole batch with `permission_denied` when any event's topic
   * is outside what the caller may publish to. `unit` says what is refused
   * ("request", or "stream message 3" with `indexPrefix` "messages[3].").
   */
  authorizePublish(events: readonly ({ topic: string } | undefined)[], unit?: string, indexPrefix?: string): void;

  /**
   * Refuses with `permission_denied` unless the caller may read every event
   * the filter selects: a topic-limited token must name a topic or topic
   * prefix within its topics (subscriptions and durable consumers).
   */
  authorizeRead(filter: ReadFilter, operation: string): void;
  /** authorizeRead for a durable consumer's stored filter: the refusal names the consumer, never its filter. */
  authorizeConsumer(name: string, filter: ReadFilter, operation: string): void;
  /** Whether authorizeRead would pass, for listings that show only what the caller may read. */
  mayRead(filter: ReadFilter): boolean;
}

/** The part of a filter that decides which topics a read covers. */
export interface ReadFilter {
  topic?: string;
  topicPrefix?: string;
}

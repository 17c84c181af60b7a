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
}

import { createContextKey, type ContextValues } from "@connectrpc/connect";

/** Aborted when the connection carrying a call reaches its maximum age; never, unless the front door sets it. */
const connectionGoingAwayKey = createContextKey<AbortSignal>(new AbortController().signal, { description: "tally connection going away" });

/** Sets the signal long-lived calls end on: their connection's going away (http/connection-age.ts). */
export function withConnectionGoingAway(values: ContextValues, signal: AbortSignal): ContextValues {
  return values.set(connectionGoingAwayKey, signal);
}

/** The signal a long-lived call (health Watch, Subscribe) ends on when its connection reaches its age. */
export function connectionGoingAwayIn(values: ContextValues): AbortSignal {
  return values.get(connectionGoingAwayKey);
}

import { createContextKey, type ContextValues, type Interceptor } from "@connectrpc/connect";
import type { Caller } from "./caller.js";
import { unadmitted, type Gate } from "./gate.js";

/** The caller the gate admitted, set on every RPC before its handler runs. */
const callerKey = createContextKey<Caller>(unadmitted, { description: "tally caller" });

/** The caller of an RPC, from its context values (a handler's `ctx.values`, an interceptor's `req.contextValues`). */
export function callerOf(values: ContextValues): Caller {
  return values.get(callerKey);
}

/**
 * Puts every RPC through the gate before its handler runs. The token travels
 * in the `authorization` header, which is also where gRPC metadata puts it;
 * a unary request's topic filter is its `topic` field. A refused unary call
 * never reaches its handler, so it stores nothing; a stream is refused before
 * its first message is read.
 */
export function gateInterceptor(gate: Gate): Interceptor {
  return (next) => (req) => {
    const message = req.stream ? undefined : (req.message as { topic?: unknown });
    const caller = gate.admit({
      operation: `${req.service.typeName}/${req.method.name}`,
      label: req.method.name,
      authorization: req.header.get("authorization"),
      topicFilter: typeof message?.topic === "string" ? message.topic : "",
    });
    req.contextValues.set(callerKey, caller);
    return next(req);
  };
}

import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { AccessList, Grant } from "./access-list.js";
import { accessRules } from "./access-rules.js";
import type { Caller } from "./caller.js";
import { allowsFilter, checkConsumerFilter, checkPublishTopics, checkReadAll, checkReadFilter, checkReadTopic, logRefusal, requireRole } from "./policy.js";

/** One request at the gate: which operation, by whom, and (for reads) on which topic. */
export interface Admission {
  /** The operation's name in the rule table (access-rules.ts): "package.Service/Method" or "METHOD /path". */
  operation: string;
  /** How messages and logs name it: the method name for RPCs ("Publish"), "METHOD /path" for routes. */
  label: string;
  /** The `authorization` header as sent, if any. */
  authorization: string | null | undefined;
  /** The request's topic filter, for `read-topic` operations; "" when it has none. */
  topicFilter?: string;
}

/** The caller when nothing is checked: authentication off, or an open operation. */
const anyone: Caller = { name: undefined, authorizePublish: () => undefined, authorizeRead: () => undefined, authorizeConsumer: () => undefined, mayRead: () => true };

/**
 * The one authorization decision. Every front door asks it before it does
 * anything else (the Connect interceptor, the plain HTTP router, the lean
 * gRPC path), and every refusal is logged here once, naming the token.
 * Fail-closed: an operation without a rule is refused, authentication on or
 * off; with authentication on, every operation but the open ones needs a
 * known token with the rule's role.
 */
export class Gate {
  constructor(
    private readonly access: AccessList | null,
    private readonly log: Logger,
  ) {}

  /** Whether requests must carry a token; a 401 then tells clients which scheme to use. */
  get authenticates(): boolean {
    return this.access !== null;
  }

  /** The caller, admitted to the operation; throws `unauthenticated` or `permission_denied` otherwise. */
  admit(request: Admission): Caller {
    const { operation, label } = request;
    let grant: Grant | undefined;
    try {
      const rule = accessRules.get(operation);
      if (rule === undefined) throw new ConnectError(`${operation} has no access rule`, Code.PermissionDenied);
      if (rule === "open" || this.access === null) return anyone;
      grant = this.access.authenticate(request.authorization);
      if (rule === "publish") requireRole(grant, "publish", label);
      else if (rule === "read-topic") checkReadTopic(grant, request.topicFilter ?? "", label);
      else if (rule === "read-filter") requireRole(grant, "read", label);
      else checkReadAll(grant, label);
      return callerFor(grant, label, this.log);
    } catch (err) {
      throw logRefusal(this.log, err, grant, label);
    }
  }
}

function callerFor(grant: Grant, label: string, log: Logger): Caller {
  if (grant.topics === null) return { ...anyone, name: grant.name };
  return {
    name: grant.name,
    mayRead: (filter) => allowsFilter(grant, filter),
    authorizeRead(filter, operation) {
      try {
        checkReadFilter(grant, filter, operation);
      } catch (err) {
        throw logRefusal(log, err, grant, label);
      }
    },
    authorizeConsumer(name, filter, operation) {
      try {
        checkConsumerFilter(grant, name, filter, operation);
      } catch (err) {
        throw logRefusal(log, err, grant, label);
      }
    },
    authorizePublish(events, unit, indexPrefix) {
      try {
        checkPublishTopics(grant, events, unit, indexPrefix);
      } catch (err) {
        throw logRefusal(log, err, grant, label);
      }
    },
  };
}

/**
 * The caller of a call the gate never saw: refuses everything, so a front
 * door wired without the gate fails closed instead of publishing unchecked.
 */
export const unadmitted: Caller = {
  name: undefined,
  authorizePublish: refuseUnadmitted,
  authorizeRead: refuseUnadmitted,
  authorizeConsumer: refuseUnadmitted,
  mayRead: () => false,
};

function refuseUnadmitted(): never {
  throw new ConnectError("this call was not admitted by the access gate", Code.PermissionDenied);
}

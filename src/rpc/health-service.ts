import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { AggregatorService } from "../../gen/aggregator/v1/aggregator_pb.js";
import { quoted } from "../answers/quote.js";
import { ServingStatus, type HealthState } from "../read/health-state.js";
import {
  Health,
  HealthCheckResponseSchema,
  HealthListResponseSchema,
  type HealthCheckRequest,
  type HealthCheckResponse,
} from "../../gen/grpc/health/v1/health_pb.js";
import { connectionGoingAwayIn } from "./going-away.js";

/** Names a health check may ask about: "" means the server as a whole. */
const knownServices = ["", AggregatorService.typeName];


function response(status: ServingStatus): HealthCheckResponse {
  return create(HealthCheckResponseSchema, { status });
}

/** The standard grpc.health.v1.Health service, so load balancers and grpc_health_probe work unchanged. */
export function healthRoutes(state: HealthState) {
  return (router: ConnectRouter) =>
    router.service(Health, {
      check(req: HealthCheckRequest) {
        if (!knownServices.includes(req.service)) throw new ConnectError(`unknown service ${quoted(req.service)}`, Code.NotFound);
        return response(state.status);
      },
      list() {
        return create(HealthListResponseSchema, {
          statuses: Object.fromEntries(knownServices.map((name) => [name, response(state.status)])),
        });
      },
      // A watch lasts as long as its connection: when that reaches its age
      // the watch ends with `unavailable`, and the client, which watches again
      // on such an end, does so on a new connection.
      async *watch(req: HealthCheckRequest, ctx: HandlerContext) {
        const goingAway = connectionGoingAwayIn(ctx.values);
        const ended = () => ctx.signal.aborted || goingAway.aborted;
        // One promise for the whole watch, not one pair of listeners per change.
        const ending = Promise.race([aborted(ctx.signal), aborted(goingAway)]);
        if (!knownServices.includes(req.service)) {
          yield response(ServingStatus.SERVICE_UNKNOWN);
          await ending;
          throwIfGoingAway(goingAway);
          return;
        }
        const changes: ServingStatus[] = [];
        let wake: (() => void) | undefined;
        const unsubscribe = state.subscribe((status) => {
          changes.push(status);
          wake?.();
        });
        try {
          yield response(state.status);
          while (!ended()) {
            if (changes.length === 0) {
              await Promise.race([new Promise<void>((resolve) => (wake = resolve)), ending]);
              wake = undefined;
            }
            while (changes.length > 0) yield response(changes.shift()!);
          }
          throwIfGoingAway(goingAway);
        } finally {
          unsubscribe();
        }
      },
    });
}

function throwIfGoingAway(goingAway: AbortSignal): void {
  if (goingAway.aborted) throw new ConnectError("the connection has reached its maximum age: watch again on a new connection", Code.Unavailable);
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}

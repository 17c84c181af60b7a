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
      async *watch(req: HealthCheckRequest, ctx: HandlerContext) {
        if (!knownServices.includes(req.service)) {
          yield response(ServingStatus.SERVICE_UNKNOWN);
          await aborted(ctx.signal);
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
          while (!ctx.signal.aborted) {
            if (changes.length === 0) {
              await Promise.race([new Promise<void>((resolve) => (wake = resolve)), aborted(ctx.signal)]);
              wake = undefined;
            }
            while (changes.length > 0) yield response(changes.shift()!);
          }
        } finally {
          unsubscribe();
        }
      },
    });
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}

import { HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";

export { ServingStatus };

/** Whether the server takes work: SERVING until shutdown begins. The health RPC and GET /health read it; Watch callers hear every change. */
export class HealthState {
  private current: ServingStatus = ServingStatus.SERVING;
  private readonly listeners = new Set<(status: ServingStatus) => void>();

  get status(): ServingStatus {
    return this.current;
  }

  set(status: ServingStatus): void {
    if (status === this.current) return;
    this.current = status;
    for (const listener of this.listeners) listener(status);
  }

  /** Calls `listener` on each change until the returned function is called. */
  subscribe(listener: (status: ServingStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

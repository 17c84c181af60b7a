import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { AggregatorService } from "../../gen/aggregator/v1/aggregator_pb.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";

/** connect-node speaking gRPC over HTTP/2 cleartext. */
export function grpcClient(url: string): Client<typeof AggregatorService> {
  return createClient(AggregatorService, createGrpcTransport({ baseUrl: url }));
}

/** connect-node speaking the Connect protocol with JSON over HTTP/1.1, as browsers and curl do. */
export function connectJsonClient(url: string): Client<typeof AggregatorService> {
  return createClient(AggregatorService, createConnectTransport({ baseUrl: url, httpVersion: "1.1", useBinaryFormat: false }));
}

/** connect-node speaking the Connect protocol with protobuf binary over HTTP/2. */
export function connectBinaryClient(url: string): Client<typeof AggregatorService> {
  return createClient(AggregatorService, createConnectTransport({ baseUrl: url, httpVersion: "2", useBinaryFormat: true }));
}

export function healthClient(url: string): Client<typeof Health> {
  return createClient(Health, createGrpcTransport({ baseUrl: url }));
}

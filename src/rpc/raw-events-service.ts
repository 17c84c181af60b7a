import { clone, createFileRegistry, type DescService } from "@bufbuild/protobuf";
import { FieldDescriptorProto_Type, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import type { IncomingHttpHeaders } from "node:http";
import { AggregatorService, file_aggregator_v1_aggregator } from "../../gen/aggregator/v1/aggregator_pb.js";
import { decodeWireEvents } from "../codec/wire-events.js";
import type { PublishPipeline } from "../ingest/pipeline.js";
import { publishHandlers } from "./aggregator-service.js";

/**
 * The binary fast path for Publish and PublishStream.
 *
 * Decoding events by reflection was the main thread's largest cost. On the
 * wire, a message field and a bytes field look the same, so a copy of the
 * service whose publish messages declare `repeated bytes events` lets Connect
 * hand over each event's raw bytes, which codec/wire-events.ts decodes
 * directly. Only binary requests (gRPC, gRPC-Web, Connect proto) take this
 * path; JSON keeps the standard service, and both end in the same pipeline.
 */

/** The service as declared, except that the publish messages carry each Event as bytes. */
function rawEventsService(): DescService {
  const file = clone(FileDescriptorProtoSchema, file_aggregator_v1_aggregator.proto);
  for (const message of file.messageType) {
    if (message.name !== "PublishRequest" && message.name !== "PublishStreamRequest") continue;
    const events = message.field.find((f) => f.name === "events")!;
    events.type = FieldDescriptorProto_Type.BYTES;
    events.typeName = "";
  }
  const registry = createFileRegistry(file, (name) => file_aggregator_v1_aggregator.dependencies.find((d) => d.name === name.replace(/\.proto$/, "")));
  return registry.getService(AggregatorService.typeName)!;
}

const service = rawEventsService();
const paths = new Set(service.methods.filter((m) => m.localName === "publish" || m.localName === "publishStream").map((m) => `/${service.typeName}/${m.name}`));

/** Content types whose codec is protobuf binary. */
const binaryContentType = /^application\/(grpc(-web)?(-text)?(\+proto)?|proto|connect\+proto)\s*(;|$)/i;

/** Whether a request is a binary Publish or PublishStream, for the fast path. */
export function isBinaryPublish(path: string | undefined, headers: IncomingHttpHeaders): boolean {
  return path !== undefined && paths.has(path) && binaryContentType.test(headers["content-type"] ?? "");
}

/** The request message of Publish as this path reads it: each event's raw bytes. */
export const rawPublishRequest = service.methods.find((m) => m.localName === "publish")!.input;

/** Routes of the fast path: Publish and PublishStream only, events as raw bytes. */
export function rawPublishRoutes(pipeline: PublishPipeline) {
  const handlers = publishHandlers(pipeline, (raw: Uint8Array[]) => decodeWireEvents(raw, pipeline.maxBatch));
  return (router: ConnectRouter) => {
    for (const method of service.methods) {
      if (method.localName === "publish") router.rpc(method, handlers.publish as never);
      if (method.localName === "publishStream") router.rpc(method, handlers.publishStream as never);
    }
  };
}

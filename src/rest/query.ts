import { Code, ConnectError } from "@connectrpc/connect";
import { quoted } from "../answers/quote.js";
import { parseRfc3339, timestampToText } from "../codec/timestamps.js";
import type { PageQuery } from "../read/reads.js";

/** GET /events's query string as a page query: ?topic=&source=&after=&limit=&since=&until= (limit 0 or absent: the default). */
export function eventQuery(params: URLSearchParams): PageQuery {
  const query: PageQuery = { afterSeq: integerParam(params, "after"), limit: integerParam(params, "limit") };
  const topic = params.get("topic");
  const source = params.get("source");
  if (topic) query.topic = topic;
  if (source) query.source = source;
  const since = timeParam(params, "since");
  const until = timeParam(params, "until");
  if (since !== undefined) query.since = since;
  if (until !== undefined) query.until = until;
  return query;
}

/** A non-negative integer query parameter; 0 when absent or empty. */
export function integerParam(params: URLSearchParams, name: string): number {
  const text = params.get(name);
  if (text === null || text === "") return 0;
  if (!/^\d{1,15}$/.test(text)) throw new ConnectError(`query parameter ${name} must be a non-negative integer, got ${quoted(text)}`, Code.InvalidArgument);
  return Number(text);
}

function timeParam(params: URLSearchParams, name: string): string | undefined {
  const text = params.get(name);
  if (text === null || text === "") return undefined;
  const ts = parseRfc3339(text);
  if (ts === undefined) throw new ConnectError(`query parameter ${name} must be an RFC 3339 timestamp, got ${quoted(text)}`, Code.InvalidArgument);
  return timestampToText(ts);
}

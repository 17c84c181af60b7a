import { afterAll, describe } from "vitest";
import { markdownTable, reported } from "./harness.js";
import { idleConnectionFlood, slowBodies } from "./cases/connections.js";
import { headerFloods, rapidReset, settingsAndPingFlood } from "./cases/http2.js";
import { expensiveQueries, manyTinyUnaryCalls } from "./cases/load.js";
import { pipelinedRequestsNeverRead, readersThatNeverRead } from "./cases/readers.js";
import { compressedBombs, crossSiteRequests, hugeValuesInRefusals, inexactNumbers, parserBombs } from "./cases/requests.js";
import { halfSentUnaryCalls, manyLongLivedStreams, streamsThatWait } from "./cases/streams.js";

/**
 * The abuse suite (tests/abuse/README.md). One file, so that its cases run
 * one after another and each measures its own attack only.
 */
describe("bounded under abuse", () => {
  afterAll(() => {
    if (reported.length > 0) console.log(`\n${markdownTable(reported)}\n`);
  });
  readersThatNeverRead();
  streamsThatWait();
  manyLongLivedStreams();
  rapidReset();
  idleConnectionFlood();
  expensiveQueries();
  crossSiteRequests();
  hugeValuesInRefusals();
  inexactNumbers();
  slowBodies();
  halfSentUnaryCalls();
  settingsAndPingFlood();
  headerFloods();
  compressedBombs();
  parserBombs();
  manyTinyUnaryCalls();
  pipelinedRequestsNeverRead();
});

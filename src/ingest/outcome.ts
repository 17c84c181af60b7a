import { AppendStatus, type AppendResult } from "../store/types.js";

/** What one committed batch came to: each event's outcome, and how many of each. */
export interface BatchOutcome extends AppendResult {
  accepted: number;
  duplicates: number;
  conflicts: number;
}

/** Counts each outcome of a committed batch. */
export function summarize(result: AppendResult): BatchOutcome {
  let accepted = 0;
  let duplicates = 0;
  let conflicts = 0;
  for (const status of result.statuses) {
    if (status === AppendStatus.accepted) accepted++;
    else if (status === AppendStatus.duplicate) duplicates++;
    else conflicts++;
  }
  return { statuses: result.statuses, seqs: result.seqs, accepted, duplicates, conflicts };
}

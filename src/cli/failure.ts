import { ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";

/** Exit codes, so scripts can tell a refused call from a mistake in what they asked. */
export const exitCode = { ok: 0, failed: 1, badUsage: 2 } as const;

/** The command line itself is wrong (a flag, a value, a pair that excludes each other): exit 2. */
export class UsageError extends Error {}

/** The events given to publish are wrong, found before or instead of sending them: exit 2. */
export class InputError extends Error {}

/** What to print for a failure, and the exit code it means. */
export function describeFailure(err: unknown): { text: string; code: number } {
  if (err instanceof UsageError || err instanceof InputError) return { text: err.message, code: exitCode.badUsage };
  if (err instanceof ExplainedFailure) return { text: err.message, code: err.code };
  if (err instanceof ConnectError) return { text: connectErrorText(err), code: exitCode.failed };
  return { text: err instanceof Error ? err.message : String(err), code: exitCode.failed };
}

/** `permission_denied: token "x" lacks ...`: the Connect code as scripts and docs spell it, then the server's message. */
export function connectErrorText(err: ConnectError): string {
  const text = `${codeToString(err.code)}: ${err.rawMessage}`;
  // Node's TLS errors say what is wrong with the certificate, not what to do about it.
  return /certificate/i.test(err.rawMessage) ? `${text} (trust the server's certificate with --ca <file>)` : text;
}

/** A failure already put into words for the person (several lines, perhaps), with its exit code. */
export class ExplainedFailure extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

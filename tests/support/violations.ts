import { ValidationError, type Violation } from "../../src/codec/violations.js";

/** The violations `run` is refused with; fails the test if it is not refused with a ValidationError. */
export function violationsOf(run: () => unknown): Violation[] {
  try {
    run();
  } catch (err) {
    if (err instanceof ValidationError) return err.violations;
    throw err;
  }
  throw new Error("expected a ValidationError");
}

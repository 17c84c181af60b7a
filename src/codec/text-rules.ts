/**
 * The one rule every string of an event follows, whichever field holds it
 * (topic, event_id, source, a payload key or string) and whichever protocol
 * brought it: it must be valid Unicode text, the only text UTF-8 can carry.
 * Protobuf strings are UTF-8, and a stored event must read back the same over
 * every protocol, so anything else is refused, never repaired: a repair
 * (U+FFFD for what cannot be decoded) would store something the client did
 * not send, and two different sends could become one event.
 *
 * It reaches a decoder in two forms, refused alike and in the same words:
 * - a lone UTF-16 surrogate, which JSON can spell ("\ud800") and JSON.parse
 *   lets through;
 * - bytes that are not UTF-8, in protobuf strings and JSON bodies alike.
 *   Decoders turn each such byte into a lone surrogate (utf8-text.ts), so the
 *   test below finds it in the field or key it is in.
 *
 * NUL and other control characters are not this rule's business. Identifiers
 * refuse them (validate.ts: nobody can type or print them in a topic or id);
 * payload strings and keys keep them: JSON ("\u0000") and protobuf both carry
 * them, every protocol reads them back unchanged, and canonical JSON writes
 * them escaped, so no raw control character ever reaches the store.
 */

/** Whether text is valid Unicode, so UTF-8 can carry it: no lone surrogate. */
export function isValidText(text: string): boolean {
  // Native, and constant time for strings V8 keeps one byte per character (no surrogate fits in one).
  return text.isWellFormed();
}

/** What a refusal says of a field whose text breaks the rule, after the field's name. */
export const invalidTextDescription = "is not valid UTF-8 text (it holds an unpaired surrogate, or bytes that are not UTF-8)";

/** The same for a payload string or key, which payload-rules.ts words as "has a string that …". */
export const invalidTextWhy = "that is not valid UTF-8 text (it holds an unpaired surrogate, or bytes that are not UTF-8)";

/** How much of a refused value an answer or a log line repeats: enough to recognise it, too little to carry it. */
export const quotedPrefixChars = 64;

/**
 * A value a refusal names, as a short JSON string: at most quotedPrefixChars
 * characters of it, escaped (control characters, quotes, lone surrogates),
 * and "… (N characters)" when cut. Whatever a client sends, the answer, its
 * gRPC trailer and the log line stay small and printable.
 */
export function quoted(value: string, max = quotedPrefixChars): string {
  if (value.length <= max) return escape(value);
  // Never cut a surrogate pair in half: the prefix would end in a lone surrogate.
  let end = max;
  const last = value.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${escape(value.slice(0, end))}… (${value.length} characters)`;
}

function escape(text: string): string {
  // JSON.stringify escapes quotes, backslashes, control characters and (since ES2019) lone surrogates.
  return JSON.stringify(text);
}

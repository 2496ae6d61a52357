/** The most characters of a client's value an error message or log line repeats. */
export const MAX_QUOTED_CHARS = 64;

/**
 * A client-supplied string as error messages and logs quote it: JSON-quoted, cut to its first
 * MAX_QUOTED_CHARS characters with an ellipsis and the full length. Without the bound, a
 * 100,000-character value becomes a 100 KB status message that common clients refuse as
 * oversized metadata, and the caller sees RESOURCE_EXHAUSTED instead of the INVALID_ARGUMENT it earned.
 */
export function quoteInput(value: string): string {
  if (value.length <= MAX_QUOTED_CHARS) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, MAX_QUOTED_CHARS))}… (${value.length} characters)`;
}

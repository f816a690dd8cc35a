/**
 * `objectJson` (an object's JSON text, as JSON.stringify writes it) with one more member, `name`,
 * whose value is the JSON text `valueJson`, added as it is: a large value already serialised (a
 * stored result) is spliced in rather than parsed and serialised again. `valueJson` must be one
 * JSON value; anything else corrupts the document it is spliced into.
 */
export function withJsonMember(objectJson: string, name: string, valueJson: string): string {
  const separator = objectJson === '{}' ? '' : ',';
  return `${objectJson.slice(0, -1)}${separator}${JSON.stringify(name)}:${valueJson}}`;
}

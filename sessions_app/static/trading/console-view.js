// What the console's modules share to show things: an element, a number, an error. It imports no
// client module, so the modules' pure parts stay testable under Node (tests/js).

/** A price or a size as the console writes it: grouped, as many decimals as it has (up to 8). */
export const fmt = (n) => (n ?? 0).toLocaleString(undefined, { maximumFractionDigits: 8 });

export function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

/** The standard `error` (a ProtocolError: code and message) or any other failure, in one line. */
export function errorText(error) {
  return error?.serverMessage ? `${error.code}: ${error.serverMessage.message ?? ""}` : String(error?.message ?? error);
}

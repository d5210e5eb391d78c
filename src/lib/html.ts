/** Escapes text for HTML element content and quoted attribute values. */
export const escapeHtml = (raw: string) =>
  raw.replace(/[&<>"']/g, (char) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[char]!);

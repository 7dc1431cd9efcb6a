/** Secrets out of text that may be printed or stored: the password (and user) of a URL. */

/** `redis://:secret@host:6379/0` → `redis://***@host:6379/0`; anything that is not a URL comes back unchanged. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username === '' && u.password === '') return url;
    u.username = '***';
    u.password = '';
    return u.href;
  } catch {
    return url;
  }
}

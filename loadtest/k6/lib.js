// Shared by the k6 scripts: the target (loopback only), tokens, and a multipart body.
import { fail } from 'k6';

const LOOPBACK = /^https?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(\/|$)/;

/** `url` when it points at this machine; the run stops otherwise (never load someone else). */
export function loopback(url) {
  if (!LOOPBACK.test(url)) {
    fail(`refusing a non-loopback target: ${url}`);
  }
  return url.replace(/\/+$/, '');
}

export const API = loopback(__ENV.API || 'http://127.0.0.1:8080');

// One bearer token per virtual user id, minted by `python -m loadtest` (the per-user rate
// limits of the upload endpoints would otherwise throttle a flood from one user).
const TOKENS = JSON.parse(open(__ENV.TOKENS_FILE));

export function token(i) {
  return TOKENS[i % TOKENS.length];
}

export function jsonHeaders(i, extra) {
  return Object.assign(
    { Authorization: `Bearer ${token(i)}`, 'Content-Type': 'application/json' },
    extra || {},
  );
}

function utf8(text) {
  const bytes = unescape(encodeURIComponent(text));
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes.charCodeAt(i);
  return out;
}

/**
 * A multipart/form-data body for a pre-signed POST: the policy's fields in order, then the
 * file, last (S3 ignores fields after the file). Built by hand so the order is certain.
 */
export function multipart(fields, file, fileName, contentType) {
  const boundary = `----tritontube${Math.random().toString(16).slice(2)}`;
  let head = '';
  for (const name of Object.keys(fields)) {
    head += `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${fields[name]}\r\n`;
  }
  head += `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${fileName}"\r\n`;
  head += `Content-Type: ${contentType}\r\n\r\n`;
  const h = utf8(head);
  const t = utf8(`\r\n--${boundary}--\r\n`);
  const f = new Uint8Array(file);
  const body = new Uint8Array(h.length + f.length + t.length);
  body.set(h, 0);
  body.set(f, h.length);
  body.set(t, h.length + f.length);
  return { body: body.buffer, contentType: `multipart/form-data; boundary=${boundary}` };
}

/** uploadURL -> POST the clip to the object store -> completeUpload; the video id or null. */
export function uploadOne(http, check, i, clip, title) {
  const created = http.post(
    `${API}/v1/videos:uploadURL`,
    JSON.stringify({
      title,
      tags: ['loadtest'],
      fileName: 'clip.mp4',
      contentType: 'video/mp4',
      sizeBytes: clip.byteLength,
    }),
    { headers: jsonHeaders(i), tags: { name: 'uploadURL' } },
  );
  if (!check(created, { 'uploadURL 200': (r) => r.status === 200 })) return null;
  const session = created.json();
  const form = multipart(session.upload.fields, clip, 'clip.mp4', 'video/mp4');
  const stored = http.post(loopback(session.upload.url), form.body, {
    headers: { 'Content-Type': form.contentType },
    tags: { name: 'objectStorePOST' },
  });
  if (!check(stored, { 'object store 2xx': (r) => r.status >= 200 && r.status < 300 })) return null;
  const done = http.post(
    `${API}/v1/videos:completeUpload`,
    JSON.stringify({ videoId: session.videoId }),
    { headers: jsonHeaders(i, { 'If-Match': `"${session.etag}"` }), tags: { name: 'completeUpload' } },
  );
  if (!check(done, { 'completeUpload 200': (r) => r.status === 200 })) return null;
  return session.videoId;
}

// Playback fan-out: VUS viewers at once for DURATION, each session as a player starts one:
// playbackInfo -> the signed manifest -> the init segment and the first SEGMENTS media
// segments of the lowest representation of each adaptation set.
//
// Videos: VIDEOS (comma-separated READY public ids, as `python -m loadtest` passes them), or
// setup() uploads CLIP and waits until it is READY.
//
//   k6 run -e API=... -e TOKENS_FILE=tokens.json -e VIDEOS=id1,id2 playback_fanout.js
import http from 'k6/http';
import { check, fail, sleep } from 'k6';
import exec from 'k6/execution';
import { API, jsonHeaders, loopback, uploadOne } from './lib.js';

const SEGMENTS = parseInt(__ENV.SEGMENTS || '3', 10);
const CLIP = __ENV.VIDEOS ? null : open(__ENV.CLIP, 'b');

export const options = {
  scenarios: {
    viewers: {
      executor: 'constant-vus',
      vus: parseInt(__ENV.VUS || '50', 10),
      duration: __ENV.DURATION || '30s',
      gracefulStop: '10s',
    },
  },
  setupTimeout: '180s',
  thresholds: {
    'http_req_duration{name:playbackInfo}': ['p(99)<2000'],
    'http_req_duration{name:manifest}': ['p(99)<2000'],
    'http_req_duration{name:segment}': ['p(99)<5000'],
    http_req_failed: ['rate<0.01'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max', 'count'],
};

export function setup() {
  if (__ENV.VIDEOS) return { videos: __ENV.VIDEOS.split(',').filter((v) => v) };
  const id = uploadOne(http, check, 0, CLIP, 'k6 playback fan-out');
  if (!id) fail('could not upload the playback clip');
  for (let i = 0; i < 150; i++) {
    const status = http.get(`${API}/v1/videos/${id}/transcodeStatus`, {
      headers: jsonHeaders(0),
      tags: { name: 'setup' },
    });
    if (status.status === 200 && status.json().status === 'READY') return { videos: [id] };
    if (status.status === 200 && status.json().status === 'FAILED') fail(`${id} FAILED`);
    sleep(1);
  }
  return fail(`${id} not READY after 150 s`);
}

function attr(tag, name) {
  const m = tag.match(new RegExp(`\\s${name}="([^"]*)"`));
  return m ? m[1] : null;
}

function fill(template, rep, number) {
  return template.replace(/\$(RepresentationID|Number|Bandwidth|Time)(?:%0(\d+)d)?\$/g, (_, what, width) => {
    let value = what === 'RepresentationID' ? rep.id : what === 'Number' ? String(number) : rep.bandwidth;
    if (width) while (value.length < parseInt(width, 10)) value = `0${value}`;
    return value;
  });
}

/** The init + first segments of the lowest representation of each adaptation set. */
export function segmentUrls(manifestUrl, mpd, perRepresentation) {
  const base = manifestUrl.slice(0, manifestUrl.lastIndexOf('/') + 1);
  const urls = [];
  for (const set of mpd.match(/<AdaptationSet[\s\S]*?<\/AdaptationSet>/g) || []) {
    const reps = (set.match(/<Representation\b[^>]*?(?:\/>|>[\s\S]*?<\/Representation>)/g) || []).map((r) => {
      const open = r.match(/<Representation\b[^>]*>/)[0];
      return { text: r, id: attr(open, 'id'), bandwidth: attr(open, 'bandwidth') || '0' };
    });
    if (!reps.length) continue;
    const rep = reps.reduce((a, b) => (parseInt(b.bandwidth, 10) < parseInt(a.bandwidth, 10) ? b : a));
    // The template (and its timeline) of the representation, else of the adaptation set.
    const scope = /<SegmentTemplate/.test(rep.text) ? rep.text : set;
    const tmpl = (scope.match(/<SegmentTemplate[^>]*>/) || [null])[0];
    if (!tmpl) continue;
    const start = parseInt(attr(tmpl, 'startNumber') || '1', 10);
    const init = attr(tmpl, 'initialization');
    if (init) urls.push(base + fill(init, rep, start));
    let available = perRepresentation;
    const timeline = scope.match(/<SegmentTimeline>[\s\S]*?<\/SegmentTimeline>/);
    if (timeline) {
      const entries = timeline[0].match(/<S\s[^>]*>/g) || [];
      available = entries.reduce((n, e) => n + 1 + parseInt(attr(e, 'r') || '0', 10), 0);
    }
    for (let n = start; n < start + Math.min(perRepresentation, available); n++) {
      urls.push(base + fill(attr(tmpl, 'media'), rep, n));
    }
  }
  return urls;
}

export default function (data) {
  const i = exec.scenario.iterationInTest;
  const id = data.videos[i % data.videos.length];
  const info = http.get(`${API}/v1/videos/${id}/playbackInfo`, {
    headers: jsonHeaders(i),
    tags: { name: 'playbackInfo' },
  });
  if (!check(info, { 'playbackInfo 200': (r) => r.status === 200 })) return;
  const manifestUrl = loopback(info.json().manifestUrl);
  const manifest = http.get(manifestUrl, { tags: { name: 'manifest' } });
  if (!check(manifest, { 'manifest 200': (r) => r.status === 200 })) return;
  for (const url of segmentUrls(manifestUrl, manifest.body, SEGMENTS)) {
    const segment = http.get(url, { tags: { name: 'segment' }, responseType: 'none' });
    check(segment, { 'segment 200': (r) => r.status === 200 });
  }
}

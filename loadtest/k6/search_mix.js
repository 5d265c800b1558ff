// The read mix beside playback: 80 % searches (words of load-test titles), 20 % recommendations
// (after one of VIDEOS when given), at RATE requests per second for DURATION.
//
//   k6 run -e API=... -e TOKENS_FILE=tokens.json search_mix.js
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { API, jsonHeaders } from './lib.js';

const WORDS = ['load', 'clip', 'flood', 'burst', 'fan-out', 'loadtest', 'k6', 'nothing-matches'];
const VIDEOS = (__ENV.VIDEOS || '').split(',').filter((v) => v);

export const options = {
  scenarios: {
    mix: {
      executor: 'constant-arrival-rate',
      rate: parseInt(__ENV.RATE || '50', 10),
      timeUnit: '1s',
      duration: __ENV.DURATION || '30s',
      preAllocatedVUs: parseInt(__ENV.VUS || '20', 10),
      maxVUs: parseInt(__ENV.VUS || '20', 10),
    },
  },
  thresholds: {
    'http_req_duration{name:search}': ['p(99)<2000'],
    'http_req_duration{name:recommendations}': ['p(99)<2000'],
    http_req_failed: ['rate<0.01'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max', 'count'],
};

export default function () {
  const i = exec.scenario.iterationInTest;
  if (i % 5 !== 4) {
    const q = encodeURIComponent(WORDS[i % WORDS.length]);
    const r = http.get(`${API}/v1/videos:search?q=${q}&pageSize=20`, {
      headers: jsonHeaders(i),
      tags: { name: 'search' },
    });
    check(r, { 'search 200': (x) => x.status === 200 });
  } else {
    const seed = VIDEOS.length ? `?videoId=${VIDEOS[i % VIDEOS.length]}` : '';
    const r = http.get(`${API}/v1/videos:recommendations${seed}`, {
      headers: jsonHeaders(i),
      tags: { name: 'recommendations' },
    });
    check(r, { 'recommendations 200': (x) => x.status === 200 });
  }
}

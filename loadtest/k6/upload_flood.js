// The upload flood: UPLOADS sessions, VUS at once, each as its own user:
// uploadURL -> POST the clip to the object store -> completeUpload.
// The seed's SLO is the threshold: presign (uploadURL) p99 < 100 ms.
//
//   k6 run -e API=http://127.0.0.1:8080 -e TOKENS_FILE=tokens.json -e CLIP=clip.mp4 upload_flood.js
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { uploadOne } from './lib.js';

const CLIP = open(__ENV.CLIP, 'b');

export const options = {
  scenarios: {
    flood: {
      executor: 'shared-iterations',
      vus: parseInt(__ENV.VUS || '20', 10),
      iterations: parseInt(__ENV.UPLOADS || '200', 10),
      maxDuration: __ENV.DURATION || '60s',
    },
  },
  thresholds: {
    'http_req_duration{name:uploadURL}': ['p(99)<100'],
    'http_req_duration{name:objectStorePOST}': ['p(99)<60000'],
    'http_req_duration{name:completeUpload}': ['p(99)<60000'],
    checks: ['rate>0.99'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max', 'count'],
};

export default function () {
  const i = exec.scenario.iterationInTest;
  uploadOne(http, check, i, CLIP, `k6 upload flood ${i}`);
}

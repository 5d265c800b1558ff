// TritonTube SPA: sign in with a token, upload, follow transcoding, play with dash.js,
// search, recommendations, watch events. No framework; hash routes (#/, #/watch/ID, #/search?q=).
"use strict";

(() => {
  const TOKEN_KEY = "tritontube.token";
  const HEARTBEAT_MS = 10000;
  const POLL_MS = 1000;
  const $ = (id) => document.getElementById(id);

  const state = {
    token: localStorage.getItem(TOKEN_KEY),
    user: null,
    watch: null, // {videoId, player, timers, ...} of the open watch page
    watchEventsEnabled: true,
  };
  // Inspection hook for tests and debugging.
  const debug = (window.tritontube = { player: null, qualityRendered: [], watchEvents: [] });

  // ---------------------------------------------------------------- helpers

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
      this.status = status;
      this.problem = problem || {};
    }
  }

  async function api(path, { method = "GET", body, headers = {} } = {}) {
    const h = { ...headers, Authorization: `Bearer ${state.token}` };
    if (body !== undefined) h["Content-Type"] = "application/json";
    const resp = await fetch(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const type = resp.headers.get("Content-Type") || "";
    const data = type.includes("json") ? await resp.json() : null;
    if (resp.status === 401 && state.user) {
      signOut("Your session has ended; sign in again.");
    }
    if (!resp.ok) throw new ApiError(resp.status, data);
    return data;
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16)); // works outside secure contexts too
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  function duration(seconds) {
    if (seconds == null || !isFinite(seconds)) return "";
    const s = Math.round(seconds);
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  function notice(text) {
    $("notice").textContent = text || "";
  }

  function jwtSubject(token) {
    try {
      const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(payload)).sub || null;
    } catch (e) {
      return null;
    }
  }

  function show(view) {
    for (const id of ["signin-view", "home-view", "search-view", "watch-view"]) {
      $(id).hidden = id !== view;
    }
  }

  // ---------------------------------------------------------------- auth

  async function signIn(token) {
    state.token = token;
    await api("/v1/videos?owner=me&pageSize=1"); // proves the token works
    localStorage.setItem(TOKEN_KEY, token);
    state.user = jwtSubject(token) || "you";
    $("who-name").textContent = `Signed in as ${state.user}`;
    $("who").hidden = false;
    $("search-form").hidden = false;
  }

  function signOut(message) {
    leaveWatch();
    localStorage.removeItem(TOKEN_KEY);
    state.token = null;
    state.user = null;
    $("who").hidden = true;
    $("search-form").hidden = true;
    $("signin-error").textContent = message || "";
    show("signin-view");
    location.hash = "#/";
  }

  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("signin-error").textContent = "";
    const token = $("token").value.trim();
    try {
      await signIn(token);
      $("token").value = "";
      route();
    } catch (e) {
      state.token = null;
      $("signin-error").textContent =
        e.status === 401 ? "That token was not accepted." : `Could not sign in: ${e.message}`;
    }
  });
  $("sign-out").addEventListener("click", () => signOut());

  // ---------------------------------------------------------------- upload

  // The type the API expects for a known extension, else the browser's: browsers leave
  // many video files untyped or use other names (.ts as a Qt translation file, .m2ts as
  // video/vnd.dlna.mpeg-tts on Windows).
  const VIDEO_TYPES = {
    mp4: "video/mp4", m4v: "video/x-m4v", mov: "video/quicktime", qt: "video/quicktime",
    webm: "video/webm", mkv: "video/x-matroska", avi: "video/x-msvideo",
    "3gp": "video/3gpp", "3g2": "video/3gpp2", mpg: "video/mpeg", mpeg: "video/mpeg",
    m1v: "video/mpeg", m2v: "video/mpeg", vob: "video/mpeg", ts: "video/mp2t",
    mts: "video/mp2t", m2ts: "video/mp2t", ogv: "video/ogg", flv: "video/x-flv",
    wmv: "video/x-ms-wmv", asf: "video/x-ms-asf",
  };

  function guessType(file) {
    const ext = (file.name.split(".").pop() || "").toLowerCase();
    return VIDEO_TYPES[ext] || file.type || "application/octet-stream";
  }

  function setUploadProgress(pct) {
    const v = Math.max(0, Math.min(100, Math.round(pct)));
    $("up-progress").value = v;
    $("up-progress-text").textContent = `${v}%`;
  }

  function postForm(url, fields, file) {
    return new Promise((resolve, reject) => {
      const form = new FormData();
      for (const [k, v] of Object.entries(fields)) form.append(k, v);
      form.append("file", file); // the file part must come last
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) setUploadProgress((100 * e.loaded) / e.total);
      });
      xhr.addEventListener("load", () =>
        xhr.status >= 200 && xhr.status < 300
          ? resolve()
          : reject(new Error(`the object store answered ${xhr.status}`))
      );
      xhr.addEventListener("error", () => reject(new Error("network error during upload")));
      xhr.addEventListener("abort", () => reject(new Error("upload aborted")));
      xhr.send(form);
    });
  }

  // ------------------------------------------------ resumable (multipart) uploads
  // Large files go up in parts, straight to the object store, several at a time. What is
  // done is remembered in localStorage (per user and file), so after a reload or a dropped
  // connection choosing the same file again resumes: the API lists the parts the store
  // holds and only the others are sent.

  const PENDING_KEY = "tritontube.pendingUploads";
  const PART_CONCURRENCY = 3;
  const PART_RETRIES = 2;
  const SIGN_BATCH = 12;

  function fileKey(file) {
    return `${state.user}|${file.name}|${file.size}|${file.lastModified}`;
  }

  function pendingUploads() {
    try {
      return JSON.parse(localStorage.getItem(PENDING_KEY) || "{}");
    } catch (e) {
      return {};
    }
  }

  function savePending(key, record) {
    const all = pendingUploads();
    if (record) all[key] = record;
    else delete all[key];
    localStorage.setItem(PENDING_KEY, JSON.stringify(all));
  }

  function doneBytes(record) {
    return Object.values(record.done || {}).reduce((a, b) => a + b, 0);
  }

  function showPending() {
    const mine = Object.entries(pendingUploads()).filter(([k]) => k.startsWith(`${state.user}|`));
    const note = $("up-resume");
    if (!mine.length) {
      note.hidden = true;
      return;
    }
    const [, record] = mine[0];
    const pct = (100 * doneBytes(record)) / record.size;
    note.hidden = false;
    note.textContent =
      `Unfinished upload: ${record.name} (${Math.floor(pct)}% stored). ` +
      "Choose the same file and press Upload to resume.";
    setUploadProgress(pct);
  }

  function putPart(url, blob, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", url);
      xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded));
      xhr.addEventListener("load", () =>
        xhr.status >= 200 && xhr.status < 300
          ? resolve()
          : reject(new Error(`the object store answered ${xhr.status}`))
      );
      xhr.addEventListener("error", () => reject(new Error("network error during upload")));
      xhr.addEventListener("abort", () => reject(new Error("upload aborted")));
      xhr.send(blob);
    });
  }

  async function uploadParts(key, record, file, status) {
    const base = `/v1/videos/${encodeURIComponent(record.videoId)}/uploadParts`;
    const listed = await api(`${base}?uploadId=${encodeURIComponent(record.uploadId)}`);
    record.done = {};
    for (const p of listed.parts) {
      record.done[p.partNumber] = p.sizeBytes; // the store's word, not ours
    }
    savePending(key, record);
    const inflight = {};
    const show = () => {
      const sent = Object.values(inflight).reduce((a, b) => a + b, 0);
      setUploadProgress((100 * (doneBytes(record) + sent)) / record.size);
    };
    show();
    const todo = [];
    for (let n = 1; n <= record.partCount; n++) if (!(n in record.done)) todo.push(n);
    status.textContent = todo.length < record.partCount
      ? `Resuming: ${record.partCount - todo.length} of ${record.partCount} parts already stored…`
      : "Uploading…";
    const urls = {};
    async function urlFor(n) {
      if (!urls[n]) {
        // n and the next parts still to send, signed together.
        const batch = [n, ...todo.filter((m) => m > n && !urls[m])].slice(0, SIGN_BATCH);
        const signed = await api(base, {
          method: "POST",
          body: { uploadId: record.uploadId, partNumbers: batch },
        });
        for (const p of signed.parts) urls[p.partNumber] = p.url;
      }
      return urls[n];
    }
    async function worker() {
      while (todo.length) {
        const n = todo.shift();
        const start = (n - 1) * record.partSize;
        const blob = file.slice(start, Math.min(start + record.partSize, record.size));
        for (let attempt = 0; ; attempt++) {
          try {
            await putPart(await urlFor(n), blob, (loaded) => {
              inflight[n] = loaded;
              show();
            });
            break;
          } catch (e) {
            inflight[n] = 0;
            delete urls[n]; // a fresh URL for the next try
            if (!navigator.onLine) {
              // Offline: wait for the network to come back; that is not a failed attempt.
              status.textContent = "Connection lost: the upload continues when it is back…";
              await new Promise((r) => window.addEventListener("online", r, { once: true }));
              attempt -= 1;
              continue;
            }
            if (attempt >= PART_RETRIES) throw e;
            await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
          }
        }
        delete inflight[n];
        record.done[n] = blob.size;
        savePending(key, record);
        show();
      }
    }
    const workers = [];
    for (let i = 0; i < Math.min(PART_CONCURRENCY, todo.length); i++) workers.push(worker());
    const results = await Promise.allSettled(workers);
    const failed = results.find((r) => r.status === "rejected");
    if (failed) {
      throw new Error(
        `${failed.reason.message}; ${Object.keys(record.done).length} of ${record.partCount} ` +
          "parts are stored: choose the same file again to resume"
      );
    }
  }

  // The file of an unfinished upload chosen again: the form is that upload's, ready to resume.
  $("up-file").addEventListener("change", () => {
    const file = $("up-file").files[0];
    const record = file && pendingUploads()[fileKey(file)];
    if (!record) return;
    if (!$("up-title").value.trim()) $("up-title").value = record.title || record.name;
    setUploadProgress((100 * doneBytes(record)) / record.size);
    $("up-status").textContent = "Press Upload to resume: the stored parts are not sent again.";
  });

  $("upload-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const file = $("up-file").files[0];
    if (!file) return;
    const status = $("up-status");
    const submit = $("up-submit");
    submit.disabled = true;
    const key = fileKey(file);
    let record = pendingUploads()[key] || null;
    setUploadProgress(record ? (100 * doneBytes(record)) / record.size : 0);
    try {
      if (!record) {
        status.textContent = "Starting upload…";
        const tags = $("up-tags").value.split(",").map((t) => t.trim()).filter(Boolean);
        const session = await api("/v1/videos:uploadURL", {
          method: "POST",
          body: {
            title: $("up-title").value.trim(),
            description: $("up-description").value,
            tags,
            fileName: file.name,
            contentType: guessType(file),
            sizeBytes: file.size,
            visibility: $("up-visibility").value,
            resumable: true,
          },
        });
        if (session.multipart) {
          record = {
            videoId: session.videoId,
            etag: session.etag,
            uploadId: session.multipart.uploadId,
            partSize: session.multipart.partSizeBytes,
            partCount: session.multipart.partCount,
            size: file.size,
            name: file.name,
            title: $("up-title").value.trim(),
            expiresAt: session.expiresAt,
            done: {},
          };
          savePending(key, record);
        } else {
          status.textContent = "Uploading…";
          await postForm(session.upload.url, session.upload.fields, file);
          record = { videoId: session.videoId, etag: session.etag };
        }
      }
      if (record.uploadId) await uploadParts(key, record, file, status);
      setUploadProgress(100);
      status.textContent = "Verifying upload…";
      await api("/v1/videos:completeUpload", {
        method: "POST",
        headers: { "If-Match": `"${record.etag}"` },
        body: record.uploadId
          ? { videoId: record.videoId, uploadId: record.uploadId }
          : { videoId: record.videoId },
      });
      savePending(key, null);
      $("up-resume").hidden = true;
      status.textContent = "Uploaded. Processing has started.";
      $("upload-form").reset();
      location.hash = `#/watch/${encodeURIComponent(record.videoId)}`;
    } catch (e) {
      if (record && record.uploadId && e instanceof ApiError && [404, 410].includes(e.status)) {
        savePending(key, null); // the session is gone (expired or aborted): start afresh
      }
      status.textContent = `Upload failed: ${e.message}`;
    } finally {
      submit.disabled = false;
    }
  });

  // ---------------------------------------------------------------- lists

  function videoItem(v) {
    const id = v.videoId;
    const link = el("a", { href: `#/watch/${encodeURIComponent(id)}` }, v.title || id);
    const sub = [v.owner && `by ${v.owner}`, v.views != null && `${v.views} views`, duration(v.durationSeconds)]
      .filter(Boolean)
      .join(" · ");
    const li = el("li", {}, link);
    if (v.status) li.append(el("span", { class: `badge ${v.status}` }, v.status.replace(/_/g, " ").toLowerCase()));
    if (sub) li.append(el("span", { class: "sub" }, sub));
    return li;
  }

  const mine = { next: null };
  async function loadMine(append = false) {
    const list = $("mine-list");
    const q = new URLSearchParams({ owner: "me", pageSize: "20" });
    if (append && mine.next) q.set("pageToken", mine.next);
    try {
      const data = await api(`/v1/videos?${q}`);
      if (!append) list.replaceChildren();
      for (const v of data.videos) list.append(videoItem(v));
      if (!data.videos.length && !append) list.append(el("li", { class: "sub" }, "No uploads yet."));
      mine.next = data.nextPageToken;
      $("mine-more").hidden = !mine.next;
    } catch (e) {
      list.replaceChildren(el("li", { class: "error" }, `Could not load your videos: ${e.message}`));
    }
  }
  $("mine-refresh").addEventListener("click", () => loadMine());
  $("mine-more").addEventListener("click", () => loadMine(true));

  const search = { q: "", next: null };
  async function runSearch(q, append = false) {
    const list = $("search-list");
    const status = $("search-status");
    const params = new URLSearchParams({ q, pageSize: "20" });
    if (append && search.next) params.set("pageToken", search.next);
    if (!append) {
      list.replaceChildren();
      status.textContent = "Searching…";
    }
    search.q = q;
    try {
      const data = await api(`/v1/videos:search?${params}`);
      const results = data.results || [];
      for (const v of results) list.append(videoItem(v));
      search.next = data.nextPageToken || null;
      $("search-more").hidden = !search.next;
      status.textContent = list.children.length ? "" : `No videos match “${q}”.`;
    } catch (e) {
      status.textContent = e.status === 404 ? "Search is not available yet." : `Search failed: ${e.message}`;
      $("search-more").hidden = true;
    }
  }
  $("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = $("search-q").value.trim();
    if (q) location.hash = `#/search?q=${encodeURIComponent(q)}`;
  });
  $("search-more").addEventListener("click", () => runSearch(search.q, true));

  async function loadRecommendations(videoId) {
    const list = $("recs-list");
    const status = $("recs-status");
    list.replaceChildren();
    status.textContent = "Loading…";
    try {
      const q = new URLSearchParams({ videoId, pageSize: "8" });
      const data = await api(`/v1/videos:recommendations?${q}`);
      const results = (data.results || []).filter((v) => v.videoId !== videoId);
      for (const v of results) list.append(videoItem(v));
      status.textContent = results.length ? "" : "Nothing to recommend yet.";
    } catch (e) {
      status.textContent = e.status === 404 ? "Recommendations are not available yet." : `Could not load recommendations: ${e.message}`;
    }
  }

  // ---------------------------------------------------------------- watch events

  async function sendWatchEvent(kind) {
    const w = state.watch;
    if (!w || !state.watchEventsEnabled) return;
    const event = {
      eventId: uuid(),
      kind,
      positionSeconds: Math.round($("video").currentTime * 1000) / 1000,
      occurredAt: new Date().toISOString(),
    };
    debug.watchEvents.push(event);
    try {
      await api(`/v1/videos/${encodeURIComponent(w.videoId)}/watchEvents`, { method: "POST", body: event });
    } catch (e) {
      if (e.status === 404 && e.problem.code !== "NOT_FOUND") {
        state.watchEventsEnabled = false; // the endpoint does not exist on this server
      }
    }
  }

  function bindVideoEvents(video) {
    const w = state.watch;
    const on = (name, fn) => {
      video.addEventListener(name, fn);
      w.unbind.push(() => video.removeEventListener(name, fn));
    };
    on("play", () => {
      $("play-toggle").textContent = "Pause";
      sendWatchEvent("PLAY");
    });
    on("pause", () => {
      $("play-toggle").textContent = "Play";
      if (!video.ended) sendWatchEvent("PAUSE");
    });
    on("seeked", () => {
      if (w.started) sendWatchEvent("SEEK");
    });
    on("playing", () => {
      w.started = true;
    });
    on("ended", () => {
      $("play-toggle").textContent = "Play";
      sendWatchEvent("ENDED");
    });
    w.timers.push(
      setInterval(() => {
        if (!video.paused && !video.ended) sendWatchEvent("HEARTBEAT");
      }, HEARTBEAT_MS)
    );
  }

  $("play-toggle").addEventListener("click", () => {
    const video = $("video");
    if (video.paused || video.ended) {
      video.play().catch((e) => notice(`Playback could not start: ${e.message}`));
    } else {
      video.pause();
    }
  });

  // ---------------------------------------------------------------- watch page

  function leaveWatch() {
    const w = state.watch;
    if (!w) return;
    w.closed = true;
    for (const t of w.timers) clearInterval(t);
    for (const u of w.unbind) u();
    if (w.player) w.player.destroy();
    debug.player = null;
    const video = $("video");
    video.removeAttribute("src");
    video.load();
    state.watch = null;
  }

  function renderMeta(meta) {
    $("watch-title").textContent = meta.title;
    const bits = [`by ${meta.owner}`, meta.visibility, duration(meta.durationSeconds)].filter(Boolean);
    $("watch-meta").textContent = bits.join(" · ");
    $("watch-description").textContent = meta.description || "";
    document.title = `${meta.title} · TritonTube`;
  }

  function renderTranscode(ts) {
    $("transcode").hidden = false;
    const pct = Math.round(ts.progress || 0);
    $("tc-progress").value = pct;
    $("tc-progress-text").textContent = `${pct}%`;
    let text = ts.status.replace(/_/g, " ").toLowerCase();
    if (ts.step) text += ` — ${ts.step}`;
    if (ts.queue) text += ` — position ${ts.queue.position} of ${ts.queue.length} in the queue`;
    if (ts.etaSeconds != null && ts.status === "TRANSCODING") text += ` (about ${Math.ceil(ts.etaSeconds)} s left)`;
    if (ts.error) text = `Failed: ${ts.error.message || ts.error.code}`;
    $("tc-status").textContent = text;
    const list = $("tc-renditions");
    list.replaceChildren();
    for (const r of ts.renditions || []) {
      const bar = el("progress", { max: "100", value: String(Math.round(r.progress)), "aria-label": `${r.name} progress` });
      list.append(el("li", {}, el("span", {}, r.name), bar, el("span", { class: `badge ${r.status}` }, r.status.toLowerCase())));
    }
  }

  async function startPlayer(w) {
    const info = await api(`/v1/videos/${encodeURIComponent(w.videoId)}/playbackInfo`);
    if (w.closed) return;
    if (!window.dashjs) throw new Error("the player library did not load");
    const video = $("video");
    if (info.thumbnailUrl) video.poster = info.thumbnailUrl;
    const player = dashjs.MediaPlayer().create();
    const events = dashjs.MediaPlayer.events;
    player.on(events.QUALITY_CHANGE_RENDERED, (e) => {
      if (e.mediaType !== "video" || !e.newRepresentation) return;
      const r = e.newRepresentation;
      debug.qualityRendered.push({ id: r.id, width: r.width, height: r.height, bandwidth: r.bandwidth });
      $("quality").textContent = `Quality: ${r.height}p (${Math.round(r.bandwidth / 1000)} kbps)`;
    });
    player.on(events.ERROR, (e) => {
      const err = e.error || {};
      notice(`Playback error: ${err.message || err.code || "unknown"}`);
    });
    player.initialize(video, info.manifestUrl, false);
    w.player = player;
    debug.player = player;
    $("player-box").hidden = false;
    bindVideoEvents(video);
    if (!$("recs-list").children.length) loadRecommendations(w.videoId); // now indexed
  }

  async function pollUntilPlayable(w) {
    while (!w.closed) {
      let ts;
      try {
        ts = await api(`/v1/videos/${encodeURIComponent(w.videoId)}/transcodeStatus`);
      } catch (e) {
        $("tc-status").textContent = `Status unavailable: ${e.message}`;
        await new Promise((r) => setTimeout(r, POLL_MS * 2));
        continue;
      }
      if (w.closed) return;
      renderTranscode(ts);
      const anyReady = (ts.renditions || []).some((r) => r.status === "READY");
      if (ts.status === "READY" || (anyReady && !w.player)) {
        if (!w.player) {
          try {
            await startPlayer(w);
          } catch (e) {
            if (e.status !== 409) throw e; // not playable after all: keep polling
          }
        }
        if (ts.status === "READY" && w.player) {
          $("transcode").hidden = true;
          return;
        }
      }
      if (["FAILED", "EXPIRED"].includes(ts.status)) return;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  async function openWatch(videoId) {
    leaveWatch();
    show("watch-view");
    $("transcode").hidden = true;
    $("player-box").hidden = true;
    $("quality").textContent = "";
    $("play-toggle").textContent = "Play";
    $("watch-title").textContent = "Loading…";
    $("watch-meta").textContent = "";
    $("watch-description").textContent = "";
    const w = (state.watch = { videoId, player: null, timers: [], unbind: [], closed: false, started: false });
    loadRecommendations(videoId);
    try {
      const meta = await api(`/v1/videos/${encodeURIComponent(videoId)}`);
      if (w.closed) return;
      renderMeta(meta);
      if (meta.playable && meta.status === "READY") {
        await startPlayer(w);
      } else if (meta.owner === state.user) {
        await pollUntilPlayable(w);
      } else {
        await startPlayer(w);
      }
    } catch (e) {
      if (w.closed) return;
      $("watch-title").textContent = e.status === 404 ? "Video not found" : "Could not open this video";
      notice(e.status === 404 ? "" : e.message);
    }
  }

  // ---------------------------------------------------------------- routing

  function route() {
    notice("");
    if (!state.token) {
      show("signin-view");
      return;
    }
    const hash = location.hash || "#/";
    const watch = hash.match(/^#\/watch\/([^/?#]+)/);
    if (watch) {
      openWatch(decodeURIComponent(watch[1]));
      return;
    }
    leaveWatch();
    document.title = "TritonTube";
    if (hash.startsWith("#/search")) {
      const q = new URLSearchParams(hash.split("?")[1] || "").get("q") || "";
      $("search-q").value = q;
      show("search-view");
      runSearch(q);
      return;
    }
    show("home-view");
    showPending();
    loadMine();
  }

  window.addEventListener("hashchange", route);
  window.addEventListener("pagehide", () => {
    if (state.watch && !$("video").paused) sendWatchEvent("PAUSE");
  });

  (async () => {
    if (state.token) {
      try {
        await signIn(state.token);
      } catch (e) {
        state.token = null;
        if (e.status === 401) {
          localStorage.removeItem(TOKEN_KEY);
          $("signin-error").textContent = "Your saved token has expired; sign in again.";
        } else {
          $("signin-error").textContent = `The service is not answering (${e.message}); try again shortly.`;
        }
      }
    }
    route();
  })();
})();
